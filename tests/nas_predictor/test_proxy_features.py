"""nas_predictor/proxy_features.py: zero-cost proxies as a predictor's global inputs; a predictor with them
trains, saves and loads, and predicts arch strings with their proxies read from (or added to) the cache."""

import numpy as np
import pytest

from nas_predictor.augment import isomorphic_relabel
from nas_predictor.config import load_config
from nas_predictor.errors import ConfigError, GraphError
from nas_predictor.graph import ArchGraph
from nas_predictor.proxy_features import CLIP, PROXIES, ProxyScaler, expand_proxy_names, with_proxies


def _graph(**scores) -> ArchGraph:
    return with_proxies(ArchGraph(("input", "conv", "output"), ((0, 1), (1, 2))), scores)


def test_names_families_and_all_expand_in_a_fixed_order_and_an_unknown_one_is_named():
    assert expand_proxy_names(["naswot", "size"]) == ["naswot", "params", "flops"]
    assert expand_proxy_names(["all"]) == list(PROXIES)
    assert expand_proxy_names([]) == []
    with pytest.raises(ConfigError, match="unknown zero-cost proxy or family 'zen'"):
        expand_proxy_names(["zen"])


def test_the_scaler_centres_on_the_median_divides_by_the_iqr_of_the_log_and_clips():
    values = [1.0, 10.0, 100.0, 1000.0, 10000.0]
    graphs = [_graph(synflow=v, params=7.0) for v in values]
    scaler = ProxyScaler.fit(["synflow", "params"], graphs)
    logs = np.log1p(values)
    assert scaler.center[0] == pytest.approx(np.median(logs))
    assert scaler.scale[0] == pytest.approx(np.percentile(logs, 75) - np.percentile(logs, 25))
    assert scaler.scale[1] == 1.0  # constant over the training cells: read as 0, not divided by 0
    features = scaler.features(graphs + [_graph(synflow=1e30, params=7.0), _graph(synflow=-1e9, params=7.0)])
    assert features.dtype == np.float32 and features.shape == (7, 2)
    assert features[2, 0] == 0.0 and (features[:, 1] == 0).all()
    assert features[5, 0] == CLIP and features[6, 0] == -CLIP  # far outside the training range: clipped
    assert ProxyScaler.from_config(scaler.config()) == scaler


def test_a_graph_without_the_proxies_or_with_a_nan_one_is_a_clear_error():
    scaler = ProxyScaler.fit(["synflow"], [_graph(synflow=1.0), _graph(synflow=2.0)])
    with pytest.raises(GraphError, match="reads zero-cost proxies \\(synflow\\) and graph 1 has no 'zc_synflow'"):
        scaler.features([_graph(synflow=1.0), _graph(params=3.0)])
    with pytest.raises(GraphError, match="graph 0's zero-cost proxies are not finite"):
        scaler.features([_graph(synflow=float("nan"))])


def test_the_proxies_survive_the_isomorphic_relabelling():
    graph = _graph(synflow=3.0, jacov=-60.0)
    assert isomorphic_relabel(graph).scalars == graph.scalars


def test_a_config_fills_in_the_models_proxy_count_and_refuses_a_wrong_one():
    cfg = load_config(None, ["encoding.proxies=[activation,size]"])
    assert cfg.encoding.proxies == ["jacov", "naswot", "params", "flops"] and cfg.model.proxy_dim == 4
    assert load_config(None, []).model.proxy_dim == 0
    with pytest.raises(ConfigError, match="model.proxy_dim \\(2\\) must equal the number of encoding.proxies \\(1\\)"):
        load_config(None, ["encoding.proxies=[naswot]", "model.proxy_dim=2"])


def _prepared(nb201_table, proxies: bool, cache):
    from nas_predictor.zero_cost_store import attach_proxies
    from nas_predictor.train_data import PreparedData
    from search_spaces import NASBench201

    space = NASBench201()
    archs = nb201_table.arch_strs[:16]
    graphs = [space.to_graph(a) for a in archs]
    if proxies:
        graphs = attach_proxies(space, archs, graphs, cache=cache, batch_size=4)
    idx = np.arange(len(archs))
    labels = nb201_table.column("c10valid_valid_200ep")[: len(archs)]
    return PreparedData(archs, graphs, idx[:10], idx[10:13], idx, labels, labels, space.op_vocab)


@pytest.mark.parametrize("proxies", [[], ["all"]])
def test_a_predictor_with_and_without_proxies_trains_saves_and_loads(nb201_table, tmp_path, monkeypatch, proxies):
    import json

    from nas_predictor.predictor import Predictor
    from nas_predictor.train import run_experiment
    from search_spaces import NASBench201

    monkeypatch.setenv("NAS_PREDICTOR_CACHE", str(tmp_path / "cache"))
    overrides = ["model.hidden=32", "model.num_blocks=2", "train.threads=0", "data.n_train=10", "data.n_valid=3",
                 "train.epochs=2", "train.batch_size=4", "encoding.proxy_batch_size=4",
                 f"encoding.proxies=[{','.join(proxies)}]"]
    cfg = load_config(None, overrides)
    data = _prepared(nb201_table, bool(proxies), tmp_path / "cache")
    result = run_experiment(cfg, out_dir=tmp_path / "run", prepared=data, progress=False)
    loaded = Predictor.load(tmp_path / "run" / "predictor.pt")
    assert json.loads(json.dumps(loaded.meta["encoding"])) == loaded.tokenizer.config()
    assert ("proxies" in loaded.meta["encoding"]) == bool(proxies)
    assert loaded.models[0].cfg.proxy_dim == (len(PROXIES) if proxies else 0)
    # arch strings: their proxies come from the cache the training filled
    np.testing.assert_array_equal(loaded.predict(data.archs[:6]), result["predictor"].predict(data.archs[:6]))
    assert np.isfinite(loaded.predict(data.archs[:6])).all()
    if proxies:
        # the proxies move the prediction: the same cells with other cells' proxies score differently
        swapped = [with_proxies(data.graphs[i], {k[3:]: v for k, v in data.graphs[15 - i].scalars.items()})
                   for i in range(6)]
        assert not np.allclose(loaded.predict(swapped), loaded.predict(data.graphs[:6]))
        with pytest.raises(GraphError, match="reads zero-cost proxies"):
            loaded.predict([NASBench201().to_graph(data.archs[0])])
