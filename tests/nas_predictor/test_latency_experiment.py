import numpy as np
import pytest

from nas_predictor.config import LatencyExperimentConfig, load_config
from nas_predictor.latency_experiment import prepare_latency_data, run_latency_experiment
from nas_predictor.predictor import Predictor


def _cfg(tmp_path, extra=(), **data):
    overrides = [*extra, "model.task=latency", "model.hidden=32", "train.epochs=3", "train.batch_size=8", "train.lr=1e-3",
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


def test_first_subset_takes_each_familys_first_records_whatever_the_seed(tmp_path, data_dir):
    def archs(**data):
        cfg = _cfg(tmp_path, families="[nasbench201, fbnet]", subset="first", **data)
        rec = prepare_latency_data(cfg, data_dir, progress=False)
        fams = np.asarray(rec.family)
        return {f: [a for a, g in zip(rec.archs, fams) if g == f] for f in ("nasbench201", "fbnet")}

    twelve, other_seed, fifteen = archs(), archs(subset_seed=1), archs(max_per_family=15)
    assert twelve == other_seed  # no draw: the subset seed plays no part
    assert all(twelve[f] == fifteen[f][:12] for f in twelve)  # a prefix: more records keep the first ones
    rnd = prepare_latency_data(_cfg(tmp_path, families="[nasbench201, fbnet]"), data_dir, progress=False)
    assert [a for a, g in zip(rnd.archs, rnd.family) if g == "fbnet"] != twelve["fbnet"]  # default: a random draw
    from nas_predictor.errors import ConfigError

    with pytest.raises(ConfigError, match="subset"):
        load_config(None, ["model.task=latency", "data.subset=last"])


@pytest.mark.parametrize("extra", [(), ("encoding.node_costs=true", "train.value_loss=relative_absolute"),
                                   ("encoding.node_costs=true", "model.readout=roofline", "train.value_loss=log_absolute"),
                                   ("encoding.node_costs=true", "model.readout=roofline_sum")],
                         ids=["reference-tokens", "node-costs-mape-loss", "roofline-log-loss", "roofline-sum"])
def test_tiny_latency_run_saves_a_predictor_that_reloads(tmp_path, data_dir, extra):
    cfg = _cfg(tmp_path, extra, families="[nasbench201]")
    result = run_latency_experiment(cfg, tmp_path / "run", data_dir, progress=False)
    test = result["test"]["titan_rtx_1"]
    assert test["overall"]["num"] == result["num_test"] == test["per_family"]["nasbench201"]["num"]
    assert np.isfinite(test["overall"]["mape"]) and result["members"][0]["best_valid_mape"] > 0
    loaded = Predictor.load(tmp_path / "run" / "predictor.pt")
    assert loaded.tokenizer.token_dim == cfg.model.input_dim  # node-cost slots survive the checkpoint
    records = prepare_latency_data(cfg, data_dir, progress=False)
    graphs = [records.graphs[i] for i in records.test]
    np.testing.assert_allclose(loaded.predict_graphs(graphs), result["predictor"].predict_graphs(graphs), rtol=1e-5)
    assert (loaded.predict_graphs(graphs) > 0).all()
    # the run scores the saved predictor itself on the validation split (what a release chooses by)
    valid = result["valid"]["titan_rtx_1"]["overall"]
    assert valid["num"] == result["num_valid"] == len(records.valid)
    pred = loaded.predict_graphs([records.graphs[i] for i in records.valid])
    truth = records.latency_ms[records.valid, 0]
    assert valid["mape"] == pytest.approx(float(np.mean(np.abs(pred / truth - 1))), rel=1e-4)


def test_multi_device_model_has_one_output_per_setting(tmp_path, data_dir):
    from nas_predictor.errors import ConfigError

    # OFA was never measured on the Pixel 3: its records have no label there, and are left out of
    # that setting's loss and metrics
    cfg = _cfg(tmp_path, families="[nasbench201, ofa_mbv3]", setting="[titan_rtx_1, pixel3]")
    assert cfg.model.num_outputs == 2 and cfg.data.settings == ["titan_rtx_1", "pixel3"]
    records = prepare_latency_data(cfg, data_dir, progress=False)
    fams = np.asarray(records.family)
    assert records.latency_ms.shape == (24, 2)
    assert np.isnan(records.latency_ms[fams == "ofa_mbv3", 1]).all()
    assert np.isfinite(records.latency_ms[fams == "nasbench201"]).all()
    result = run_latency_experiment(cfg, tmp_path / "multi", data_dir, progress=False, prepared=records)
    assert set(result["test"]) == {"titan_rtx_1", "pixel3"}
    assert set(result["test"]["pixel3"]["per_family"]) == {"nasbench201"}
    assert set(result["test"]["titan_rtx_1"]["per_family"]) == {"nasbench201", "ofa_mbv3"}
    loaded = Predictor.load(tmp_path / "multi" / "predictor.pt")
    graphs = [records.graphs[i] for i in records.test]
    both = loaded.predict_graphs(graphs)
    assert both.shape == (len(graphs), 2) and (both > 0).all()
    np.testing.assert_allclose(loaded.predict_latency(graphs, "pixel3"), both[:, 1])
    np.testing.assert_allclose(loaded.predict_latency(graphs), both[:, 0])  # default: the first setting
    with pytest.raises(ConfigError, match="no setting 'gold_6226'.*titan_rtx_1, pixel3"):
        loaded.predict_latency(graphs, "gold_6226")
    with pytest.raises(ConfigError, match="share a batch size"):
        _cfg(tmp_path, setting="[titan_rtx_1, titan_rtx_32]")
    with pytest.raises(ConfigError, match="num_outputs"):
        load_config(None, ["model.task=latency", "model.num_outputs=3", "data.setting=[titan_rtx_1, 2080ti_1]"])


def test_op_groups_run_learns_its_training_vocabulary_and_keeps_it_in_the_checkpoint(tmp_path, data_dir):
    cfg = _cfg(tmp_path, ("encoding.node_costs=true", "encoding.op_groups=true", "model.op_dropout=0.3"),
               families="[nasbench201, fbnet]", split="unseen", test_family="fbnet")
    records = prepare_latency_data(cfg, data_dir, progress=False)
    result = run_latency_experiment(cfg, tmp_path / "groups", data_dir, progress=False, prepared=records)
    seen = {op for i in np.concatenate([records.train, records.valid]) for op in records.graphs[i].ops}
    loaded = Predictor.load(tmp_path / "groups" / "predictor.pt")
    assert loaded.tokenizer.known_ops == seen == result["predictor"].tokenizer.known_ops
    graphs = [records.graphs[i] for i in records.test]
    np.testing.assert_allclose(loaded.predict_graphs(graphs), result["predictor"].predict_graphs(graphs), rtol=1e-5)
    assert np.isfinite(result["test"]["titan_rtx_1"]["overall"]["mape"])


def test_few_shot_rescaling_removes_a_constant_factor_and_skips_unmeasured_settings():
    from nas_predictor.latency_experiment import LatencyRecords, few_shot_metrics

    rng = np.random.default_rng(0)
    n = 200
    truth = rng.uniform(1.0, 10.0, size=(n, 2))
    truth[:, 1] = np.nan  # a setting none of these networks was measured on
    index = np.arange(n)
    records = LatencyRecords(["fbnet"] * n, [str(i) for i in index], [None] * n, truth, index[:0], index[:0], index,
                             ["titan_rtx_1", "gold_6226"])
    # ranking perfect, scale 2x off: any few measured networks fix it exactly
    exact = few_shot_metrics(records, index, truth / 2.0, shots=5, seed=0)
    assert set(exact) == {"titan_rtx_1"}
    assert exact["titan_rtx_1"]["mape"] == pytest.approx(0.0, abs=1e-12)
    assert exact["titan_rtx_1"]["acc_5pct"] == 1.0
    assert exact["titan_rtx_1"]["scale_all"] == pytest.approx(2.0)
    # with noise, more measured networks give a steadier factor, and the same seed the same draws
    noisy = truth[:, :1] / 2.0 * np.exp(rng.normal(0, 0.1, size=(n, 1)))
    few = few_shot_metrics(records, index, noisy, shots=1, seed=0, draws=200)["titan_rtx_1"]["mape"]
    many = few_shot_metrics(records, index, noisy, shots=20, seed=0, draws=200)["titan_rtx_1"]["mape"]
    assert many < few
    assert few_shot_metrics(records, index, noisy, shots=5, seed=3) == few_shot_metrics(records, index, noisy, shots=5, seed=3)
    # fewer measured records than shots: nothing to score
    assert few_shot_metrics(records, index[:3], noisy[:3], shots=5, seed=0) == {}
