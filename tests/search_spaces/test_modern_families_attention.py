"""The attention / MLP / MetaFormer / hybrid families (issue 27): reproducibility, ONNX ops, parameter ranges, runs."""

import onnx
import pytest

from nas_predictor.onnx import onnx_to_graph
from search_spaces.cnn_families import base_variant, family_spec, generate
from search_spaces.cnn_families.blocks import meta_params
from search_spaces.onnx_export import export_onnx

# the shared checks assert: pytest rewrites their asserts (as a test module's) if told before the import
pytest.register_assert_rewrite("tests.search_spaces.modern_families_common")
from tests.search_spaces.modern_families_common import (  # noqa: E402
    attr, check_parameters_within, check_reproducible_and_seeds_differ, check_runs_and_encodes, extended_onnx,
    generated, input_names, op_types, producers_of)

FAMILIES = ("vit", "swin", "mixer", "poolformer", "mobilevit")
# parameter ranges the modules' docstrings state (measured over seeds 0-149 of both spaces)
PARAM_RANGES = {
    "vit": (1.68e6, 21.99e6),
    "swin": (1.06e6, 21.99e6),
    "mixer": (1.57e6, 20.18e6),
    "poolformer": (1.35e6, 11.76e6),
    "mobilevit": (1.26e6, 6.93e6),
}
# base networks' parameters (vit: timm's deit_tiny_patch16_224; swin: torchvision's swin_t at half width)
BASE_PARAMS = {"vit": 5_717_416, "swin": 7_299_634, "mixer": 19_104_624, "poolformer": 6_807_736,
               "mobilevit": 2_317_848}
# their MACs at 224 (meta_macs: Conv / Linear, not the attention matmuls), as the docstrings state
BASE_MACS = {"vit": 1_078_974_952, "swin": 1_097_997_544, "mixer": 1_004_705_256, "poolformer": 1_029_178_024,
             "mobilevit": 705_135_528}
MAC_WINDOW = (0.2, 2.0)  # every family's SPEC.mac_window
# Small extended-space variants drawn at resolution 160 (so variant_onnx's export is also the run at 160)
# whose exports show each family's ops: vit 34 has a class token, swin 35 (window 6: maps 40, 20, 10 padded
# to 42, 24, 12) pads and shifts in every stage, mixer 11 is a ResMLP and mixer 47 an MLP-Mixer, mobilevit
# 26 (maps 20, 10, 5 at its transformer stages) resizes its last one.
SEEDS = {"vit": (34,), "swin": (35,), "mixer": (11, 47), "poolformer": (22,), "mobilevit": (26,)}
CASES = [(family, seed) for family in FAMILIES for seed in SEEDS[family]]
# ONNX node types of variant_onnx(family, seed, space="extended") (exporter artefacts aside)
OP_TYPES = {
    ("vit", 34): {"Conv", "Reshape", "Transpose", "Slice", "Shape", "Expand", "Concat", "Add", "LayerNormalization",
                  "MatMul", "Split", "Squeeze", "Mul", "Softmax", "Div", "Erf", "Gather", "Unsqueeze", "Gemm"},
    # (F.pad's legacy export computes its pads: Shape, ConstantOfShape, Cast, Sub, as torchvision's Swin)
    ("swin", 35): {"Conv", "Transpose", "LayerNormalization", "Pad", "Shape", "ConstantOfShape", "Cast", "Sub",
                   "Slice", "Concat", "Reshape", "MatMul", "Add", "Split", "Squeeze", "Mul", "Gather", "Unsqueeze",
                   "Softmax", "Div", "Erf", "GlobalAveragePool", "Flatten", "Gemm"},
    ("mixer", 11): {"Conv", "Reshape", "Transpose", "Mul", "Add", "MatMul", "Div", "Erf", "ReduceMean", "Gemm"},
    ("mixer", 47): {"Conv", "Reshape", "Transpose", "LayerNormalization", "MatMul", "Add", "Div", "Erf", "Mul",
                    "ReduceMean", "Gemm"},
    ("poolformer", 22): {"Conv", "Reshape", "InstanceNormalization", "Shape", "Unsqueeze", "Mul", "Add",
                         "AveragePool", "Sub", "Div", "Erf", "ReduceMean", "Gemm"},
    ("mobilevit", 26): {"Conv", "BatchNormalization", "Sigmoid", "Mul", "Add", "Reshape", "Transpose",
                        "LayerNormalization", "MatMul", "Split", "Squeeze", "Softmax", "Div", "Erf", "Resize", "Shape",
                        "Slice", "Cast", "Concat", "GlobalAveragePool", "Flatten", "Gemm"},
}


