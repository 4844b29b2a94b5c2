"""OFA-MobileNetV3 w1.2 static subnets against the latency-families spec (3.1-3.4, 3.6, 3.8, 3.9)."""

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nas_predictor.errors import ArchError
from search_spaces.ofa_mbv3 import (
    FEATURE_MIX_WIDTH,
    FINAL_EXPAND_WIDTH,
    FIRST_BLOCK_WIDTH,
    RESOLUTIONS,
    STAGE_WIDTHS,
    STEM_WIDTH,
    HSigmoid,
    HSwish,
    MBConv,
    OFAArch,
    OFAMobileNetV3Space,
    build_ofa_mbv3,
    make_divisible,
    parse_ofa_arch,
)
from search_spaces.onnx_export import count_macs, count_params, export_onnx

# Arch 0 of HELP's ofa_archs.pt, canonical (the ks / e values follow from spec 3.6's k and mid columns).
ARCH0 = "ks=7,5,0,0,7,7,0,0,5,7,0,0,5,3,0,0,5,3,5,0;e=6,4,0,0,6,3,0,0,3,6,0,0,3,6,0,0,6,4,3,0;d=2,2,2,2,3;r=204"
# Arch 1 (d=[2,3,4,3,4], r=136): the spec gives only d and r, so ks / e are taken from record 1 of
# shared/data/help_fbnet_ofa_latency/ofa/ofa_archs.pt (checked by test_records_match_the_data_file).
ARCH1 = "ks=7,3,0,0,3,7,3,0,3,7,3,7,3,7,7,0,5,5,7,3;e=4,6,0,0,4,4,4,0,3,6,6,4,4,6,6,0,3,6,6,4;d=2,3,4,3,4;r=136"
LARGEST = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
SMALLEST = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128}


@pytest.fixture(scope="module")
def space():
    return OFAMobileNetV3Space()


def _model(arch):
    a = parse_ofa_arch(arch)
    return build_ofa_mbv3(a.ks, a.e, a.d), (1, 3, a.r, a.r)


def test_widths_at_w12():
    assert (STEM_WIDTH, FIRST_BLOCK_WIDTH, FINAL_EXPAND_WIDTH, FEATURE_MIX_WIDTH) == (24, 24, 1152, 1536)
    assert STAGE_WIDTHS == (32, 48, 96, 136, 192)
    assert make_divisible(16 * 1.2) == 24  # 16 < 0.9 * 19.2, so 8 is added
    assert make_divisible(3) == 8 and make_divisible(12) == 16  # minimum 8, halves round up


# spec 3.4: stage -> (C_in of the first block, C_in of the others), e -> ((mid, se) first, (mid, se) others)
MID_SE = {
    1: ((24, 32), {3: ((72, None), (96, None)), 4: ((96, None), (128, None)), 6: ((144, None), (192, None))}),
    2: ((32, 48), {3: ((96, 24), (144, 40)), 4: ((128, 32), (192, 48)), 6: ((192, 48), (288, 72))}),
    3: ((48, 96), {3: ((144, None), (288, None)), 4: ((192, None), (384, None)), 6: ((288, None), (576, None))}),
    4: ((96, 136), {3: ((288, 72), (408, 104)), 4: ((384, 96), (544, 136)), 6: ((576, 144), (816, 208))}),
    5: ((136, 192), {3: ((408, 104), (576, 144)), 4: ((544, 136), (768, 192)), 6: ((816, 208), (1152, 288))}),
}


def test_mid_and_se_widths_match_the_spec_table():
    for stage, (c_ins, by_e) in MID_SE.items():
        for e, pairs in by_e.items():
            for c_in, (mid, se) in zip(c_ins, pairs):
                block = MBConv(c_in, STAGE_WIDTHS[stage - 1], 3, e, 1, "relu", se=se is not None)
                assert block.mid == mid, (stage, e, c_in)
                if se is not None:
                    squeeze = next(m for m in block.body if hasattr(m, "reduce"))
                    assert squeeze.reduce.out_channels == se, (stage, e, c_in)


