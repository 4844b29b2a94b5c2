import copy
import io
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nas_predictor.errors import CheckpointError, DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.latency_domain import (
    DOMAIN_KEY,
    FAR,
    NO_DOMAIN_REASON,
    FallbackLine,
    assess_latency,
    build_latency_domain,
    fit_fallback_line,
    graph_depth,
    graph_features,
)
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.predictor import Predictor, load_pretrained
from tests.nas_predictor.test_pretrained_latency import conv_stack


def stacked_graph(blocks: int, channels: int = 16, size: int = 32, tail: nn.Module | None = None) -> ArchGraph:
    """A stem and ``blocks`` Conv-BN-ReLU blocks, read by nas_predictor (exported as the training graphs were)."""
    return onnx_to_graph(conv_stack(blocks, size=size, channels=channels, tail=tail))


def chain(ops, **scalars) -> ArchGraph:
    base = {"batch_size": 1.0, "flops": 1e8, "params": 1e5, "memory_access": 1e6}
    return ArchGraph(tuple(ops), tuple((i, i + 1) for i in range(len(ops) - 1)), scalars={**base, **scalars})


def test_depth_is_the_longest_path_in_nodes():
    diamond = ArchGraph(("Input", "Conv", "Relu", "Conv", "Add"), ((0, 1), (1, 2), (2, 4), (0, 3), (3, 4)))
    assert graph_depth(diamond) == 4
    assert graph_depth(ArchGraph(("Input",), ())) == 1
    # nodes listed out of order: the depth follows the edges, not the index
    assert graph_depth(ArchGraph(("Add", "Input", "Conv"), ((1, 2), (2, 0)))) == 3


def test_features_need_whole_network_costs():
    assert graph_features(chain(["Input", "Conv"]))["depth"] == 2.0
    with pytest.raises(DataError, match="graph has no flops, params, memory_access"):
        graph_features(ArchGraph(("Input", "Conv"), ((0, 1),)))


def test_fallback_line_recovers_a_non_negative_cost_model():
    rng = np.random.default_rng(0)
    feats = [{"flops": f, "memory_access": m, "nodes": n} for f, m, n in
             zip(rng.uniform(1e7, 1e9, 50), rng.uniform(1e5, 1e8, 50), rng.integers(50, 400, 50))]
    truth = FallbackLine(0.4, (2.0, 0.05, 0.01))  # ms, ms per GFLOP, per M elements, per node
    line = fit_fallback_line(feats, [truth.predict(f) for f in feats])
    assert line.intercept == pytest.approx(0.4, rel=1e-6)
    assert line.coefficients == pytest.approx((2.0, 0.05, 0.01), rel=1e-6)
    # labels that fall with FLOPs: the line never turns negative, the coefficient stops at 0
    falling = fit_fallback_line(feats, [10.0 / (1 + f["flops"] / 1e9) for f in feats])
    assert falling.coefficients[0] == 0.0 and all(c >= 0 for c in falling.coefficients)
    assert FallbackLine.from_dict(line.to_dict()) == line
    with pytest.raises(DataError, match="finite and positive"):
        fit_fallback_line(feats[:2], [1.0, -1.0])
    with pytest.raises(CheckpointError, match="negative or non-finite"):
        FallbackLine.from_dict({**line.to_dict(), "ms_per_nodes": -1.0})


def test_stacking_doubles_the_fallback_with_the_work():
    line = FallbackLine(0.0, (2.0, 0.05, 0.01))
    f10, f20 = graph_features(stacked_graph(10, size=8)), graph_features(stacked_graph(20, size=8))
    # one stem + N blocks: the block's share of FLOPs, memory and nodes is linear in N
    stem = {k: 2 * f10[k] - f20[k] for k in f10}
    f40 = {k: stem[k] + 4 * (f10[k] - stem[k]) for k in f10}
    assert graph_features(stacked_graph(40, size=8)) == pytest.approx(f40)
    assert line.predict(f40) - line.predict(stem) == pytest.approx(4 * (line.predict(f10) - line.predict(stem)))


