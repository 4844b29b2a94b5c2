"""The modern CNN families (issue 27): reproducibility, the ONNX ops each brings, parameter ranges, runs."""

import onnx
import pytest
import torch

from search_spaces.cnn_families import EXTENDED_RESOLUTIONS, family_spec, generate
from search_spaces.cnn_families.blocks import meta_macs
from search_spaces.onnx_export import export_onnx

# the shared checks assert: pytest rewrites their asserts (as a test module's) if told before the import
pytest.register_assert_rewrite("tests.search_spaces.modern_families_common")
from tests.search_spaces.modern_families_common import (  # noqa: E402
    attr, check_parameters_within, check_reproducible_and_seeds_differ, check_runs_and_encodes, extended_onnx,
    generated, op_types, producers_of)

CONV_FAMILIES = ("convnext", "regnet", "shufflenet", "ghostnet", "densenet", "hrnet")
# the parameter ranges the modules' docstrings state (measured over seeds 0-149 of both spaces), rounded outwards
PARAM_RANGES = {
    "convnext": (0.9e6, 9.0e6),
    "regnet": (0.7e6, 15.0e6),
    "shufflenet": (0.9e6, 7.2e6),
    "ghostnet": (2.7e6, 8.1e6),
    "densenet": (0.35e6, 5.2e6),
    "hrnet": (0.7e6, 18.5e6),
}
# Small variants keep the exports quick (the legacy exporter traces a real forward pass). ONNX_SEED's
# extended draw is exported with variant_onnx and also run at its drawn resolution (160; HRNet's 4-branch
# seed is drawn at 208, whose branches are 52 / 26 / 13 / 7, so it upsamples to odd sizes); RUN_SEED's
# draw is run at the other resolutions (overridden). regnet's ONNX seed is a RegNetY, its run seed a RegNetX.
ONNX_SEED = {"convnext": 1, "regnet": 31, "shufflenet": 30, "ghostnet": 7, "densenet": 6, "hrnet": 80}
RUN_SEED = {"convnext": 36, "regnet": 22, "shufflenet": 17, "ghostnet": 31, "densenet": 24, "hrnet": 3}
RUNS = [(f, r) for f in ONNX_SEED for r in (160, 256)] + [("hrnet", 208)]
# ONNX node types of variant_onnx(family, ONNX_SEED[family], space="extended") (exporter artefacts
# Constant / Identity aside)
OP_TYPES = {
    "convnext": {"Conv", "Transpose", "LayerNormalization", "MatMul", "Add", "Div", "Erf", "Mul", "ReduceMean",
                 "Gemm"},
    "regnet": {"Conv", "BatchNormalization", "Relu", "Add", "GlobalAveragePool", "Sigmoid", "Mul", "Flatten",
               "Gemm"},
    "shufflenet": {"Conv", "BatchNormalization", "Relu", "MaxPool", "Split", "Concat", "Reshape", "Transpose",
                   "ReduceMean", "Gemm"},
    # the Unsqueezes feed the Slice its constant bounds (the legacy exporter without constant folding)
    "ghostnet": {"Conv", "BatchNormalization", "Relu", "Concat", "Unsqueeze", "Slice", "Add", "GlobalAveragePool",
                 "HardSigmoid", "Mul", "Flatten", "Gemm"},
    "densenet": {"Conv", "BatchNormalization", "Relu", "MaxPool", "Concat", "AveragePool", "GlobalAveragePool",
                 "Flatten", "Gemm"},
    # Shape / Slice / Cast / Concat build Resize's ``sizes`` input (folded by onnx_to_graph and onnxruntime)
    "hrnet": {"Conv", "BatchNormalization", "Relu", "Add", "Shape", "Slice", "Cast", "Concat", "Resize",
              "GlobalAveragePool", "Flatten", "Gemm"},
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # the exports trace real forward passes; one thread keeps them off the core a background latency
    # measurement may be using (and is as fast for these small networks)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _onnx(family):
    return extended_onnx(family, ONNX_SEED[family])


def _model(data):
    return onnx.load_from_string(data)


def _conv_shapes(model):
    """(kernel, group, C_in) of every Conv, from the weight's declared shape (weights are graph inputs)."""
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]
            group = attr(node, "group", 1)
            out.append((weight[2], group, weight[1] * group))
    return out


