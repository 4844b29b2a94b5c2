"""The FBNet space (HW-NAS-Bench, CIFAR-100) against the latency-families spec (2.1-2.4, 2.6)."""

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nas_predictor.errors import ArchError
from search_spaces.fbnet import (
    BLOCK_NAMES,
    NUM_ARCHS,
    ChannelShuffle,
    ConvBlock,
    FBNetSpace,
    build_fbnet,
    format_fbnet_arch,
    parse_fbnet_arch,
)
from search_spaces.onnx_export import count_macs, count_params, export_onnx

ARCH0 = [7, 8, 1, 8, 4, 8, 8, 8, 7, 4, 1, 4, 7, 3, 2, 7, 3, 2, 4, 2, 4, 5]
ARCH1 = [5, 3, 5, 5, 0, 4, 7, 5, 5, 2, 0, 2, 4, 5, 1, 3, 7, 2, 6, 0, 4, 0]
CIFAR = (1, 3, 32, 32)
SKIP_CONV_LAYERS = (1, 5, 9, 13, 17, 21)  # L2, L6, L10, L14, L18, L22: skip is a 1x1 conv there


@pytest.fixture(scope="module")
def space():
    return FBNetSpace()


def test_block_choices_in_index_order():
    assert BLOCK_NAMES == ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")


@pytest.mark.parametrize(
    "ops, params, macs",
    [
        (ARCH0, 1_790_500, 67_605_476),
        (ARCH1, 1_695_572, 61_564_388),
        ([7] * 22, 3_749_652, 160_926_180),
        ([8] * 22, 780_660, 11_609_060),
        ([1] * 22, 940_084, 21_051_108),
    ],
)
def test_cifar100_params_and_macs_match_the_spec(ops, params, macs):
    model = build_fbnet(ops)
    assert count_params(model) == params
    assert count_macs(model, CIFAR) == macs


def executions(model: nn.Module) -> Counter:
    counts: Counter = Counter()

    def hook(module, _inputs, _output):
        if isinstance(module, nn.Conv2d):
            if module.groups == module.in_channels == module.out_channels and module.groups > 1:
                counts[f"dw{module.kernel_size[0]}"] += 1
            elif module.kernel_size == (1, 1):
                counts["grouped1x1" if module.groups > 1 else "plain1x1"] += 1
            else:
                counts[f"conv{module.kernel_size[0]}"] += 1
            counts["conv"] += 1
        else:
            counts[type(module).__name__] += 1

    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear, ChannelShuffle)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.eval()(torch.zeros(CIFAR))
    for h in handles:
        h.remove()
    return counts


def test_arch0_module_executions_match_the_spec():
    c = executions(build_fbnet(ARCH0))
    assert c["conv"] == 55
    assert (c["plain1x1"], c["grouped1x1"], c["dw3"], c["dw5"], c["conv3"]) == (31, 6, 7, 10, 1)
    assert (c["BatchNorm2d"], c["ReLU"], c["ChannelShuffle"], c["Linear"]) == (55, 38, 3, 1)


@pytest.mark.parametrize("ops", [ARCH0, ARCH1, [7] * 22, [8] * 22, [1] * 22, [8, 0] * 11])
def test_conv_count_formula(ops):
    blocks = sum(op != 8 for op in ops)
    skip_convs = sum(ops[i] == 8 for i in SKIP_CONV_LAYERS)
    assert executions(build_fbnet(ops))["conv"] == 2 + 3 * blocks + skip_convs


# spec 2.4: (out channels, output spatial, mid channels or None for skip, residual)
ARCH0_LAYERS = [
    (16, 32, 96, True), (24, 32, None, False), (24, 32, 24, True), (24, 32, None, False), (24, 32, 24, True),
    (32, 16, None, False), (32, 16, None, False), (32, 16, None, False), (32, 16, 192, True),
    (64, 8, 32, False), (64, 8, 64, True), (64, 8, 64, True), (64, 8, 384, True),
    (112, 8, 384, False), (112, 8, 336, True), (112, 8, 672, True), (112, 8, 672, True),
    (184, 4, 336, False), (184, 4, 184, True), (184, 4, 552, True), (184, 4, 184, True),
    (352, 4, 184, False),
]