def _domain_graphs():
    graphs = [chain(["Input"] + ["Conv", "Relu"] * k, flops=1e8 * k, params=1e4 * k, memory_access=1e6 * k)
              for k in range(5, 21)]
    lat = np.array([[0.2 + 0.01 * g.num_nodes + 0.5 * g.scalars["flops"] / 1e9, np.nan] for g in graphs])
    lat[::2, 1] = 2 * lat[::2, 0]  # the second setting measured only every other network
    return graphs, lat


def test_domain_summary_per_setting_over_the_graphs_labelled_on_it():
    graphs, lat = _domain_graphs()
    domain = build_latency_domain(graphs, lat, ["dev_1", "cpu"], "synthetic chains")
    assert domain["version"] == 1 and domain["source"] == "synthetic chains"
    gpu, cpu = domain["settings"]["dev_1"], domain["settings"]["cpu"]
    assert gpu["num_graphs"] == 16 and cpu["num_graphs"] == 8
    assert gpu["op_types"] == ["Conv", "Input", "Relu"] and gpu["batch_sizes"] == [1]
    assert gpu["ranges"]["nodes"] == [11, 41] and cpu["ranges"]["nodes"] == [11, 39]
    assert gpu["ranges"]["depth"] == [11, 41] and gpu["ranges"]["flops"] == [5e8, 2e9]
    assert gpu["latency_ms"] == pytest.approx([lat[:, 0].min(), lat[:, 0].max()])
    # the labels are a line in nodes and FLOPs: the fallback fits them exactly
    assert gpu["fallback_train_mape"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError, match="setting cpu: 1 training graphs with a label"):
        build_latency_domain(graphs[:2], lat[:2], ["dev_1", "cpu"], "two")


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained("latency-help-b1")


def with_domain(predictor: Predictor, domain) -> Predictor:
    other = copy.copy(predictor)
    other.meta = {**predictor.meta, DOMAIN_KEY: domain}
    if domain is None:
        other.meta.pop(DOMAIN_KEY)
    return other


def test_a_graph_inside_the_domain_is_in_distribution_and_keeps_the_model_output(shipped):
    graphs = [stacked_graph(n, size=8) for n in (4, 6, 8)]
    model = shipped.predict_latency(graphs, "titan_rtx_1")
    lat = np.column_stack([model] * len(shipped.settings))
    predictor = with_domain(shipped, build_latency_domain(graphs, lat, shipped.settings, "three stacks"))
    middle = assess_latency(predictor, [graphs[1]], "titan_rtx_1")[0]
    assert middle.in_distribution is True and middle.reasons == [] and middle.source == "model"
    assert middle.predicted_ms == middle.model_ms == pytest.approx(model[1], rel=1e-5)
    assert middle.fallback_ms > 0


def test_far_outside_the_range_the_fallback_is_reported(shipped):
    graphs = [stacked_graph(n, size=8) for n in (4, 6, 8)]
    lat = np.column_stack([shipped.predict_latency(graphs, "titan_rtx_1")] * len(shipped.settings))
    domain = build_latency_domain(graphs, lat, shipped.settings, "three stacks")
    predictor = with_domain(shipped, domain)
    nodes = domain["settings"]["titan_rtx_1"]["ranges"]["nodes"]
    edge = stacked_graph(10, size=8)  # within FAR of the deepest: still in range
    assert edge.num_nodes <= FAR * nodes[1]
    assert not any(r.startswith(("nodes", "depth")) for r in assess_latency(predictor, [edge], "titan_rtx_1")[0].reasons)
    deep = stacked_graph(60, size=8)
    [est] = assess_latency(predictor, [deep], "titan_rtx_1", ["deep.onnx"])
    assert est.in_distribution is False and est.source == "fallback"
    assert est.predicted_ms == est.fallback_ms != est.model_ms
    assert f"nodes {deep.num_nodes} far outside training range {nodes[0]:g}-{nodes[1]:g}" in est.reasons
    assert any(r.startswith(f"depth {graph_depth(deep)} far outside") for r in est.reasons)