@pytest.mark.parametrize(
    "arch, params, macs",
    [
        (ARCH0, 6_132_040, 305_053_288),
        (ARCH1, 8_563_984, 194_340_624),
        (LARGEST, 10_701_632, 843_112_496),
        (SMALLEST, 4_602_456, 65_540_304),
    ],
    ids=["arch0", "arch1", "largest", "smallest"],
)
def test_params_and_macs_match_the_spec(arch, params, macs):
    model, shape = _model(arch)
    assert count_params(model) == params
    assert count_macs(model, shape) == macs


def executions(model: nn.Module, shape) -> Counter:
    counts: Counter = Counter()

    def hook(module, _inputs, _output):
        if isinstance(module, nn.Conv2d):
            counts["conv"] += 1
            depthwise = module.groups > 1 and module.groups == module.in_channels
            counts[f"dw{module.kernel_size[0]}" if depthwise else f"conv{module.kernel_size[0]}"] += 1
        else:
            counts[type(module).__name__] += 1

    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, HSwish, HSigmoid, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.eval()(torch.zeros(shape))
    for h in handles:
        h.remove()
    return counts


def test_arch0_module_executions_match_the_spec():
    c = executions(*_model(ARCH0))
    assert c["conv"] == 52
    assert (c["conv3"], c["dw3"], c["dw5"], c["dw7"], c["conv1"]) == (1, 3, 5, 4, 39)
    assert (c["BatchNorm2d"], c["ReLU"], c["HSwish"], c["HSigmoid"], c["Linear"]) == (37, 16, 17, 7, 1)


@pytest.mark.parametrize("arch", [ARCH0, ARCH1, LARGEST, SMALLEST])
def test_conv_count_formula(arch):
    d = parse_ofa_arch(arch).d
    se_blocks = d[1] + d[3] + d[4]
    model, _ = _model(arch)
    assert executions(model, (1, 3, 64, 64))["conv"] == 3 + 3 * sum(d) + 2 * se_blocks + 2


# spec 3.6: (in, mid or None, out, k, stride, SE, residual, output spatial) per block of arch 0
ARCH0_BLOCKS = [
    (24, None, 24, 3, 1, False, True, 102),
    (24, 144, 32, 7, 2, False, False, 51), (32, 128, 32, 5, 1, False, True, 51),
    (32, 192, 48, 7, 2, True, False, 26), (48, 144, 48, 7, 1, True, True, 26),
    (48, 144, 96, 5, 2, False, False, 13), (96, 576, 96, 7, 1, False, True, 13),
    (96, 288, 136, 5, 1, True, False, 13), (136, 816, 136, 3, 1, True, True, 13),
    (136, 816, 192, 5, 2, True, False, 7), (192, 768, 192, 3, 1, True, True, 7), (192, 576, 192, 5, 1, True, True, 7),
]


def test_arch0_blocks_match_the_worked_example():
    model, shape = _model(ARCH0)
    outputs = []
    handles = [b.register_forward_hook(lambda m, i, o: outputs.append(tuple(o.shape))) for b in model.blocks]
    model.eval()
    with torch.no_grad():
        stem = model.first_conv(torch.zeros(shape))
        logits = model(torch.zeros(shape))
    for h in handles:
        h.remove()
    assert stem.shape == (1, 24, 102, 102) and logits.shape == (1, 1000)
    assert len(model.blocks) == len(ARCH0_BLOCKS)
    for i, (block, out, spec) in enumerate(zip(model.blocks, outputs, ARCH0_BLOCKS)):
        c_in, mid, c_out, k, stride, se, residual, size = spec
        dw = next(m for m in block.body if isinstance(m, nn.Conv2d) and m.groups > 1)
        assert out == (1, c_out, size, size), i
        assert block.mid == (mid or c_in) and block.residual == residual, i
        assert dw.kernel_size == (k, k) and dw.stride == (stride, stride) and dw.padding == (k // 2, k // 2), i
        assert any(hasattr(m, "reduce") for m in block.body) == se, i
        first = block.body[0]
        assert first.in_channels == c_in and (mid is None) == (first.groups > 1), i  # first block: no expansion


def test_spatial_sizes_at_224():
    model, _ = _model(LARGEST)
    sizes = []
    handles = [model.first_conv.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))]
    stage_ends = [0, 4, 8, 12, 16, 20]  # first block, then the last block of each stage
    handles += [model.blocks[i].register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for i in stage_ends]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    for h in handles:
        h.remove()
    assert sizes == [112, 112, 56, 28, 14, 14, 7]