def _check_vit(model, config):
    ops = [n.op_type for n in model.graph.node]
    blocks = len(config["blocks"])
    assert ops.count("Softmax") == blocks and ops.count("LayerNormalization") == 2 * blocks + 1
    # attention: Softmax(MatMul(q, k^T)) feeding a MatMul with v
    producers = producers_of(model)
    for node in model.graph.node:
        if node.op_type == "Softmax":
            assert producers[node.input[0]].op_type == "MatMul"


def _check_swin(model, config):
    producers, inputs = producers_of(model), input_names(model)
    # the shift: torch.roll is Concat of two Slices of one tensor (per rolled axis)
    rolls = [n for n in model.graph.node if n.op_type == "Concat" and len(n.input) == 2
             and all(x in producers and producers[x].op_type == "Slice" for x in n.input)
             and producers[n.input[0]].input[0] == producers[n.input[1]].input[0]]
    # every second block shifts where the window is smaller than the map padded to a window multiple
    shifted, size, window = 0, config["resolution"] // 4, config["window"]
    for i, stage in enumerate(config["stages"]):
        size = -(-size // 2) if i else size
        shifted += stage["depth"] // 2 if window < size + (-size) % window else 0
    assert shifted
    assert len(rolls) == 4 * shifted  # two axes, rolled and rolled back
    # the mask of each shifted block is added to its logits (a graph input, or an Identity of an equal one)
    masked = [n for n in model.graph.node if n.op_type == "Add" and any(x.endswith(".attn.mask") for x in n.input)]
    assert len(masked) == shifted
    # relative position bias: each block's table gathered by the network's one index (a graph input)
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0].endswith(".attn.bias_table")]
    assert len(gathers) == sum(stage["depth"] for stage in config["stages"])
    assert all(n.input[1] == "bias_index" for n in gathers)
    assert "bias_index" in inputs


def _check_mixer(model, config):
    inputs, producers = input_names(model), producers_of(model)
    depth = len(config["blocks"])
    ops = [n.op_type for n in model.graph.node]
    if config["kind"] == "resmlp":
        # the affine norms: alpha * x + beta, parameters of shape (1, 1, dim), two per block and a final one
        alphas = [n for n in model.graph.node if n.op_type == "Mul" and any(x.endswith(".alpha") for x in n.input)]
        assert len(alphas) == 2 * depth + 1
        for node in model.graph.node:
            if node.op_type == "Add" and any(x.endswith(".beta") for x in node.input):
                assert any(producers[x].op_type == "Mul" for x in node.input if x in producers)
        # layer scale: one Mul per branch; the token mixing is a single MatMul (no GELU)
        assert sum(any(x.endswith((".ls1", ".ls2")) for x in n.input) for n in model.graph.node if n.op_type == "Mul") \
            == 2 * depth
        assert ops.count("Erf") == depth and ops.count("MatMul") == 3 * depth
    else:
        assert ops.count("LayerNormalization") == 2 * depth + 1 and ops.count("Erf") == 2 * depth
        assert ops.count("MatMul") == 4 * depth
    assert "stem.weight" in inputs