def test_arch0_per_layer_shapes_match_the_worked_example():
    model = build_fbnet(ARCH0).eval()
    shapes = []
    handles = [b.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for b in model.blocks]
    with torch.no_grad():
        out = model(torch.zeros(CIFAR))
    for h in handles:
        h.remove()
    assert out.shape == (1, 100)
    for layer, (block, shape, (c_out, size, mid, residual)) in enumerate(zip(model.blocks, shapes, ARCH0_LAYERS)):
        assert shape == (1, c_out, size, size), f"L{layer + 1}"
        if mid is None:
            # identity skips have no conv; skips at stage starts are conv + BN + ReLU, no residual
            assert isinstance(block, nn.Identity) == (layer not in SKIP_CONV_LAYERS), f"L{layer + 1}"
        else:
            assert isinstance(block, ConvBlock) and block.residual == residual, f"L{layer + 1}"
            assert block.body[0].out_channels == mid, f"L{layer + 1}"


def test_channel_shuffle_interleaves_the_two_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_arch_string_forms(space):
    s = format_fbnet_arch(ARCH0)
    assert s.startswith("k5_e6-skip-k3_e1_g2-skip-") and s.endswith("-k5_e1_g2")
    assert parse_fbnet_arch(s) == tuple(ARCH0)
    assert parse_fbnet_arch(np.array(ARCH0)) == tuple(ARCH0)
    assert parse_fbnet_arch(s.split("-")) == tuple(ARCH0)  # metainfo's arch_str lists
    assert format_fbnet_arch(parse_fbnet_arch(s)) == s


@pytest.mark.parametrize(
    "bad, message",
    [
        (ARCH0[:-1], "needs 22 blocks, got 21"),
        ("-".join(["skip"] * 23), "needs 22 blocks, got 23"),
        ("", "needs 22 blocks, got 1"),
        (ARCH0[:3] + [9] + ARCH0[4:], "index 9 at position 3 out of range"),
        (ARCH0[:3] + [-1] + ARCH0[4:], "index -1 at position 3 out of range"),
        ("k7_e6-" + "-".join(["skip"] * 21), "unknown FBNet block 'k7_e6' at position 0"),
        (ARCH0[:2] + [1.0] + ARCH0[3:], "position 2 must be an int"),
        (42, "must be a string or a sequence"),
    ],
)
def test_malformed_archs_raise_arch_error(bad, message):
    with pytest.raises(ArchError, match=message):
        parse_fbnet_arch(bad)
    with pytest.raises(ArchError):
        build_fbnet(bad)


def test_to_graph_is_the_exported_network(space):
    arch = format_fbnet_arch(ARCH0)
    graph = space.to_graph(arch)
    ops = Counter(graph.ops)
    assert (ops["Conv"], ops["BatchNormalization"], ops["Relu"]) == (55, 55, 38)
    assert (ops["Reshape"], ops["Transpose"]) == (6, 3)  # 3 channel shuffles
    assert ops["Add"] == 13 and ops["Gemm"] == 1 and ops["GlobalAveragePool"] == 1
    assert set(graph.ops) <= set(space.op_vocab)
    assert graph.shapes[0] == (1, 3, 32, 32) and graph.shapes[-1] == (1, 100)
    assert graph.scalars["batch_size"] == 1
    assert space.to_graph(ARCH0) is graph  # cached under the canonical string


def test_export_with_weights_runs_in_onnxruntime_like_torch(space):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = space.build_network(ARCH0).eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(space.input_shape(2))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    data = export_onnx(model, x.shape, export_params=True)
    assert len(onnx.load_from_string(data).graph.initializer) > 0
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_sampling_mutation_and_neighbours(space):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert format_fbnet_arch(arch) == arch
    neighbours = space.neighbours(arch)
    assert len(neighbours) == len(set(neighbours)) == 22 * 8 and arch not in neighbours
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert child in neighbours
        assert sum(a != b for a, b in zip(parse_fbnet_arch(child), parse_fbnet_arch(arch))) == 1
    counts = np.bincount([i for _ in range(200) for i in parse_fbnet_arch(space.sample(rng))], minlength=9)
    assert counts.min() > 0.5 * counts.mean()  # every choice is drawn, roughly uniformly


def test_size_and_input_shape(space):
    assert space.__len__() == NUM_ARCHS == 9**22  # len() itself overflows: 9**22 > sys.maxsize
    assert space.input_shape(4) == (4, 3, 32, 32)
    assert space.name == "fbnet" and space.op_vocab == tuple(sorted(space.op_vocab)) and "Input" in space.op_vocab
