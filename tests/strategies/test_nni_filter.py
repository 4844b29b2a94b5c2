"""LatencyFilter in NNI's Filter middleware, with built-in NNI strategies: from the sample of a known
space (a table, our predictor) and from the frozen model's ONNX export (any PyTorch space)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.strategies.nni_support import import_nni

import_nni()

import torch  # noqa: E402
from nni.nas.benchmark import BenchmarkModelSpace  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.strategy import Random, RegularizedEvolution  # noqa: E402
from nni.nas.strategy.middleware import Chain, Filter  # noqa: E402

from nas_predictor.errors import ConfigError  # noqa: E402
from strategies import PredictedLatency, TableLatency  # noqa: E402
from strategies.nni_bridge import LatencyFilter, NB201TableBenchmark, latency_filter_middleware, nb201_arch_to_sample  # noqa: E402

PIXEL3_BOUND = 10.6756


@pytest.fixture(scope="module")
def table(data_dir):
    return NB201TableBenchmark("cifar10", data_dir=str(data_dir))


def test_regularized_evolution_never_runs_a_model_over_the_bound(table, data_dir):
    latency = TableLatency("pixel3", data_dir=str(data_dir))
    lat_filter = LatencyFilter(PIXEL3_BOUND, latency)
    strategy = Chain(RegularizedEvolution(population_size=10, sample_size=3, seed=0), Filter(lat_filter))
    engine = SequentialExecutionEngine(max_model_count=40)
    strategy(BenchmarkModelSpace(table), engine)
    ran = [table.to_arch(m.sample) for m in engine.list_models()]
    assert len(ran) == 40  # the filter's rejects cost no trial
    assert max(latency.latency_ms(ran)) <= PIXEL3_BOUND
    assert lat_filter.rejected > 0 and lat_filter.checked == 40 + lat_filter.rejected
    rejected = [h["arch"] for h in lat_filter.history if not h["passed"]]
    assert min(latency.latency_ms(rejected)) > PIXEL3_BOUND
    # the rejected models end Invalid, without a metric, so the evolution never breeds from them
    invalid = [m for m in strategy.engine.list_models() if m.status.value == "invalid"]
    assert invalid == [] and all(m.metric is None for m in strategy[1]._filter_models)
    # measured latencies are no predictions: no verdict rests on an unsure estimate
    assert {h["source"] for h in lat_filter.history} == {"measured"} and lat_filter.unsure == 0


def test_built_in_random_in_an_experiment_with_the_predicted_latency(table, tmp_path):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.hub.pytorch import NasBench201

    predicted = PredictedLatency("latency-help-b1", "nasbench201", "gold_6226")
    archs = [table.oracle.arch_strs[i] for i in range(0, 15625, 1201)]
    bound = float(np.median(predicted.latency_ms(archs)))
    middleware = latency_filter_middleware(bound, setting="gold_6226")  # default: our predictor, from the sample
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 8
    config.experiment_working_directory = str(tmp_path)
    strategy = Chain(Random(seed=1), middleware)
    exp = NasExperiment(NasBench201(), table, strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    ran = [table.to_arch(m.sample) for m in strategy.engine.list_models()]
    assert len(ran) == 8 and max(predicted.latency_ms(ran)) <= bound
    lat_filter = middleware.filter_fn
    assert lat_filter.rejected > 0
    # NB201 networks are a training family of the predictor: every verdict is on its own output
    assert all(h["in_distribution"] is True and h["source"] == "model" for h in lat_filter.history)
    assert {k: lat_filter.summary()[k] for k in ("checked", "passed", "rejected", "unsure")} == {
        "checked": lat_filter.checked, "passed": lat_filter.checked - lat_filter.rejected,
        "rejected": lat_filter.rejected, "unsure": 0}


def test_unknown_spaces_are_exported_to_onnx():
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from nni.nas.space import SimplifiedModelSpace

    def stack(n: int, width: int = 64) -> torch.nn.Sequential:
        layers = []
        for _ in range(n):
            layers += [torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.BatchNorm2d(width), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers)

    class Net(ModelSpace):  # a space the bridge has no arch strings for
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 64, 3, padding=1)
            self.body = LayerChoice([stack(1), stack(6), stack(24)], label="depth")
            self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10))

        def forward(self, x):
            return self.head(self.body(self.stem(x)))

    space = SimplifiedModelSpace.from_model(Net(), None)
    models = [space.freeze({"depth": i}) for i in range(3)]
    lat_filter = LatencyFilter(1e6, setting="gold_6226", input_shape=(1, 3, 32, 32))
    ms = [lat_filter.latency_of(m)[0] for m in models]
    assert all(v > 0 for v in ms) and ms[0] < ms[1] < ms[2], ms  # deeper is slower
    tight = LatencyFilter((ms[1] + ms[2]) / 2, setting="gold_6226", input_shape=(1, 3, 32, 32))
    assert [tight(m) for m in models] == [True, True, False]
    assert [h["arch"] for h in tight.history] == [None] * 3
    # 8 and 23 nodes lie below every training network, the 24-block one beyond its FLOPs: each is
    # judged on its FLOPs/memory fallback, and the summary says so
    assert [(h["source"], h["unsure"], h["latency_ms"] == h["fallback_ms"]) for h in tight.history] == \
        [("fallback", True, True)] * 3
    assert tight.history[0]["reasons"][0] == "nodes 8 far outside training range 71-296"
    summary = tight.summary()
    assert summary == {"source": tight.describe(), "max_ms": tight.max_ms, "checked": 3, "passed": 2, "rejected": 1,
                       "unsure": 3, "out_of_distribution": 3, "unchecked": 0, "unsure_passed": 2,
                       "unsure_rejected": 1}
    with pytest.raises(ConfigError, match="input_shape"):
        LatencyFilter(5.0)(models[0])


def test_a_far_deeper_network_is_judged_on_its_fallback():
    # 300 Conv-BN-ReLU blocks: 902 nodes, 2.4x the deepest network titan_rtx_1 was trained on, where
    # the network's own output grows faster than the work
    layers = [torch.nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(300):
        layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers)

    class Frozen:
        sample = None

        def executable_model(self):
            return net

    probe = LatencyFilter(1e6, setting="titan_rtx_1", input_shape=(1, 3, 32, 32))
    confidence = probe.confidence(Frozen())
    assert confidence["in_distribution"] is False and confidence["source"] == "fallback"
    assert confidence["reasons"][:2] == ["nodes 902 far outside training range 71-461",
                                         "depth 902 far outside training range 67-383"]
    fallback, model = confidence["fallback_ms"], confidence["model_ms"]
    assert fallback < model  # so a bound between them tells which one the verdict used
    bound = (fallback * model) ** 0.5
    lat_filter = LatencyFilter(bound, setting="titan_rtx_1", input_shape=(1, 3, 32, 32))
    assert lat_filter(Frozen()) is True and lat_filter.history[-1]["latency_ms"] == pytest.approx(fallback)
    assert lat_filter.history[-1]["unsure"] and lat_filter.summary()["unsure_passed"] == 1


def test_export_of_the_hub_network_ranks_like_our_network(table):
    from nni.nas.hub.pytorch import NasBench201
    from nni.nas.space import SimplifiedModelSpace

    from scipy.stats import spearmanr

    space = SimplifiedModelSpace.from_model(NasBench201(), None)
    archs = ["|none~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
             "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|",
             "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
             "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"]
    exported = LatencyFilter(1e6, setting="gold_6226", input_shape=(1, 3, 32, 32), use_sample=False)
    by_sample = LatencyFilter(1e6, setting="gold_6226")
    models = [space.freeze(nb201_arch_to_sample(a, "cell/")) for a in archs]
    a = [exported.latency_of(m)[0] for m in models]
    b = [by_sample.latency_of(m)[0] for m in models]
    assert spearmanr(a, b)[0] == pytest.approx(1.0)
    assert exported.latency_of(models[0]) == (a[0], None) and len(exported._memo) == 4  # asked once per sample


def test_bad_arguments():
    with pytest.raises(ConfigError, match="positive"):
        LatencyFilter(0)
    with pytest.raises(ConfigError, match="LatencySource"):
        LatencyFilter(5.0, latency="pixel3")
    with pytest.raises(ConfigError, match="used as given"):
        LatencyFilter(5.0, TableLatency("pixel3"), calibrate=2.0)
    for bad in (0, -2.0, float("inf"), False):
        with pytest.raises(ConfigError, match="calibrate must be"):
            LatencyFilter(5.0, calibrate=bad)


def test_calibrate_rescales_the_predicted_latency(tmp_path):
    from nas_predictor.latency_domain import assess_latency
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU())

    class Frozen:  # a model of a space the bridge does not know: exported to ONNX
        sample = None

        def executable_model(self):
            return net

    shape = (1, 3, 32, 32)
    plain = LatencyFilter(1e6, setting="gold_6226", input_shape=shape)
    raw = plain.latency_of(Frozen())[0]  # the reported estimate, unmapped
    assert LatencyFilter(1e6, setting="gold_6226", input_shape=shape, calibrate=3.0).latency_of(Frozen())[0] == \
        pytest.approx(3.0 * raw)
    # timings of the user's device: 4x the prediction
    export_onnx(net, shape, tmp_path / "net.onnx")
    # The filter judges on what `nas-predictor latency` reports: for this two-node net, far below the
    # training networks, the FLOPs/memory fallback, not the network's output; the timings are 4x that
    # number, so a map fitted on the network's outputs instead would not come out 4x.
    [estimate] = assess_latency(plain.estimator().predictor, [onnx_to_graph(tmp_path / "net.onnx")], "gold_6226")
    assert estimate.source == "fallback" and raw == pytest.approx(estimate.predicted_ms)
    assert estimate.model_ms != pytest.approx(raw, rel=0.01)
    (tmp_path / "t.csv").write_text(f"net.onnx,{4 * raw}\n")
    fitted = LatencyFilter(3.5 * raw, setting="gold_6226", input_shape=shape, calibrate=tmp_path / "t.csv")
    assert not fitted(Frozen()) and fitted.history[-1]["latency_ms"] == pytest.approx(4 * raw)
    assert fitted.latency_map().scale == pytest.approx(4.0) and "timings in" in fitted.describe()
    # arch strings of a known space go through the same factor
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert fitted.source_for("nasbench201").latency_ms([arch])[0] == pytest.approx(
        4.0 * plain.source_for("nasbench201").latency_ms([arch])[0])