def _check_poolformer(model, config):
    producers = producers_of(model)
    pools = [n for n in model.graph.node if n.op_type == "AveragePool"]
    assert [(attr(n, "kernel_shape"), attr(n, "strides"), attr(n, "count_include_pad")) for n in pools] == \
        [([st["pool"]] * 2, [1, 1], 0) for st in config["stages"] for _ in range(st["depth"])]
    # the token mixer: pool(x) - x
    subs = [n for n in model.graph.node if n.op_type == "Sub"]
    assert len(subs) == len(pools)
    for sub in subs:
        pool = producers[sub.input[0]]
        assert pool.op_type == "AveragePool" and pool.input[0] == sub.input[1]
    blocks = sum(st["depth"] for st in config["stages"])
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("InstanceNormalization") == 2 * blocks + 1  # GroupNorm(1 group)
    assert ops.count("Conv") == 4 + 2 * blocks  # patch embeddings + the MLPs' 1x1 convs


def _check_mobilevit(model, config):
    ops = [n.op_type for n in model.graph.node]
    vits = [st["vit"] for st in config["stages"] if "vit" in st]
    assert ops.count("Softmax") == sum(v["depth"] for v in vits)
    assert ops.count("LayerNormalization") == sum(2 * v["depth"] + 1 for v in vits)
    # a transformer stage whose map is odd resizes it up to the next multiple of the patch (2) and back
    size, odd = -(-config["resolution"] // 2), 0
    for i, stage in enumerate(config["stages"]):
        size = -(-size // 2) if i else size
        odd += "vit" in stage and size % 2
    assert odd and ops.count("Resize") == 2 * odd
    # fusion: the block's input (the stride-2 MV2 block's BatchNormalization) concatenated with the
    # projected transformer output (SiLU: Sigmoid -> Mul)
    producers = producers_of(model)
    fusions = [n for n in model.graph.node if n.op_type == "Concat"
               and [producers[x].op_type if x in producers else None for x in n.input] == ["BatchNormalization", "Mul"]]
    assert len(fusions) == len(vits)


SIGNATURES = {"vit": _check_vit, "swin": _check_swin, "mixer": _check_mixer, "poolformer": _check_poolformer,
              "mobilevit": _check_mobilevit}


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_is_reproducible_and_seeds_differ(family):
    check_reproducible_and_seeds_differ(family, SEEDS[family][0])


@pytest.mark.parametrize("family,seed", CASES)
def test_exported_op_types(family, seed):
    model = onnx.load_from_string(extended_onnx(family, seed)[1])
    assert op_types(model) == OP_TYPES[family, seed]
    SIGNATURES[family](model, generated(family, seed, "extended").config)


@pytest.mark.parametrize("family", FAMILIES)
def test_base_network_and_parameters_within_the_stated_range(family):
    spec = family_spec(family)
    base = base_variant(family)
    assert base.input_shape == (1, 3, 224, 224) and base.macs == BASE_MACS[family]
    assert meta_params(lambda: spec.build(base.config, 224, spec.num_classes)) == BASE_PARAMS[family]
    assert spec.mac_window == MAC_WINDOW
    low, high = PARAM_RANGES[family]
    check_parameters_within(family, low, high, macs=(MAC_WINDOW[0] * base.macs, MAC_WINDOW[1] * base.macs))


@pytest.mark.parametrize("resolution", [160, 256])
@pytest.mark.parametrize("family", FAMILIES)
def test_extended_variants_run_in_onnxruntime_and_encode(family, resolution):
    seed = SEEDS[family][0]
    if resolution == 160:  # the variant's own resolution: its dataset export
        info, data = extended_onnx(family, seed)
        assert info["input_shape"] == [1, 3, 160, 160]
        macs = info["macs"]
    else:
        variant = generate(family, seed, space="extended", resolution=resolution)
        data, macs = export_onnx(variant.build(), variant.input_shape), variant.macs
    graph = check_runs_and_encodes(data, macs)
    if resolution == 160:  # no shape constant holds the batch: the batch-1 file re-sizes to another batch
        assert onnx_to_graph(data, batch_size=3).scalars["flops"] == pytest.approx(3 * graph.scalars["flops"])
