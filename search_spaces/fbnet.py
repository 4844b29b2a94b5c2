"""The FBNet space in its HW-NAS-Bench form, CIFAR-100 setting (latency-families spec section 2).

An architecture is one of 9 block choices at each of 22 layers (9**22 archs). Canonical string:
the 22 block names joined by "-", e.g. ``"k5_e6-skip-k3_e1_g2-..."`` (the names hold no "-").

The network is the one behind HELP's FBNet latencies: input 3x32x32, 100 classes, header 1504.
Its graph (``to_graph``) is the weight-free ONNX export read by ``nas_predictor.onnx``, so the
predictor sees the ops that ran (unfused BN, channel shuffles, residual adds).
"""

from __future__ import annotations

import itertools
import operator
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from nas_predictor.data.latency_graphs import network_graph
from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from nas_predictor.spaces import SearchSpace


class BlockChoice(NamedTuple):
    name: str
    kernel: int  # 0 for skip
    expansion: int
    groups: int


# Index order of HW-NAS-Bench's PRIMITIVES, HELP's metainfo and HELP's encoder (spec 2.1).
BLOCKS: tuple[BlockChoice, ...] = (
    BlockChoice("k3_e1", 3, 1, 1),
    BlockChoice("k3_e1_g2", 3, 1, 2),
    BlockChoice("k3_e3", 3, 3, 1),
    BlockChoice("k3_e6", 3, 6, 1),
    BlockChoice("k5_e1", 5, 1, 1),
    BlockChoice("k5_e1_g2", 5, 1, 2),
    BlockChoice("k5_e3", 5, 3, 1),
    BlockChoice("k5_e6", 5, 6, 1),
    BlockChoice("skip", 0, 0, 0),
)
BLOCK_NAMES: tuple[str, ...] = tuple(b.name for b in BLOCKS)
SKIP = BLOCK_NAMES.index("skip")
NUM_LAYERS = 22
NUM_CHOICES = len(BLOCKS)
NUM_ARCHS = NUM_CHOICES**NUM_LAYERS

# CIFAR-100 macro (spec 2.3): (out channels, layers, stride of the stage's first layer).
STEM_CHANNELS = 16
STAGES: tuple[tuple[int, int, int], ...] = (
    (16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1),
)
HEADER_CHANNELS = 1504
NUM_CLASSES = 100
INPUT_SIZE = 32


def _layers() -> tuple[tuple[int, bool], ...]:
    out, c_in = [], STEM_CHANNELS
    for stage, (c_out, layers, first_stride) in enumerate(STAGES):
        for i in range(layers):
            out.append((stage, (first_stride if i == 0 else 1) == 1 and c_in == c_out))
            c_in = c_out
    return tuple(out)


#: per layer, (its stage, whether ``skip`` there is an identity: stride 1 and the channels kept)
LAYERS = _layers()


def parse_fbnet_arch(arch: str | Sequence[int | str]) -> tuple[int, ...]:
    """Canonical string, or 22 block indices / names -> 22 block indices (ArchError says what is wrong)."""
    if isinstance(arch, str):
        items: Sequence[int | str] = arch.strip().split("-")
    elif isinstance(arch, (Sequence, np.ndarray)):
        items = list(arch)
    else:
        raise ArchError(f"FBNet arch must be a string or a sequence of {NUM_LAYERS} ints, got {type(arch).__name__}")
    if len(items) != NUM_LAYERS:
        raise ArchError(f"FBNet arch needs {NUM_LAYERS} blocks, got {len(items)}: {arch!r}")
    ops = []
    for pos, item in enumerate(items):
        if isinstance(item, str):
            if item not in BLOCK_NAMES:
                raise ArchError(f"unknown FBNet block {item!r} at position {pos}; allowed: {', '.join(BLOCK_NAMES)}")
            ops.append(BLOCK_NAMES.index(item))
            continue
        if isinstance(item, (bool, np.bool_)):
            raise ArchError(f"FBNet block at position {pos} is a bool ({item!r}), not an index 0..{NUM_CHOICES - 1}")
        try:
            index = operator.index(item)  # ints and numpy ints, not floats
        except TypeError:
            raise ArchError(f"FBNet block at position {pos} must be an int index or a name, got {item!r}") from None
        if not 0 <= index < NUM_CHOICES:
            raise ArchError(f"FBNet block index {index} at position {pos} out of range 0..{NUM_CHOICES - 1}")
        ops.append(index)
    return tuple(ops)


def format_fbnet_arch(arch: str | Sequence[int | str]) -> str:
    """Any accepted form -> the canonical string."""
    return "-".join(BLOCK_NAMES[i] for i in parse_fbnet_arch(arch))


class ChannelShuffle(nn.Module):
    """Shuffle with ``groups`` groups: reshape, swap the group axes, reshape (ONNX Reshape, Transpose, Reshape)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int, relu: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return layers


class ConvBlock(nn.Module):
    """1x1 (groups g) -> [shuffle] -> depthwise kxk -> 1x1 (groups g), residual iff shapes match (spec 2.2).

    The first 1x1 is there even for e = 1 (unlike MobileNetV2)."""

    def __init__(self, c_in: int, c_out: int, stride: int, choice: BlockChoice) -> None:
        super().__init__()
        mid = c_in * choice.expansion
        layers = _conv_bn(c_in, mid, 1, 1, choice.groups, relu=True)
        if choice.groups > 1:
            layers.append(ChannelShuffle(choice.groups))
        layers += _conv_bn(mid, mid, choice.kernel, stride, mid, relu=True)
        layers += _conv_bn(mid, c_out, 1, 1, choice.groups, relu=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def skip_block(c_in: int, c_out: int, stride: int) -> nn.Module:
    """The skip choice: identity where shapes allow, else 1x1 conv + BN + ReLU with no residual."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, 1, relu=True))