def test_activations_are_written_out():
    x = torch.linspace(-5, 5, 101)
    assert torch.allclose(HSwish()(x), nn.functional.hardswish(x), atol=1e-6)
    assert torch.allclose(HSigmoid()(x), nn.functional.hardsigmoid(x), atol=1e-6)


def test_to_graph_of_arch0_has_the_spec_op_counts(space):
    graph = space.to_graph(ARCH0)
    ops = Counter(graph.ops)
    assert ops["Clip"] == 24 and ops["ReduceMean"] == 16  # spec 3.9: 17 h_swish + 7 h_sigmoid; 2 per SE + 2
    assert ops["Conv"] == 52 and ops["BatchNormalization"] == 37 and ops["Relu"] == 16
    assert ops["Mul"] == 17 + 7 and ops["Div"] == 24  # h_swish x*, SE x gate; every act divides by 6
    assert not {"HardSwish", "HardSigmoid", "GlobalAveragePool"} & set(ops)
    assert set(graph.ops) <= set(space.op_vocab)
    assert graph.shapes[0] == (1, 3, 204, 204) and graph.shapes[-1] == (1, 1000)
    assert space.to_graph(parse_ofa_arch(ARCH0)) is graph  # cached under the canonical string


def test_export_with_weights_runs_in_onnxruntime_like_torch():
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model, _ = _model(SMALLEST)
    model.eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 128, 128)
    data = export_onnx(model, x.shape, export_params=True)
    assert len(onnx.load_from_string(data).graph.initializer) > 0
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_canonical_form_zeroes_ignored_slots():
    raw = {"ks": [7, 5, 5, 5, 7, 7, 5, 7, 5, 7, 3, 7, 5, 3, 7, 3, 5, 3, 5, 3],
           "e": [6, 4, 4, 6, 6, 3, 4, 3, 3, 6, 3, 3, 3, 6, 3, 4, 6, 4, 3, 6],
           "d": [2, 2, 2, 2, 3], "r": np.int64(204)}  # HELP's record 0, filler included
    arch = parse_ofa_arch(raw)
    assert isinstance(arch, OFAArch) and arch.to_string() == ARCH0 and type(arch.r) is int
    assert parse_ofa_arch(ARCH0) == arch == parse_ofa_arch(arch)
    # a raw string with filler canonicalises too
    filler = ARCH0.replace("ks=7,5,0,0", "ks=7,5,3,7")
    assert parse_ofa_arch(filler).to_string() == ARCH0
    space = OFAMobileNetV3Space()
    assert space.equivalence_key(filler) == space.equivalence_key(ARCH0) == ARCH0
    assert space.equivalent_archs(filler) == [filler, ARCH0] and space.equivalent_archs(ARCH0) == [ARCH0]


def test_records_match_the_data_file(data_dir):
    from numpy._core import multiarray

    path = data_dir / "help_fbnet_ofa_latency" / "ofa" / "ofa_archs.pt"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    allowed = [(multiarray.scalar, "numpy.core.multiarray.scalar"), multiarray.scalar, np.dtype,
               type(np.dtype("int64"))]
    with torch.serialization.safe_globals(allowed):
        records = torch.load(path, map_location="cpu", weights_only=True)["arch"]
    assert parse_ofa_arch(records[0]).to_string() == ARCH0
    assert parse_ofa_arch(records[1]).to_string() == ARCH1


