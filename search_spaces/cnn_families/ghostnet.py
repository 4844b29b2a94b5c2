"""GhostNet (Han et al., CVPR'20, "GhostNet: More Features from Cheap Operations"; the official / timm
``ghostnet_100`` layout).

Layout: 3x3 stride-2 stem (16 channels, BN, ReLU) -> ghost bottlenecks -> 1x1 conv (BN, ReLU) -> global
average pool -> 1x1 conv with bias (1280, ReLU) -> Linear. A Ghost module makes ceil(C_out / 2)
channels with a 1x1 conv (BN, [ReLU]), the other half with a cheap 3x3 depthwise conv of those (BN,
[ReLU]), concatenates the two (ONNX Concat) and slices the first C_out channels (ONNX Slice). A ghost
bottleneck is Ghost module (-> expanded, ReLU) -> [depthwise kxk stride 2, BN, when the block
downsamples] -> [squeeze-excite: squeeze ``make_divisible(expanded / 4, 4)``, ReLU / HardSigmoid] ->
Ghost module (-> C_out, linear), plus the identity or a depthwise kxk (stride) -> BN -> 1x1 -> BN
shortcut.

Base network: GhostNet 1.0x (the paper's table 1: 16 blocks, widths 16 / 24 / 40 / 80 / 112 / 160, head
960, hidden 1280): 0.141 GMACs at 224 (``blocks.meta_macs``; the paper: 141 M), 5,182,508 parameters
(timm's ``ghostnet_100``: 5.18 M).

Ranges drawn (in this order): per stage the width, ``make_divisible(base width x m, 4)`` with m in
{0.5, 0.75, 1.0, 1.25, 1.5}; in the extended space the number of blocks (base - 1 .. base + 1, at least
1; added blocks repeat the stage's last block); per block the kernel (depthwise stride-2 conv and
shortcut) from {3, 5, 7}, the expanded width ``make_divisible(base expanded x m, 4)`` with m in {0.5,
0.75, 1.0, 1.25, 1.5}, and squeeze-excite on or off; last the 1x1 head width (960 x the same
multipliers). The stem and the 1280-wide hidden layer are fixed. The resolution (extended space) is
drawn by ``generate``; any resolution >= 32 works.

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 2.74 M - 8.04 M;
MACs 0.062 - 0.286 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import SqueezeExcite, choice, conv_bn_act, make_divisible
from search_spaces.cnn_families.spec import FamilySpec

STEM, HEAD, HIDDEN = 16, 960, 1280
# (width, first stride, ((kernel, expanded, se), ...)): the paper's table 1 grouped by output width
STAGES = (
    (16, 1, ((3, 16, False),)),
    (24, 2, ((3, 48, False), (3, 72, False))),
    (40, 2, ((5, 72, True), (5, 120, True))),
    (80, 2, ((3, 240, False), (3, 200, False), (3, 184, False), (3, 184, False))),
    (112, 1, ((3, 480, True), (3, 672, True))),
    (160, 2, ((5, 672, True), (5, 960, False), (5, 960, True), (5, 960, False), (5, 960, True))),
)
MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5)
KERNELS = (3, 5, 7)


def base() -> dict:
    return {"stem": STEM, "head": HEAD,
            "stages": [{"width": w, "blocks": [{"kernel": k, "expanded": e, "se": se} for k, e, se in blocks]}
                       for w, _, blocks in STAGES]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for width, _, blocks in STAGES:
        w = make_divisible(width * choice(rng, MULTIPLIERS), 4)
        bases = list(blocks)
        if extended:
            depth = choice(rng, [d for d in (len(bases) - 1, len(bases), len(bases) + 1) if d >= 1])
            bases = bases[:depth] + [bases[-1]] * (depth - len(bases))
        stages.append({"width": w, "blocks": [
            {"kernel": choice(rng, KERNELS), "expanded": make_divisible(e * choice(rng, MULTIPLIERS), 4),
             "se": bool(choice(rng, (False, True)))} for _, e, _ in bases]})
    head = make_divisible(HEAD * choice(rng, MULTIPLIERS), 4)
    return {"stem": STEM, "head": head, "stages": stages}


class GhostModule(nn.Module):
    """1x1 conv to ceil(C_out / 2), a cheap 3x3 depthwise conv of it, Concat, the first C_out channels."""

    def __init__(self, c_in: int, c_out: int, relu: bool) -> None:
        super().__init__()
        self.c_out = c_out
        init = math.ceil(c_out / 2)
        act = "relu" if relu else None
        self.primary = conv_bn_act(c_in, init, 1, act=act)
        self.cheap = conv_bn_act(init, init, 3, groups=init, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary(x)
        return torch.cat((x1, self.cheap(x1)), dim=1)[:, :self.c_out]


class GhostBottleneck(nn.Module):
    def __init__(self, c_in: int, expanded: int, c_out: int, kernel: int, stride: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [GhostModule(c_in, expanded, relu=True)]
        if stride > 1:
            layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=None))
        if se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded * 0.25, 4), act="relu", gate="hsigmoid"))
        layers.append(GhostModule(expanded, c_out, relu=False))
        self.body = nn.Sequential(*layers)
        if stride == 1 and c_in == c_out:
            self.shortcut = None
        else:
            self.shortcut = nn.Sequential(conv_bn_act(c_in, c_in, kernel, stride, groups=c_in, act=None),
                                          conv_bn_act(c_in, c_out, 1, act=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


class GhostNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, config["stem"], 3, 2)]
        c_in = config["stem"]
        for (_, stride, _), stage in zip(STAGES, config["stages"]):
            for j, block in enumerate(stage["blocks"]):
                layers.append(GhostBottleneck(c_in, block["expanded"], stage["width"], block["kernel"],
                                              stride if j == 0 else 1, block["se"]))
                c_in = stage["width"]
        layers.append(conv_bn_act(c_in, config["head"], 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(config["head"], HIDDEN, 1)
        self.act = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(HIDDEN, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv_head(self.pool(self.features(x))))
        return self.classifier(torch.flatten(x, 1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return GhostNet(config, resolution, num_classes)


SPEC = FamilySpec(name="ghostnet", base=base, sample=sample, build=build, resolution=224)