class FBNet(nn.Module):
    def __init__(self, ops: Sequence[int], num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, STEM_CHANNELS, 3, 1, 1, relu=True))
        blocks: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for c_out, layers, first_stride in STAGES:
            for i in range(layers):
                stride = first_stride if i == 0 else 1
                choice = BLOCKS[ops[len(blocks)]]
                if choice.name == "skip":
                    blocks.append(skip_block(c_in, c_out, stride))
                else:
                    blocks.append(ConvBlock(c_in, c_out, stride, choice))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.header = nn.Sequential(*_conv_bn(c_in, HEADER_CHANNELS, 1, 1, 1, relu=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEADER_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.header(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_fbnet(ops: str | Sequence[int | str], num_classes: int = NUM_CLASSES) -> nn.Module:
    """The CIFAR-100 FBNet network (input 3x32x32) of 22 block indices or names, or a canonical string."""
    return FBNet(parse_fbnet_arch(ops), num_classes=num_classes)


class FBNetSpace(SearchSpace):
    name = "fbnet"
    # every ONNX op type (plus the graph's Input nodes) an exported FBNet graph can hold
    op_vocab = tuple(sorted((
        "Add", "BatchNormalization", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Input", "Relu",
        "Reshape", "Transpose",
    )))

    #: its graphs are whole networks (nas_predictor.online reads them with whole-network tokens)
    whole_network = True

    def canonical(self, arch: str | Sequence[int | str]) -> str:
        return format_fbnet_arch(arch)

    def equivalence_key(self, arch: str) -> str:
        # an identity skip adds nothing to the network, and the blocks around it are all stride 1 with
        # the stage's channels, so a stage's blocks may sit anywhere among those layers: the network
        # (its exported graph) is each stage's blocks in order, with the identity skips left out
        ops = parse_fbnet_arch(arch)
        stages: list[list[str]] = [[] for _ in STAGES]
        for op, (stage, identity) in zip(ops, LAYERS):
            if not (identity and op == SKIP):
                stages[stage].append(BLOCK_NAMES[op])
        return "|".join("-".join(blocks) for blocks in stages)

    def equivalent_archs(self, arch: str) -> list[str]:
        """``arch`` and every other placement of each stage's blocks among its identity-skip layers
        (at most 3 per stage of four layers, 243 in all)."""
        ops = parse_fbnet_arch(arch)
        placements = []
        for stage in range(len(STAGES)):
            free = [pos for pos, (s, identity) in enumerate(LAYERS) if s == stage and identity]
            blocks = [ops[pos] for pos in free if ops[pos] != SKIP]
            placements.append([dict(zip(free, [dict(zip(chosen, blocks)).get(pos, SKIP) for pos in free]))
                               for chosen in itertools.combinations(free, len(blocks))])
        out = [format_fbnet_arch(ops)]
        for combo in itertools.product(*placements):
            new = list(ops)
            for placed in combo:
                for pos, op in placed.items():
                    new[pos] = op
            out.append(format_fbnet_arch(new))
        return list(dict.fromkeys(out))

    def build_network(self, arch: str | Sequence[int | str]) -> nn.Module:
        return build_fbnet(arch)

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, int, int, int]:
        return self.input_shape(batch)

    @staticmethod
    def input_shape(batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, INPUT_SIZE, INPUT_SIZE)

    def to_graph(self, arch: str | Sequence[int | str]) -> ArchGraph:
        return network_graph(self, arch)  # the whole network, exported (cached on this space)

    def sample(self, rng: np.random.Generator) -> str:
        return format_fbnet_arch([int(i) for i in rng.integers(0, NUM_CHOICES, NUM_LAYERS)])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        ops = list(parse_fbnet_arch(arch))
        pos = int(rng.integers(NUM_LAYERS))
        ops[pos] = [i for i in range(NUM_CHOICES) if i != ops[pos]][int(rng.integers(NUM_CHOICES - 1))]
        return format_fbnet_arch(ops)

    def choices(self) -> list[tuple[str, tuple]]:
        return [(f"layer{pos}", tuple(range(NUM_CHOICES))) for pos in range(NUM_LAYERS)]

    def from_choices(self, values: dict) -> str:
        return format_fbnet_arch([int(values[name]) for name, _ in self.choices()])

    def to_choices(self, arch: str | Sequence[int | str]) -> dict:
        """Each layer's block index, a plain int."""
        return {name: int(op) for (name, _), op in zip(self.choices(), parse_fbnet_arch(arch))}

    def neighbours(self, arch: str) -> list[str]:
        ops = parse_fbnet_arch(arch)
        return [
            format_fbnet_arch(ops[:pos] + (choice,) + ops[pos + 1:])
            for pos in range(NUM_LAYERS)
            for choice in range(NUM_CHOICES)
            if choice != ops[pos]
        ]

    def __len__(self) -> int:
        # 9**22 exceeds sys.maxsize, so the built-in len() raises OverflowError; call space.__len__()
        # (or use NUM_ARCHS) for the count. The space is not iterated (base __iter__ raises TypeError).
        return NUM_ARCHS