def _check_convnext(model, config):
    convs = _conv_shapes(model)
    assert any(k >= 7 and g == c > 1 for k, g, c in convs)  # a large depthwise kernel


def _check_regnet(model, config):
    convs = _conv_shapes(model)
    assert any(1 < g < c for k, g, c in convs)  # a grouped (not depthwise) conv


def _check_shufflenet(model, config):
    producers = producers_of(model)
    shuffles = [n for n in model.graph.node if n.op_type == "Reshape"
                and producers[n.input[0]].op_type == "Transpose"
                and producers[producers[n.input[0]].input[0]].op_type == "Reshape"
                and attr(producers[n.input[0]], "perm") == [0, 2, 1, 3, 4]]
    units = sum(n.op_type == "Concat" for n in model.graph.node)
    assert len(shuffles) == units > 0  # every unit ends with its channel shuffle
    assert any(g == c > 1 for k, g, c in _conv_shapes(model))


def _check_ghostnet(model, config):
    producers = producers_of(model)
    # every Ghost module slices its concatenation (primary + cheap) to the output width
    assert sum(n.op_type == "Slice" and producers[n.input[0]].op_type == "Concat" for n in model.graph.node) \
        == sum(n.op_type == "Concat" for n in model.graph.node) > 0
    assert any(g == c > 1 for k, g, c in _conv_shapes(model))


def _check_densenet(model, config):
    blocks = config["blocks"]
    inputs = sorted(len(n.input) for n in model.graph.node if n.op_type == "Concat")
    # layer i of a block concatenates the block input and the i earlier layers' maps, the block's output
    # all d + 1 of them (a one-input cat may or may not stay a Concat node: ignored)
    assert [k for k in inputs if k > 1] == sorted(k for d in blocks for k in range(2, d + 2))
    assert max(inputs) == max(blocks) + 1 >= 9


def _check_hrnet(model, config):
    stages = config["stages"]
    # a module on b branches upsamples every lower-resolution branch into every higher one: b(b-1)/2
    expected = sum(st["modules"] * (b * (b - 1) // 2) for b, st in enumerate(stages, start=2))
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert len(resizes) == expected == 10  # 1 + 3 + 6
    assert {attr(n, "mode") for n in resizes} == {b"nearest"}


SIGNATURES = {"hrnet": _check_hrnet, "densenet": _check_densenet, "convnext": _check_convnext, "regnet": _check_regnet,
              "shufflenet": _check_shufflenet,
              "ghostnet": _check_ghostnet}


@pytest.mark.parametrize("family", CONV_FAMILIES)
def test_generation_is_reproducible_and_seeds_differ(family):
    check_reproducible_and_seeds_differ(family, ONNX_SEED[family])


@pytest.mark.parametrize("family", CONV_FAMILIES)
def test_exported_op_types(family):
    info, data = _onnx(family)
    model = _model(data)
    assert op_types(model) == OP_TYPES[family]
    SIGNATURES[family](model, info["config"])


@pytest.mark.parametrize("family", CONV_FAMILIES)
def test_parameters_within_the_stated_range(family):
    low, high = PARAM_RANGES[family]
    check_parameters_within(family, low, high)


@pytest.mark.parametrize("family", CONV_FAMILIES)
def test_every_extended_resolution_builds(family):
    # a forward on the meta device checks every shape (HRNet's fusion sums maps of odd sizes, e.g. 13 <- 7
    # at 208) without computing anything
    spec = family_spec(family)
    config = generated(family, RUN_SEED[family], "extended").config
    for resolution in EXTENDED_RESOLUTIONS + (224,):
        assert meta_macs(lambda: spec.build(config, resolution, 1000), (1, 3, resolution, resolution)) > 0


@pytest.mark.parametrize("family, resolution", RUNS)
def test_extended_variants_run_in_onnxruntime_and_encode(family, resolution):
    info, data = _onnx(family)
    if info["config"]["resolution"] == resolution:
        macs = info["macs"]
    else:
        variant = generate(family, RUN_SEED[family], space="extended", resolution=resolution)
        data, macs = export_onnx(variant.build(), variant.input_shape), variant.macs
    check_runs_and_encodes(data, macs, input_shape=(1, 3, resolution, resolution))
