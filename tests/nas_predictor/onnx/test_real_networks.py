"""Real torchvision/timm networks through onnx_to_graph (issue 26, "Must reach"): the encoder succeeds,
Conv/Gemm/MatMul MACs are within 1 % of torch's FlopCounterMode count of the module, every shape is
resolved, and batch 32 (re-reading the file, or the batch-32 predictors' rebatch) is exactly 32x the
batch-1 FLOPs or a clear error. Exports come from the conftest's export-venv fixture.
"""

from __future__ import annotations

import functools
import warnings

import onnx
import pytest
from onnx import TensorProto, helper

from nas_predictor.errors import NasPredictorError
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.rebatch import rebatch

REAL_NETWORKS = [
    "torchvision:resnet18@224",
    "timm:tf_mobilenetv3_small_100@224",
    "timm:swin_tiny_patch4_window7_224@224",
    "timm:deit_tiny_patch16_224@224",
    "timm:levit_128s@224",
    "timm:mobilevit_xxs@224",
    "timm:resmlp_12_224@224",
    "timm:convnext_atto@224",
]

@pytest.fixture(scope="module")
def real_network_exports(export_real_networks):
    return export_real_networks(REAL_NETWORKS)


@pytest.fixture(scope="module")
def encoded(real_network_exports):
    """Batch-1 graph and the warnings onnx_to_graph raised, per network (encoded once)."""
    folder, rows = real_network_exports

    @functools.lru_cache(maxsize=None)
    def get(nid: str):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = onnx_to_graph(folder / rows[nid]["file"])
        return graph, [str(w.message) for w in caught]

    return get


def test_encodes(real_network_exports, encoded):
    for nid in REAL_NETWORKS:
        graph, _ = encoded(nid)
        assert graph.num_nodes > 10, nid
        assert graph.scalars["flops"] > 0, nid


@pytest.mark.parametrize("nid", REAL_NETWORKS)
def test_macs_match_flop_counter(nid, real_network_exports, encoded, real_networks_module):
    graph, _ = encoded(nid)
    reference = real_network_exports[1][nid]["reference_macs"]
    ours = real_networks_module.graph_costs(graph)["macs"]
    assert abs(ours - reference) <= 0.01 * reference, f"{nid}: {ours / 1e9:.4f} GMACs, reference {reference / 1e9:.4f}"


@pytest.mark.parametrize("nid", REAL_NETWORKS)
def test_every_shape_resolved(nid, encoded, real_networks_module):
    graph, caught = encoded(nid)
    costs = real_networks_module.graph_costs(graph)
    assert costs["unresolved_mac_nodes"] == 0 and costs["zero_dim_nodes"] == 0, f"{nid}: {costs}"
    assert not [w for w in caught if "shape" in w], caught


@pytest.mark.parametrize("nid", REAL_NETWORKS)
def test_only_the_image_is_a_data_input(nid, encoded, real_networks_module):
    """A weight-free export lists every parameter as a graph input. Layer scales, class tokens and attention
    biases feed Mul/Add/Concat/Gather, not parameter slots; taken as data they count as activations that
    grow with the batch (and make re-reading at batch 32 fail), not as parameters."""
    costs = real_networks_module.graph_costs(encoded(nid)[0])
    assert costs["batched_inputs"] == 1, f"{nid}: inputs taken as data: {costs['batched_input_shapes']}"


# CNNs whose batched tensors all lead with the batch: refusing them would be a regression, not caution
EXACT_AT_32 = {"torchvision:resnet18@224", "timm:tf_mobilenetv3_small_100@224", "timm:convnext_atto@224"}


def _assert_batch32_exact_or_refused(make, flops_1: float, nid: str) -> None:
    try:
        graph = make()
    except NasPredictorError as err:
        assert nid not in EXACT_AT_32, f"{nid}: refused at batch 32 although every shape follows the batch: {err}"
        assert "batch" in str(err).lower(), f"{nid}: the refusal does not name the batch: {err}"
        return
    assert graph.scalars["flops"] == pytest.approx(32 * flops_1, rel=1e-9), (
        f"{nid}: batch 32 gives {graph.scalars['flops'] / 1e9:.3f} GFLOPs, 32 x batch 1 is {32 * flops_1 / 1e9:.3f}")


@pytest.mark.parametrize("nid", REAL_NETWORKS)
def test_batch32_reread_exact_or_refused(nid, real_network_exports, encoded):
    folder, rows = real_network_exports
    flops_1 = encoded(nid)[0].scalars["flops"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_batch32_exact_or_refused(lambda: onnx_to_graph(folder / rows[nid]["file"], batch_size=32), flops_1, nid)


@pytest.mark.parametrize("nid", REAL_NETWORKS)
def test_batch32_rebatch_exact_or_refused(nid, encoded):
    graph = encoded(nid)[0]
    _assert_batch32_exact_or_refused(lambda: rebatch(graph, 32), graph.scalars["flops"], nid)


# -- the benchmark's own MAC count, on a graph whose MACs are known by hand ---------------------------
def _tiny_model() -> onnx.ModelProto:
    """Conv 3->4 k3 on 8x8 (4*64*27 = 6,912 MACs), depthwise Conv k3 (4*64*9 = 2,304), Gemm 256->10 with
    transB (2,560), and an attention-like MatMul of two activations (1,4,4,16)x(1,4,16,4) (4*4*4*16 = 1,024)."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Reshape", ["c2", "s1"], ["q"]),
        helper.make_node("Transpose", ["q"], ["k"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "k"], ["att"]),
        helper.make_node("Flatten", ["c2"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["y"], transB=1),
    ]
    inits = [helper.make_tensor("s1", TensorProto.INT64, [4], [1, 4, 4, 16])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", f, [1, 3, 8, 8]),
                        helper.make_tensor_value_info("w1", f, [4, 3, 3, 3]),
                        helper.make_tensor_value_info("w2", f, [4, 1, 3, 3]),
                        helper.make_tensor_value_info("w3", f, [10, 256]),
                        helper.make_tensor_value_info("b3", f, [10])],
        [helper.make_tensor_value_info("y", f, [1, 10]), helper.make_tensor_value_info("att", f, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_benchmark_macs_count_matches_hand_count(real_networks_module):
    graph = onnx_to_graph(_tiny_model(), data_inputs=["x"])
    costs = real_networks_module.graph_costs(graph)
    assert costs["macs_from_shapes"] == 6912 + 2304 + 2560 + 1024
    # the encoder's per-node ``macs`` attribute, once it has one, must agree with the hand count too
    assert costs["macs"] == costs["macs_from_shapes"]
    assert costs["mac_nodes"] == 4 and costs["unresolved_mac_nodes"] == 0