def test_an_unseen_op_and_an_untrained_batch_are_named(shipped):
    graphs = [stacked_graph(n, size=8) for n in (4, 6, 8)]
    lat = np.column_stack([shipped.predict_latency(graphs, "titan_rtx_1")] * len(shipped.settings))
    predictor = with_domain(shipped, build_latency_domain(graphs, lat, shipped.settings, "three stacks"))
    odd = stacked_graph(6, size=8, tail=nn.Softmax(dim=1))
    [est] = assess_latency(predictor, [odd], "titan_rtx_1")
    assert est.in_distribution is False
    assert est.reasons[0] == "op types never seen in training: Softmax x1"
    rebatched = onnx_to_graph(_stack_bytes(6), batch_size=4)
    [est] = assess_latency(predictor, [rebatched], "titan_rtx_1")
    assert "batch 4 never trained at (trained: 1)" in est.reasons


def _stack_bytes(blocks: int) -> bytes:
    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(*layers).eval(), (torch.zeros(1, 3, 8, 8),), buffer, dynamo=False,
                          opset_version=17, export_params=False, do_constant_folding=False)
    return buffer.getvalue()


def test_a_predictor_without_a_domain_says_so(shipped):
    old = with_domain(shipped, None)
    [est] = assess_latency(old, [stacked_graph(4, size=8)], "titan_rtx_1")
    assert est.in_distribution is None and est.fallback_ms is None and est.reasons == [NO_DOMAIN_REASON]
    assert est.predicted_ms == est.model_ms and est.source == "model"
    with pytest.raises(CheckpointError, match="version 7"):
        assess_latency(with_domain(shipped, {"version": 7}), [stacked_graph(4, size=8)], "titan_rtx_1")


def test_ensemble_members_that_disagree_are_flagged(shipped):
    graphs = [stacked_graph(n, size=8) for n in (4, 6, 8)]
    lat = np.column_stack([shipped.predict_latency(graphs, "titan_rtx_1")] * len(shipped.settings))
    domain = build_latency_domain(graphs, lat, shipped.settings, "three stacks")
    agreeing = Predictor({**shipped.meta, DOMAIN_KEY: domain}, [shipped.models[0], copy.deepcopy(shipped.models[0])])
    assert assess_latency(agreeing, [graphs[1]], "titan_rtx_1")[0].in_distribution is True
    other = copy.deepcopy(shipped.models[0])
    with torch.no_grad():
        other.head[6].bias += math.log(1.5)  # the head is in log ms: this member says 1.5x
    split = Predictor({**shipped.meta, DOMAIN_KEY: domain}, [shipped.models[0], other])
    [est] = assess_latency(split, [graphs[1]], "titan_rtx_1")
    assert est.in_distribution is False
    assert est.reasons == ["ensemble members disagree by 50 % (limit 25 %)"]


def test_a_folding_predictor_checks_and_falls_back_on_the_graph_it_reads():
    from nas_predictor.network_encoding import NetworkTokenizer
    from nas_predictor.runtime_fusion import fold_batchnorm

    class Folding:  # a predictor that reads graphs with BN folded, trained on graphs in that form
        tokenizer = NetworkTokenizer(fold_batchnorm=True)
        models = [None]
        default_setting = "cpu"

        def __init__(self, meta):
            self.meta = meta

        def predict_latency(self, graphs, setting):
            return np.ones(len(graphs))

    graphs = [stacked_graph(n, size=8) for n in (4, 6, 8)]  # Conv-BN-ReLU blocks, exported unfolded
    folded = [fold_batchnorm(g) for g in graphs]
    assert "BatchNormalization" in graphs[1].ops and "BatchNormalization" not in folded[1].ops
    lat = np.array([[1.0 + g.scalars["flops"] / 1e8] for g in folded])
    predictor = Folding({DOMAIN_KEY: build_latency_domain(folded, lat, ["cpu"], "folded stacks")})
    # the unfolded export of a training-sized network is inside the domain: its BNs are read folded
    [est] = assess_latency(predictor, [graphs[1]], "cpu")
    assert est.in_distribution is True and est.reasons == []
    assert est.fallback_ms == pytest.approx(assess_latency(predictor, [folded[1]], "cpu")[0].fallback_ms)
    # read unfolded, the same network would have an op type the training graphs never had
    predictor.tokenizer = NetworkTokenizer()
    assert "op types never seen in training: BatchNormalization" in assess_latency(predictor, [graphs[1]], "cpu")[0].reasons[0]
