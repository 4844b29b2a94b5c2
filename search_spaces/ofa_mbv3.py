"""Static subnets of OFA-MobileNetV3 w1.2 (ks 3/5/7, e 3/4/6, d 2/3/4), latency-families spec section 3.

An architecture is ``ks`` and ``e`` (20 slots = 5 stages x 4 positions), ``d`` (blocks per stage)
and ``r`` (input resolution). Stage i only uses its first ``d[i]`` slots; the other slots' values
are ignored (HELP's records hold random filler there), so the canonical form writes them as 0 and
equal subnets get equal strings::

    "ks=7,5,0,0,7,7,0,0,...;e=6,4,0,0,...;d=2,2,2,2,3;r=204"

The module is the *static* subnet (plain convs of the active sizes, spec 3.5) with OFA's op
structure kept as it ran: h_swish / h_sigmoid written out as add, clamp, multiply and divide, and
every mean a pair of ReduceMeans (over W, then H), so the ONNX graph shows the ops that were timed.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nas_predictor.data.latency_graphs import network_graph
from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from nas_predictor.spaces import SearchSpace

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))  # 25 values
NUM_STAGES = 5
MAX_DEPTH = 4
NUM_SLOTS = NUM_STAGES * MAX_DEPTH
WIDTH_MULT = 1.2
NUM_CLASSES = 1000


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round to the nearest multiple of ``divisor`` (halves up, at least ``min_value``), +divisor if that
    loses more than 10% (spec 3.2)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


# Widths at w1.2 (spec 3.2): stem 24, first block 24, stages 32/48/96/136/192, 1152, 1536.
STEM_WIDTH = make_divisible(16 * WIDTH_MULT)
FIRST_BLOCK_WIDTH = make_divisible(16 * WIDTH_MULT)
STAGE_WIDTHS = tuple(make_divisible(c * WIDTH_MULT) for c in (24, 40, 80, 112, 160))
FINAL_EXPAND_WIDTH = make_divisible(960 * WIDTH_MULT)
FEATURE_MIX_WIDTH = make_divisible(1280 * WIDTH_MULT)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_SE = (False, True, False, True, True)


# -- architectures -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OFAArch:
    """A canonical subnet: ignored slots of ``ks`` and ``e`` are 0."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def to_string(self) -> str:
        return (f"ks={','.join(map(str, self.ks))};e={','.join(map(str, self.e))};"
                f"d={','.join(map(str, self.d))};r={self.r}")

    def __str__(self) -> str:
        return self.to_string()

    def active_slots(self) -> list[int]:
        return active_slots(self.d)


def active_slots(d: Sequence[int]) -> list[int]:
    return [MAX_DEPTH * stage + pos for stage, depth in enumerate(d) for pos in range(depth)]