@pytest.mark.parametrize(
    "bad, message",
    [
        ("ks=7;e=6;d=2;r=204", "'d' needs 5 values, got 1"),
        (ARCH0.replace("d=2,2,2,2,3", "d=2,2,2,2"), "'d' needs 5 values, got 4"),
        (ARCH0.replace("ks=7,5,0,0,", "ks=7,5,0,"), "'ks' needs 20 values, got 19"),
        (ARCH0.replace("e=6,4,", "e=6,4,0,"), "'e' needs 20 values, got 21"),
        (ARCH0.replace("ks=7,5", "ks=4,5"), r"ks\[0\] = 4 \(stage 0, block 0\) not allowed"),
        (ARCH0.replace("e=6,4", "e=6,0"), r"e\[1\] = 0 \(stage 0, block 1\) not allowed"),
        (ARCH0.replace("ks=7,5,0", "ks=7,5,9"), r"ks\[2\] = 9 \(ignored slot of stage 0\)"),
        (ARCH0.replace("d=2,2,2,2,3", "d=2,2,2,2,5"), r"d\[4\] = 5 not allowed"),
        (ARCH0.replace("d=2,2,2,2,3", "d=1,2,2,2,3"), r"d\[0\] = 1 not allowed"),
        (ARCH0.replace("r=204", "r=130"), "r = 130 not allowed"),
        (ARCH0.replace("r=204", "r=228"), "r = 228 not allowed"),
        (ARCH0.replace("r=204", "r=124"), "r = 124 not allowed"),
        (ARCH0.replace(";r=204", ""), r"missing: \['r'\]"),
        (ARCH0 + ";w=1", r"unknown: \['w'\]"),
        (ARCH0 + ";r=204", "gives 'r' twice"),
        (ARCH0.replace("r=204", "r=2o4"), "r= must be comma-separated ints"),
        (ARCH0.replace("r=204", "r=204,208"), r"r must be an int resolution, got \[204, 208\]"),
        ({**SMALLEST, "r": 128.0}, "r must be an int resolution, got 128.0"),
        ("not an arch", "malformed OFA arch string"),
        ({**SMALLEST, "ks": [3.0] * 20}, r"ks\[0\] must be an int"),
        ({**SMALLEST, "d": "22222"}, "'d' must be a list of 5 ints"),
        ({"ks": [3] * 20}, r"missing: \['e', 'd', 'r'\]"),
        ([3, 4, 2], "must be a string or a dict"),
    ],
)
def test_malformed_archs_raise_arch_error(bad, message):
    with pytest.raises(ArchError, match=message):
        parse_ofa_arch(bad)


def test_builder_validates_and_ignores_inactive_slots():
    with pytest.raises(ArchError, match="'ks' needs 20 values"):
        build_ofa_mbv3([3] * 19, [3] * 20, [2] * 5)
    a = build_ofa_mbv3([3] * 20, [3] * 20, [2] * 5)
    b = build_ofa_mbv3([3, 3, 7, 7] * 5, [3, 3, 6, 6] * 5, [2] * 5)
    assert count_params(a) == count_params(b)


def test_sampling_mutation_and_neighbours(space):
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(50)]
    for arch in archs:
        assert parse_ofa_arch(arch).to_string() == arch  # samples are canonical
    assert {parse_ofa_arch(a).r for a in archs} <= set(RESOLUTIONS) and len({parse_ofa_arch(a).r for a in archs}) > 10
    arch = archs[0]
    a = parse_ofa_arch(arch)
    neighbours = space.neighbours(arch)
    assert len(neighbours) == len(set(neighbours)) and arch not in neighbours
    # 2 other ks and 2 other e per active slot, 24 other r, and per stage every other depth with
    # every ks / e choice of the newly active slots (9 per slot)
    d_changes = sum(9 ** max(0, depth - old) for old in a.d for depth in (2, 3, 4) if depth != old)
    assert len(neighbours) == 4 * len(a.active_slots()) + 24 + d_changes
    members = set(neighbours)
    seen = set()
    for _ in range(300):  # r is one gene of ~36, so 300 draws see every kind
        child = space.mutate(arch, rng)
        assert child in members
        c = parse_ofa_arch(child)
        seen.add("r" if c.r != a.r else "d" if c.d != a.d else "ks" if c.ks != a.ks else "e")
    assert seen == {"ks", "e", "d", "r"}


def test_input_shape_and_size(space):
    assert space.input_shape(8, 160) == (8, 3, 160, 160)
    assert space.name == "ofa_mbv3" and space.op_vocab == tuple(sorted(space.op_vocab))
    with pytest.raises(TypeError):
        len(space)
