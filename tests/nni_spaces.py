"""A small NNI model space with every kind of mutable the whole-network search reads, which the contract
suites and tests/strategies/test_nni_space.py run against (importing it needs NNI)."""

from __future__ import annotations

from strategies.nni_bridge import require_nni

nni = require_nni()

from nni.mutable import ExpressionConstraint  # noqa: E402
from nni.nas.nn.pytorch import (  # noqa: E402
    InputChoice, LayerChoice, ModelSpace, MutableConv2d, MutableLinear, ParametrizedModule, Repeat,
)
from torch import nn  # noqa: E402

NAME = "contract_nni_cnn"
INPUT_SHAPE = (1, 3, 16, 16)


class Expand(ParametrizedModule):
    """A mutable module of ours: a residual pointwise expansion whose width and ratio are choices (NNI
    freezes a ParametrizedModule's arguments)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * ratio, 1), nn.ReLU(),
                                  nn.Conv2d(channels * ratio, channels, 1))

    def forward(self, x):
        return x + self.body(x)


class TinyNet(ModelSpace):
    """width and kernel (nni.choice through MutableConv2d / MutableLinear, and an expression of the
    kernel as padding), act (LayerChoice), depth (Repeat of a mutable module), skip (InputChoice of one),
    mix (InputChoice of two, summed) and an NNI constraint: the widest, most expanded, deepest stack is
    out. Where skip and mix read only the stem, the blocks are unused: samples differing only in depth
    and ratio are then one network."""

    def __init__(self) -> None:
        super().__init__()
        width = nni.choice("width", [8, 16])
        kernel = nni.choice("kernel", [3, 5])
        depth = nni.choice("depth", [1, 2, 3])
        ratio = nni.choice("ratio", [1, 2])
        self.stem = MutableConv2d(3, width, kernel, padding=kernel // 2)
        self.act = LayerChoice({"relu": nn.ReLU(), "hswish": nn.Hardswish()}, label="act")
        self.blocks = Repeat(lambda _: Expand(width, ratio), depth)
        self.skip = InputChoice(2, 1, label="skip")
        self.mix = InputChoice(3, 2, label="mix")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = MutableLinear(width, 10)
        self.add_mutable(ExpressionConstraint(width * ratio * depth <= 64, label="budget"))

    def forward(self, x):
        x = self.act(self.stem(x))
        y = self.blocks(x)
        z = self.skip([x, y])
        return self.head(self.pool(self.mix([x, y, z])).flatten(1))


def contract_space():
    """The space (made, and registered under NAME, on each call; the definition is the same every time)."""
    from strategies.nni_bridge.space import nni_space

    return nni_space(TinyNet(), INPUT_SHAPE, NAME)