def _ints(values: Any, key: str, length: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ArchError(f"OFA arch {key!r} must be a list of {length} ints, got {values!r}")
    values = list(values)
    if len(values) != length:
        raise ArchError(f"OFA arch {key!r} needs {length} values, got {len(values)}: {values}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)):
            raise ArchError(f"OFA arch {key}[{i}] is a bool ({v!r}), not an int")
        try:
            out.append(operator.index(v))  # ints and numpy ints, not floats
        except TypeError:
            raise ArchError(f"OFA arch {key}[{i}] must be an int, got {v!r}") from None
    return tuple(out)


def canonical_blocks(ks: Sequence[int], e: Sequence[int], d: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Validate ks / e / d and zero the ignored slots; returns (ks, e, d)."""
    d = _ints(d, "d", NUM_STAGES)
    for stage, depth in enumerate(d):
        if depth not in DEPTHS:
            raise ArchError(f"OFA arch d[{stage}] = {depth} not allowed; depths are {DEPTHS}")
    active = set(active_slots(d))
    canonical = []
    for key, values, allowed in (("ks", ks, KERNELS), ("e", e, EXPANDS)):
        values = _ints(values, key, NUM_SLOTS)
        for slot, v in enumerate(values):
            stage, pos = divmod(slot, MAX_DEPTH)
            if slot in active and v not in allowed:
                raise ArchError(f"OFA arch {key}[{slot}] = {v} (stage {stage}, block {pos}) not allowed; "
                                f"{key} values are {allowed}")
            if slot not in active and v != 0 and v not in allowed:  # filler must still be a legal value
                raise ArchError(f"OFA arch {key}[{slot}] = {v} (ignored slot of stage {stage}) is neither 0 "
                                f"nor one of {allowed}")
        canonical.append(tuple(v if slot in active else 0 for slot, v in enumerate(values)))
    return canonical[0], canonical[1], d


def parse_ofa_arch(arch: str | Mapping[str, Any] | OFAArch) -> OFAArch:
    """Canonical string, or a dict with keys ks, e, d, r (HELP's records) -> canonical OFAArch."""
    if isinstance(arch, OFAArch):
        fields: Mapping[str, Any] = {"ks": arch.ks, "e": arch.e, "d": arch.d, "r": arch.r}
    elif isinstance(arch, str):
        fields = _split_string(arch)
    elif isinstance(arch, Mapping):
        fields = arch
    else:
        raise ArchError(f"OFA arch must be a string or a dict with keys ks, e, d, r, got {type(arch).__name__}")
    missing = [k for k in ("ks", "e", "d", "r") if k not in fields]
    unknown = sorted(set(fields) - {"ks", "e", "d", "r"})
    if missing or unknown:
        raise ArchError(f"OFA arch needs exactly the keys ks, e, d, r (missing: {missing}, unknown: {unknown})")
    ks, e, d = canonical_blocks(fields["ks"], fields["e"], fields["d"])
    r = fields["r"]
    if isinstance(r, (bool, np.bool_)):
        raise ArchError(f"OFA arch r must be an int resolution, got {r!r}")
    try:
        r = operator.index(r)  # HELP's records hold numpy.int64
    except TypeError:
        raise ArchError(f"OFA arch r must be an int resolution, got {r!r}") from None
    if r not in RESOLUTIONS:
        raise ArchError(f"OFA arch r = {r} not allowed; resolutions are 128..224 in steps of 4")
    return OFAArch(ks, e, d, r)


def _split_string(arch: str) -> dict[str, list[int]]:
    fields: dict[str, Any] = {}
    for part in arch.strip().split(";"):
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ArchError(f"malformed OFA arch string {arch!r}: expected 'ks=...;e=...;d=...;r=...', "
                            f"got part {part!r}")
        if key in fields:
            raise ArchError(f"OFA arch string {arch!r} gives {key!r} twice")
        try:
            numbers = [int(v) for v in values.split(",")]
        except ValueError:
            raise ArchError(f"OFA arch string {arch!r}: {key}= must be comma-separated ints, got {values!r}") from None
        fields[key] = numbers[0] if key == "r" and len(numbers) == 1 else numbers
    return fields


def format_ofa_arch(arch: str | Mapping[str, Any] | OFAArch) -> str:
    """Any accepted form -> the canonical string."""
    return parse_ofa_arch(arch).to_string()


# -- modules -------------------------------------------------------------------------------------
class HSwish(nn.Module):
    """x * ReLU6(x + 3) / 6 written out as OFA does (ONNX Add, Clip, Mul, Div; not HardSwish)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HSigmoid(nn.Module):
    """ReLU6(x + 3) / 6 (ONNX Add, Clip, Div)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def activation(name: str) -> nn.Module:
    return HSwish() if name == "h_swish" else nn.ReLU(inplace=False)


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over W, then over H, keeping dims: OFA's two ReduceMeans, not one GlobalAveragePool."""
    return x.mean(3, keepdim=True).mean(2, keepdim=True)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = make_divisible(channels // 4, 8)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=False)  # ReLU even in h_swish stages
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = HSigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(spatial_mean(x)))))


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int, groups: int, act: str | None) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(activation(act))
    return layers


class MBConv(nn.Module):
    """[1x1 expand] -> depthwise kxk -> [SE] -> 1x1 project, residual iff stride 1 and C_in = C_out (spec 3.4).

    ``expand=None`` is the fixed first block (expand ratio 1, no expansion conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int | None, stride: int, act: str, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        mid = c_in
        if expand is not None:
            mid = make_divisible(round(c_in * expand), 8)
            layers += conv_bn_act(c_in, mid, 1, 1, 1, act)
        layers += conv_bn_act(mid, mid, kernel, stride, mid, act)
        if se:
            layers.append(SqueezeExcite(mid))
        layers += conv_bn_act(mid, c_out, 1, 1, 1, None)
        self.body = nn.Sequential(*layers)
        self.mid = mid
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x if self.residual else self.body(x)


class OFAMobileNetV3(nn.Module):
    def __init__(self, ks: Sequence[int], e: Sequence[int], d: Sequence[int], num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.first_conv = nn.Sequential(*conv_bn_act(3, STEM_WIDTH, 3, 2, 1, "h_swish"))
        blocks: list[nn.Module] = [MBConv(STEM_WIDTH, FIRST_BLOCK_WIDTH, 3, None, 1, "relu", se=False)]
        c_in = FIRST_BLOCK_WIDTH
        for stage, depth in enumerate(d):
            for pos in range(depth):
                slot = MAX_DEPTH * stage + pos
                stride = STAGE_STRIDES[stage] if pos == 0 else 1
                blocks.append(MBConv(c_in, STAGE_WIDTHS[stage], ks[slot], e[slot], stride,
                                     STAGE_ACTS[stage], STAGE_SE[stage]))
                c_in = STAGE_WIDTHS[stage]
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = nn.Sequential(*conv_bn_act(c_in, FINAL_EXPAND_WIDTH, 1, 1, 1, "h_swish"))
        # feature mix: no BN and no bias (spec 3.3)
        self.feature_mix = nn.Sequential(nn.Conv2d(FINAL_EXPAND_WIDTH, FEATURE_MIX_WIDTH, 1, bias=False), HSwish())
        self.classifier = nn.Linear(FEATURE_MIX_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_expand(self.blocks(self.first_conv(x)))
        x = self.feature_mix(spatial_mean(x))
        return self.classifier(torch.flatten(x, 1))


def build_ofa_mbv3(ks: Sequence[int], e: Sequence[int], d: Sequence[int], num_classes: int = NUM_CLASSES) -> nn.Module:
    """The static subnet of 20 ks, 20 e and 5 d values (slots >= d[i] of stage i are ignored)."""
    ks, e, d = canonical_blocks(ks, e, d)
    return OFAMobileNetV3(ks, e, d, num_classes=num_classes)


# -- the search space --------------------------------------------------------------------------
class OFAMobileNetV3Space(SearchSpace):
    """Not enumerable (about 5e20 subnets, over sys.maxsize): ``len()`` raises TypeError (base class)."""

    name = "ofa_mbv3"
    # every ONNX op type (plus the graph's Input nodes) an exported subnet can hold
    op_vocab = tuple(sorted(("Add", "BatchNormalization", "Clip", "Conv", "Div", "Flatten", "Gemm", "Input", "Mul",
                             "ReduceMean", "Relu")))
    NETWORK_CACHE_SIZE = 128  # an export at r=224 takes up to ~1 s
    #: its graphs are whole networks (nas_predictor.online reads them with whole-network tokens)
    whole_network = True

    def canonical(self, arch: str | Mapping[str, Any] | OFAArch) -> str:
        return format_ofa_arch(arch)

    def equivalence_key(self, arch: str) -> str:
        # raw records (random filler in the ignored slots) and their canonical string are one subnet
        return format_ofa_arch(arch)

    def equivalent_archs(self, arch: str) -> list[str]:
        canonical = format_ofa_arch(arch)
        return [arch] if arch == canonical else [arch, canonical]

    def build_network(self, arch: str | Mapping[str, Any] | OFAArch) -> nn.Module:
        a = parse_ofa_arch(arch)
        return OFAMobileNetV3(a.ks, a.e, a.d)

    @staticmethod
    def input_shape(batch: int = 1, r: int = 224) -> tuple[int, int, int, int]:
        return (batch, 3, int(r), int(r))

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, int, int, int]:
        return self.input_shape(batch, parse_ofa_arch(arch).r)

    def to_graph(self, arch: str | Mapping[str, Any] | OFAArch) -> ArchGraph:
        return network_graph(self, arch)  # the whole network, exported (cached on this space)

    def sample(self, rng: np.random.Generator) -> str:
        """Uniform per gene (as OFA samples): d per stage, then ks and e of the active slots, then r."""
        d = [DEPTHS[i] for i in rng.integers(0, len(DEPTHS), NUM_STAGES)]
        ks, e = [0] * NUM_SLOTS, [0] * NUM_SLOTS
        for slot in active_slots(d):
            ks[slot] = KERNELS[int(rng.integers(len(KERNELS)))]
            e[slot] = EXPANDS[int(rng.integers(len(EXPANDS)))]
        r = RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
        return OFAArch(tuple(ks), tuple(e), tuple(d), r).to_string()

    def choices(self) -> list[tuple[str, tuple]]:
        # every slot gets a kernel and an expansion; those of slots a stage's depth leaves out are
        # ignored (the canonical string zeroes them)
        return ([(f"d{s}", tuple(DEPTHS)) for s in range(NUM_STAGES)]
                + [(f"ks{s}", tuple(KERNELS)) for s in range(NUM_SLOTS)]
                + [(f"e{s}", tuple(EXPANDS)) for s in range(NUM_SLOTS)] + [("r", tuple(RESOLUTIONS))])

    def from_choices(self, values: dict) -> str:
        return format_ofa_arch({"ks": [values[f"ks{s}"] for s in range(NUM_SLOTS)],
                                "e": [values[f"e{s}"] for s in range(NUM_SLOTS)],
                                "d": [values[f"d{s}"] for s in range(NUM_STAGES)], "r": values["r"]})

    def to_choices(self, arch: str | Mapping[str, Any] | OFAArch) -> dict:
        """The canonical subnet's genes as ints; the slots its depths leave out (0 in the canonical
        string) get the first kernel and expansion, which ``from_choices`` ignores."""
        a = parse_ofa_arch(arch)
        active = set(a.active_slots())
        values: dict = {f"d{s}": DEPTHS[DEPTHS.index(a.d[s])] for s in range(NUM_STAGES)}
        for key, genes, allowed in (("ks", a.ks, KERNELS), ("e", a.e, EXPANDS)):
            for s in range(NUM_SLOTS):
                values[f"{key}{s}"] = allowed[allowed.index(genes[s])] if s in active else allowed[0]
        values["r"] = RESOLUTIONS[RESOLUTIONS.index(a.r)]
        return values

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Change one gene: an active ks or e, one stage's d, or r, to a different allowed value.

        Growing a stage activates slots with no value; they get random ks and e, so the child is
        one of the neighbours listed for that d change."""
        a = parse_ofa_arch(arch)
        genes = [("ks", s) for s in a.active_slots()] + [("e", s) for s in a.active_slots()]
        genes += [("d", stage) for stage in range(NUM_STAGES)] + [("r", 0)]
        key, index = genes[int(rng.integers(len(genes)))]
        ks, e, d, r = list(a.ks), list(a.e), list(a.d), a.r
        if key == "r":
            r = _other(RESOLUTIONS, r, rng)
        elif key in ("ks", "e"):
            values, allowed = (ks, KERNELS) if key == "ks" else (e, EXPANDS)
            values[index] = _other(allowed, values[index], rng)
        else:
            old = d[index]
            d[index] = _other(DEPTHS, old, rng)
            for pos in range(old, d[index]):
                slot = MAX_DEPTH * index + pos
                ks[slot] = KERNELS[int(rng.integers(len(KERNELS)))]
                e[slot] = EXPANDS[int(rng.integers(len(EXPANDS)))]
        return parse_ofa_arch({"ks": ks, "e": e, "d": d, "r": r}).to_string()

    def neighbours(self, arch: str) -> list[str]:
        """Every single-gene change; a deeper stage comes with every ks / e choice of its new slots."""
        a = parse_ofa_arch(arch)
        out: list[str] = []

        def add(ks: Sequence[int], e: Sequence[int], d: Sequence[int], r: int) -> None:
            out.append(parse_ofa_arch({"ks": ks, "e": e, "d": d, "r": r}).to_string())

        for slot in a.active_slots():
            for k in KERNELS:
                if k != a.ks[slot]:
                    add(a.ks[:slot] + (k,) + a.ks[slot + 1:], a.e, a.d, a.r)
            for x in EXPANDS:
                if x != a.e[slot]:
                    add(a.ks, a.e[:slot] + (x,) + a.e[slot + 1:], a.d, a.r)
        for stage in range(NUM_STAGES):
            for depth in DEPTHS:
                if depth == a.d[stage]:
                    continue
                d = a.d[:stage] + (depth,) + a.d[stage + 1:]
                new_slots = [MAX_DEPTH * stage + pos for pos in range(a.d[stage], depth)]
                choices = itertools.product(itertools.product(KERNELS, EXPANDS), repeat=len(new_slots))
                for fill in choices:  # a single empty fill when the stage shrinks
                    ks, e = list(a.ks), list(a.e)
                    for slot, (k, x) in zip(new_slots, fill):
                        ks[slot], e[slot] = k, x
                    add(ks, e, d, a.r)
        for r in RESOLUTIONS:
            if r != a.r:
                add(a.ks, a.e, a.d, r)
        return out


def _other(allowed: Sequence[int], current: int, rng: np.random.Generator) -> int:
    choices = [v for v in allowed if v != current]
    return choices[int(rng.integers(len(choices)))]
