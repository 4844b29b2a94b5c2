"""RegNetX / RegNetY (Radosavovic et al., CVPR'20, "Designing Network Design Spaces"; torchvision layout).

Layout (torchvision ``RegNet``): 3x3 stride-2 stem (32 channels, BN, ReLU), 4 stages of residual
bottleneck blocks, each stage starting with stride 2, then global average pool -> Linear. A block is
1x1 conv (C_in -> w_b) -> 3x3 *group* conv (w_b / group width groups, the stride) -> [RegNetY: squeeze-
excite, squeeze int(round(0.25 x C_in)), ReLU / Sigmoid] -> 1x1 conv (w_b -> C_out, no activation),
plus the identity or a 1x1 strided projection, then ReLU; w_b = C_out / bottleneck ratio. Widths are
made compatible with the group width as torchvision does (w_b a multiple of the group width, the group
width capped at w_b).

Base network: RegNetX-400MF (torchvision ``regnet_x_400mf``: depths 1 / 2 / 7 / 12, widths 32 / 64 /
160 / 400 -- the rule's 24 / 64 / 152 / 392 made divisible by the group width 16 --, bottleneck 1):
0.414 GMACs at 224, 5,495,976 parameters (torchvision's count; torchvision's RegNetY-400MF table gives
its 4,344,144 too).

Ranges drawn (in this order): the variant X or Y; the group width from {8, 16, 24, 32}; the bottleneck
ratio from {1, 2}; per stage the width, base width x m with m in 0.5, 0.6, ..., 1.6 (then made
compatible with the group width), and in the extended space the depth (stage 1: 1-2, stage 2: 1-4,
stage 3: 4-10, stage 4: 6-14 blocks; the nnlqp space keeps 1 / 2 / 7 / 12). Instead of the paper's
quantized linear width rule (which gives a varying number of stages) each of the 4 stages draws its
width, as in the paper's AnyNet space. The resolution (extended space) is drawn by ``generate``; any
resolution >= 32 works.

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 0.72 M - 14.9 M;
MACs 0.083 - 1.05 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from search_spaces.cnn_families.blocks import (PooledClassifier, ResidualReLU, SqueezeExcite, choice, conv_bn_act,
                                               make_divisible)
from search_spaces.cnn_families.spec import FamilySpec

STEM = 32
DEPTHS = (1, 2, 7, 12)
WIDTHS = (32, 64, 160, 400)
BASE_GROUP_WIDTH = 16
VARIANTS = ("X", "Y")
GROUP_WIDTHS = (8, 16, 24, 32)
BOTTLENECKS = (1, 2)
WIDTH_MULTIPLIERS = tuple(round(0.5 + 0.1 * i, 1) for i in range(12))  # 0.5 .. 1.6
DEPTH_CHOICES = ((1, 2), (1, 2, 3, 4), tuple(range(4, 11)), tuple(range(6, 15)))
SE_RATIO = 0.25


def compatible(width: float, bottleneck: int, group_width: int) -> tuple[int, int]:
    """(C_out, group width) with C_out / bottleneck a multiple of the group width (torchvision's
    ``_adjust_widths_groups_compatibilty``: the group width capped at w_b, w_b rounded to it)."""
    w_b = int(width / bottleneck)
    g = min(group_width, w_b)
    return make_divisible(w_b, g) * bottleneck, g


def base() -> dict:
    return {"variant": "X", "stem": STEM, "bottleneck": 1,
            "stages": [{"width": w, "group_width": BASE_GROUP_WIDTH, "depth": d} for w, d in zip(WIDTHS, DEPTHS)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    variant = choice(rng, VARIANTS)
    group_width = choice(rng, GROUP_WIDTHS)
    bottleneck = choice(rng, BOTTLENECKS)
    stages = []
    for width, depth, depths in zip(WIDTHS, DEPTHS, DEPTH_CHOICES):
        w, g = compatible(width * choice(rng, WIDTH_MULTIPLIERS), bottleneck, group_width)
        stages.append({"width": w, "group_width": g, "depth": choice(rng, depths) if extended else depth})
    return {"variant": variant, "stem": STEM, "bottleneck": bottleneck, "stages": stages}


class Bottleneck(ResidualReLU):
    def __init__(self, c_in: int, c_out: int, stride: int, group_width: int, bottleneck: int, se: bool) -> None:
        w_b = c_out // bottleneck
        layers: list[nn.Module] = [conv_bn_act(c_in, w_b, 1),
                                   conv_bn_act(w_b, w_b, 3, stride, groups=w_b // group_width)]
        if se:
            layers.append(SqueezeExcite(w_b, int(round(SE_RATIO * c_in)), act="relu", gate="sigmoid"))
        layers.append(conv_bn_act(w_b, c_out, 1, act=None))
        super().__init__(nn.Sequential(*layers), c_in, c_out, stride, shortcut_name="proj")


class RegNet(PooledClassifier):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        se = config["variant"] == "Y"
        layers: list[nn.Module] = [conv_bn_act(3, config["stem"], 3, 2)]
        c_in = config["stem"]
        for stage in config["stages"]:
            for j in range(stage["depth"]):
                layers.append(Bottleneck(c_in, stage["width"], 2 if j == 0 else 1, stage["group_width"],
                                         config["bottleneck"], se))
                c_in = stage["width"]
        super().__init__(layers, c_in, num_classes)


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return RegNet(config, resolution, num_classes)


SPEC = FamilySpec(name="regnet", base=base, sample=sample, build=build, resolution=224)
