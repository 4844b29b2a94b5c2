"""The NB201 macro network against the sanity numbers of the latency-families spec (1.7, 3.9),
and the shared export / counting helpers of search_spaces.onnx_export."""

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nas_predictor.errors import ArchError
from nas_predictor.onnx import onnx_to_graph
from search_spaces.nasbench201 import NASBench201, format_arch
from search_spaces.nb201_network import Zero, build_nb201_network
from search_spaces.onnx_export import count_macs, count_params, export_onnx

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALL_CONV3 = format_arch(["nor_conv_3x3"] * 6)
ALL_NONE = format_arch(["none"] * 6)
CIFAR = (1, 3, 32, 32)


def executions(model: nn.Module, input_shape) -> Counter:
    """How often each kind of module runs in one forward pass (convs split by kernel size)."""
    counts: Counter = Counter()

    def hook(module, _inputs, _output):
        if isinstance(module, nn.Conv2d):
            counts["conv"] += 1
            counts[f"conv{module.kernel_size[0]}x{module.kernel_size[1]}"] += 1
        else:
            counts[type(module).__name__] += 1

    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d, nn.Linear, Zero)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.eval()(torch.zeros(input_shape))
    for h in handles:
        h.remove()
    return counts


def test_index_zero_is_a0():
    assert NASBench201().arch_from_index(0) == A0
    assert NASBench201().arch_from_index(1) == A1


@pytest.mark.parametrize(
    "arch, classes, size, params, mflops",
    [
        (A0, 10, 32, 129_306, 15.64737),
        (A1, 10, 32, 802_426, 113.95137),
        (ALL_CONV3, 10, 32, 1_531_546, 220.11969),
        (ALL_NONE, 10, 32, 73_306, None),  # the spec gives no MFLOPs for it
        # the other two NB201 variants of the table (same builder, other classes / input size)
        (A0, 100, 32, 135_156, 15.65322),
        (A1, 100, 32, 808_276, 113.95722),
        (A0, 120, 16, 136_456, 3.91948),
        (A1, 120, 16, 809_576, 28.49548),
    ],
)
def test_params_and_flops_match_the_spec(arch, classes, size, params, mflops):
    model = build_nb201_network(arch, num_classes=classes)
    assert count_params(model) == params
    if mflops is not None:
        # the table's MFLOPs are exact MAC counts / 1e6
        assert count_macs(model, (1, 3, size, size)) == round(mflops * 1e6)


def _formula_params(ops, classes=10):
    """Spec 1.7's closed form."""
    per = {"nor_conv_3x3": lambda c: 9 * c * c + 2 * c, "nor_conv_1x1": lambda c: c * c + 2 * c}
    cells = sum(5 * per[op](c) for c in (16, 32, 64) for op in ops if op in per)
    return 464 + cells + 14_464 + 57_600 + 128 + 64 * classes + classes


def test_params_follow_the_spec_formula():
    space = NASBench201()
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = space.sample(rng)
        ops = [part.split("~")[0] for part in arch.replace("+", "").split("|") if part]
        assert count_params(build_nb201_network(arch)) == _formula_params(ops)


def test_module_executions_match_the_spec():
    a0 = executions(build_nb201_network(A0), CIFAR)
    assert (a0["conv"], a0["conv1x1"], a0["BatchNorm2d"], a0["ReLU"]) == (37, 32, 36, 35)
    assert (a0["AvgPool2d"], a0["Linear"]) == (17, 1)  # 15 pool edges + 2 shortcut pools
    a1 = executions(build_nb201_network(A1), CIFAR)
    assert (a1["conv"], a1["conv3x3"], a1["BatchNorm2d"], a1["ReLU"], a1["AvgPool2d"]) == (52, 50, 51, 50, 17)
    # conv count = 1 + 15 * conv edges + 6; every `none` edge is an executed x0
    assert executions(build_nb201_network(ALL_CONV3), CIFAR)["conv"] == 1 + 15 * 6 + 6
    none = executions(build_nb201_network(ALL_NONE), CIFAR)
    assert none["conv"] == 7 and none["Zero"] == 90


def test_forward_returns_logits_only():
    out = build_nb201_network(A1).eval()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert build_nb201_network(A0, num_classes=100).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_none_edge_gives_zeros_and_pool_excludes_padding():
    assert torch.equal(Zero()(torch.randn(2, 3)), torch.zeros(2, 3))
    pool = build_nb201_network(A0).cells[0].edges[0]
    assert isinstance(pool, nn.AvgPool2d) and pool.count_include_pad is False


def test_exported_graph_matches_the_spec_op_counts():
    ops = {name: Counter(onnx_to_graph(export_onnx(build_nb201_network(a), CIFAR)).ops)
           for name, a in (("a0", A0), ("a1", A1), ("none", ALL_NONE))}
    # 3 Adds per normal cell, 1 per reduction block (spec 3.9); fewer when CSE merges equal sums
    assert ops["a0"]["Add"] == ops["a1"]["Add"] == 47 and ops["none"]["Add"] == 32
    # BN stays a separate node (no constant folding): one per executed BN
    assert ops["a0"]["BatchNormalization"] == 36 and ops["a1"]["BatchNormalization"] == 51
    assert ops["a0"]["Conv"] == 37 and ops["a1"]["Conv"] == 52
    assert ops["a1"]["Relu"] == 35  # the exporter's CSE merges ReLUs of one tensor (50 executed)
    assert ops["none"]["Mul"] == 45  # 90 executed x0, merged pairwise by CSE
    assert ops["a0"]["AveragePool"] == 17 and ops["a0"]["Gemm"] == 1


def test_exported_pool_attributes():
    graph = onnx_to_graph(export_onnx(build_nb201_network(A0), CIFAR))
    pools = [a for op, a in zip(graph.ops, graph.attrs) if op == "AveragePool" and a["kernel"] == [3, 3]]
    assert len(pools) == 15 and all(a["count_include_pad"] == 0 and a["pad"] == [1, 1, 1, 1] for a in pools)
    assert graph.shapes[-1] == (1, 10)


def test_export_is_weight_free_with_fixed_names_and_keeps_the_mode(tmp_path):
    model = build_nb201_network(A0)
    model.train()
    path = tmp_path / "sub" / "a0.onnx"
    data = export_onnx(model, CIFAR, path)
    assert model.training  # restored after the eval-mode export
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["a0.onnx"]  # no temp file left behind
    proto = onnx.load_from_string(data)
    assert len(proto.graph.initializer) == 0
    assert proto.graph.input[0].name == "input" and [o.name for o in proto.graph.output] == ["logits"]
    assert proto.opset_import[0].version == 17


def test_export_with_weights_runs_in_onnxruntime_like_torch():
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_nb201_network(A1).eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):  # make BN non-trivial
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.2, 0.2)
    x = torch.randn(2, 3, 32, 32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(export_onnx(model, x.shape, export_params=True), options,
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", ["", "|nor_conv_3x3~0|", A0.replace("avg_pool_3x3", "max_pool_3x3"), A0 + "x"])
def test_malformed_arch_raises_arch_error(bad):
    with pytest.raises(ArchError, match="NAS-Bench-201|unknown op"):
        build_nb201_network(bad)
