"""Building blocks shared by the NNLQP family generators, plus width / MAC helpers.

The blocks follow torchvision's layer layouts (so the base networks have torchvision's parameter
counts) with the kernel sizes, widths and expansions left free for the variants:

- :func:`conv_bn_act`: conv (no bias) -> BN -> optional activation (torchvision's Conv2dNormActivation);
- :class:`SqueezeExcite`: global pool -> 1x1 conv -> act -> 1x1 conv -> gate, times the input
  (torchvision's SqueezeExcitation; one GlobalAveragePool, not OFA's two ReduceMeans);
- :class:`InvertedResidual`: [1x1 expand] -> depthwise kxk -> [SE] -> 1x1 project, residual iff
  stride 1 and C_in = C_out (MobileNetV2 / V3, MnasNet, EfficientNet's MBConv);
- :class:`ResidualReLU`: relu(body(x) + shortcut(x)), the shortcut a 1x1 projection where the shape changes
  (ResNet's basic block, RegNet's bottleneck), and :class:`PooledClassifier`, their features -> pool -> Linear;
- :func:`stack_stages`: a network's stages in order, each built from the previous one's width.

``make_divisible`` is the one of ``search_spaces.ofa_mbv3`` (it is torchvision's ``_make_divisible``).
The MobileNet-style blocks of ``search_spaces.fbnet`` / ``search_spaces.ofa_mbv3`` are not reused:
FBNet's block always has the first 1x1 (also at expansion 1) and grouped 1x1s, OFA's writes h_swish
out as Add/Clip/Mul/Div and sizes its SE from ``make_divisible``; neither matches torchvision's
layouts (and ``benchmarks/model_zoo.py`` is not an importable package).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from search_spaces.ofa_mbv3 import make_divisible
from nas_predictor.torch_utils import count_parameters
from search_spaces.onnx_export import count_macs

__all__ = [
    "ACTIVATIONS", "InvertedResidual", "PooledClassifier", "ResidualReLU", "SqueezeExcite", "conv_bn_act",
    "make_divisible", "meta_macs", "meta_params", "scaled", "stack_stages", "WIDTH_MULTIPLIERS",
]

ActFactory = Callable[[], nn.Module]

# name -> module factory; names are what the configs record
ACTIVATIONS: dict[str, ActFactory] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "relu6": lambda: nn.ReLU6(inplace=False),
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}

# nn-Meter's channel grid (configs/*.yaml: start 0.2, end 1.8, step 0.1), as exact decimals
WIDTH_MULTIPLIERS: tuple[float, ...] = tuple(round(0.2 + 0.1 * i, 1) for i in range(17))


def activation(name: str | None) -> nn.Module | None:
    if name is None:
        return None
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


def scaled(base: int, multiplier: float) -> int:
    """nn-Meter's width rule ``int(base * multiplier)`` (floored, at least 1); exact for 0.1 steps."""
    return max(1, int(base * multiplier + 1e-9))


def choice(rng: np.random.Generator, values: Sequence):
    """One uniform draw from ``values``, returned as a plain Python value (JSON-serialisable)."""
    value = values[int(rng.integers(len(values)))]
    return value.item() if hasattr(value, "item") else value


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = "relu",
                padding: int | None = None) -> nn.Sequential:
    """Conv (no bias, padding ``kernel // 2`` unless given) -> BN -> activation (none for ``act=None``)."""
    pad = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    act_module = activation(act)
    if act_module is not None:
        layers.append(act_module)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean(x))))), the 1x1 convs with bias (torchvision's SqueezeExcitation)."""

    def __init__(self, channels: int, squeeze: int, act: str = "relu", gate: str = "hsigmoid") -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = activation(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    """[1x1 expand, when ``expanded != c_in``] -> depthwise kxk (stride) -> [SE] -> 1x1 project (linear).

    ``se_squeeze`` (channels of the SE bottleneck) None means no SE. The residual add is there iff
    ``stride == 1`` and ``c_in == c_out``. ``always_expand`` keeps the 1x1 expand conv even when
    ``expanded == c_in`` (MnasNet's block has no expansion-1 special case).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expanded: int, act: str,
                 se_squeeze: int | None = None, se_act: str = "relu", se_gate: str = "hsigmoid",
                 always_expand: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != c_in or always_expand:
            layers.append(conv_bn_act(c_in, expanded, 1, act=act))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se_squeeze is not None:
            layers.append(SqueezeExcite(expanded, se_squeeze, se_act, se_gate))
        layers.append(conv_bn_act(expanded, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class ResidualReLU(nn.Module):
    """relu(body(x) + shortcut(x)): the shortcut is the identity, or a 1x1 conv (stride) -> BN where the
    block changes the shape (stride > 1 or C_in != C_out).

    ``shortcut_name`` is the attribute the shortcut is kept under: it names the shortcut's weights and
    nodes in the exported graph, so each family keeps its own (ResNet's ``shortcut``, RegNet's ``proj``).
    """

    def __init__(self, body: nn.Module, c_in: int, c_out: int, stride: int, shortcut_name: str = "shortcut") -> None:
        super().__init__()
        self.body = body
        self.shortcut_name = shortcut_name
        setattr(self, shortcut_name,
                None if stride == 1 and c_in == c_out else conv_bn_act(c_in, c_out, 1, stride, act=None))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = getattr(self, self.shortcut_name)
        return self.relu(self.body(x) + (x if shortcut is None else shortcut(x)))


class PooledClassifier(nn.Module):
    """``features`` (the layers, in order) -> global average pool -> flatten -> Linear ``fc``."""

    def __init__(self, layers: Sequence[nn.Module], channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def stack_stages(stages: Sequence[dict], stage_layers: Callable[[int, int, dict], list[nn.Module]],
                 c_in: int = 3) -> tuple[nn.Sequential, int]:
    """The stages' layers in one Sequential, and the last stage's width.

    ``stage_layers(i, c_in, stage)`` builds stage ``i`` (its downsampling and blocks) from the width
    ``c_in`` before it; each stage's output width is its config's ``"width"``.
    """
    layers: list[nn.Module] = []
    for i, stage in enumerate(stages):
        layers += stage_layers(i, c_in, stage)
        c_in = stage["width"]
    return nn.Sequential(*layers), c_in


_SHAPE_PRESERVING = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.Dropout,
                     nn.LayerNorm, nn.GroupNorm, nn.GELU)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def meta_macs(build: Callable[[], nn.Module], input_shape: Sequence[int]) -> int:
    """MACs of one forward pass, counted on the meta device (no weights, no compute: milliseconds).

    Counted by ``search_spaces.onnx_export.count_macs`` (same convention) on a throw-away meta copy.
    """
    with torch.device("meta"):
        module = build()
    for sub in module.modules():
        if isinstance(sub, _SHAPE_PRESERVING):
            # meta kernels of BN and activations run as slow Python decompositions; they keep the
            # shape and count no MACs, so this throw-away copy skips them
            sub.forward = _identity
    return count_macs(module, input_shape, device="meta")


def meta_params(build: Callable[[], nn.Module]) -> int:
    """Trainable parameters of the module ``build`` makes, built on the meta device (no memory)."""
    with torch.device("meta"):
        module = build()
    return count_parameters(module)
