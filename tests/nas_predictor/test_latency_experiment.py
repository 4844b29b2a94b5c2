import numpy as np
import pytest

from nas_predictor.config import LatencyExperimentConfig, load_config
from nas_predictor.latency_experiment import prepare_latency_data, run_latency_experiment
from nas_predictor.predictor import Predictor


def _cfg(tmp_path, **data):
    overrides = ["model.task=latency", "model.hidden=32", "train.epochs=3", "train.batch_size=8", "train.lr=1e-3",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.max_per_family=12", "data.setting=titan_rtx_1"]
    overrides += [f"data.{k}={v}" for k, v in data.items()]
    return load_config(None, overrides)


def test_latency_config_defaults_and_errors():
    cfg = load_config(None, ["model.task=latency"])
    assert isinstance(cfg, LatencyExperimentConfig)
    assert cfg.model.num_blocks == 2 and cfg.model.input_dim == 190 and cfg.train.select_metric == "mape"
    from nas_predictor.errors import ConfigError

    with pytest.raises(ConfigError, match="input_dim .* must be 152 for the 'reference'"):
        load_config(None, ["model.task=latency", "encoding.layout=reference", "model.input_dim=190"])
    with pytest.raises(ConfigError, match="split 'unseen' needs test_family"):
        load_config(None, ["model.task=latency", "data.split=unseen"])


def test_in_domain_and_unseen_splits(tmp_path, data_dir):
    cfg = _cfg(tmp_path, families="[nasbench201, fbnet]")
    records = prepare_latency_data(cfg, data_dir, progress=False)
    assert len(records.archs) == 24
    parts = [set(records.train), set(records.valid), set(records.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == 24
    fams = np.asarray(records.family)
    assert set(fams[records.test]) == {"nasbench201", "fbnet"}  # each family split on its own
    unseen = _cfg(tmp_path, families="[nasbench201, fbnet]", split="unseen", test_family="fbnet")
    rec = prepare_latency_data(unseen, data_dir, progress=False)
    assert set(np.asarray(rec.family)[rec.test]) == {"fbnet"} and len(rec.test) == 12
    assert set(np.asarray(rec.family)[np.concatenate([rec.train, rec.valid])]) == {"nasbench201"}


def test_tiny_latency_run_saves_a_predictor_that_reloads(tmp_path, data_dir):
    cfg = _cfg(tmp_path, families="[nasbench201]")
    result = run_latency_experiment(cfg, tmp_path / "run", data_dir, progress=False)
    assert result["test"]["overall"]["num"] == result["num_test"] == result["test"]["per_family"]["nasbench201"]["num"]
    assert np.isfinite(result["test"]["overall"]["mape"]) and result["members"][0]["best_valid_mape"] > 0
    loaded = Predictor.load(tmp_path / "run" / "predictor.pt")
    records = prepare_latency_data(cfg, data_dir, progress=False)
    graphs = [records.graphs[i] for i in records.test]
    np.testing.assert_allclose(loaded.predict_graphs(graphs), result["predictor"].predict_graphs(graphs), rtol=1e-5)
    assert (loaded.predict_graphs(graphs) > 0).all()
