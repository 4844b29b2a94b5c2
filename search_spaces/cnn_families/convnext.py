"""ConvNeXt (Liu et al., CVPR'22, "A ConvNet for the 2020s"; the official / timm ``ConvNeXt`` layout).

Layout: 4x4 stride-4 stem conv -> LayerNorm, then 4 stages of ConvNeXt blocks; stages 2-4 start with a
LayerNorm and a 2x2 stride-2 conv (the downsampling layer). A block is depthwise kxk conv ->
LayerNorm -> Linear (C -> ratio x C) -> GELU -> Linear (ratio x C -> C) -> layer scale (a learned
per-channel gamma) -> residual add. The LayerNorms and the Linears run channels-last (``permute``),
as in the official code, so the ONNX graph has Transpose -> LayerNormalization -> MatMul / Add ->
Erf-GELU -> ... -> Mul -> Transpose. Head: global average pool -> LayerNorm -> Linear.

Base network: ConvNeXt-atto (timm ``convnext_atto``: depths 2 / 2 / 6 / 2, widths 40 / 80 / 160 / 320,
kernel 7, MLP ratio 4): 0.551 GMACs at 224 (``blocks.meta_macs``), 3,695,520 parameters (timm lists
3.7 M; its atto runs the MLP as 1x1 convs, the official channels-last Linears are kept here).

Ranges drawn (in this order, per stage): the width, ``make_divisible(base width x m, 8)`` with m in
0.6, 0.7, ..., 1.6; in the extended space the depth (stages 1, 2, 4: 1-3 blocks; stage 3: 3-9); the
MLP ratio of the stage from {2, 3, 4}; per block the depthwise kernel from {3, 5, 7, 9, 11} (the large
kernels ConvNeXt is known for). The stem width is stage 1's. The resolution (extended space) is drawn
by ``generate``. Any resolution >= 32 works (2x2 stride-2 convs floor odd sizes).

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 0.95 M - 8.85 M;
MACs 0.13 - 1.30 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice, make_divisible, stack_stages
from search_spaces.cnn_families.spec import FamilySpec

DEPTHS = (2, 2, 6, 2)
WIDTHS = (40, 80, 160, 320)
BASE_KERNEL, BASE_RATIO = 7, 4
WIDTH_MULTIPLIERS = tuple(round(0.6 + 0.1 * i, 1) for i in range(11))  # 0.6 .. 1.6
DEPTH_CHOICES = ((1, 2, 3), (1, 2, 3), tuple(range(3, 10)), (1, 2, 3))
KERNELS = (3, 5, 7, 9, 11)
MLP_RATIOS = (2, 3, 4)
LAYER_SCALE_INIT = 1e-6


def base() -> dict:
    return {"stages": [{"width": w, "mlp_ratio": BASE_RATIO, "kernels": [BASE_KERNEL] * d}
                       for w, d in zip(WIDTHS, DEPTHS)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for width, depth, depths in zip(WIDTHS, DEPTHS, DEPTH_CHOICES):
        w = make_divisible(width * choice(rng, WIDTH_MULTIPLIERS), 8)
        d = choice(rng, depths) if extended else depth
        ratio = choice(rng, MLP_RATIOS)
        stages.append({"width": w, "mlp_ratio": ratio, "kernels": [choice(rng, KERNELS) for _ in range(d)]})
    return {"stages": stages}


class ChannelsLastNorm(nn.Module):
    """LayerNorm over the channels of an NCHW map: permute to NHWC, normalise, permute back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, channels: int, kernel: int, mlp_ratio: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, mlp_ratio * channels)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(mlp_ratio * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), LAYER_SCALE_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


def _stage_layers(i: int, c_in: int, stage: dict) -> list[nn.Module]:
    """Stage ``i``: the stem (``i == 0``) or the downsampling layer, then its blocks."""
    width = stage["width"]
    if i == 0:
        layers: list[nn.Module] = [nn.Conv2d(c_in, width, 4, stride=4), ChannelsLastNorm(width)]
    else:
        layers = [ChannelsLastNorm(c_in), nn.Conv2d(c_in, width, 2, stride=2)]
    return layers + [Block(width, k, stage["mlp_ratio"]) for k in stage["kernels"]]


class ConvNeXt(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        self.features, c_in = stack_stages(config["stages"], _stage_layers)
        self.norm = nn.LayerNorm(c_in, eps=1e-6)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x).mean((-2, -1))))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return ConvNeXt(config, resolution, num_classes)


SPEC = FamilySpec(name="convnext", base=base, sample=sample, build=build, resolution=224)
