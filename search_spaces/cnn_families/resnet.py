"""ResNet-18 (torchvision layout: 7x7 stem, 3x3 max pool, 4 stages of 2 basic blocks, 1x1 projection shortcuts).

Variants follow nn-Meter's ``resnetv1.py`` / ``resnet.yaml``: the width of each stage is the base width
times a multiplier from 0.2, 0.3, ..., 1.2 (nn-Meter's ResNet range is narrower than the other
families'), and every block draws one kernel from {3, 5, 7} for both of its convs. nn-Meter samples a
width per block but then forces stride-1 blocks of a stage to keep the stage's width (so the identity
add works), which is a width per stage; it also keeps stage 1 at the stem's 64 channels. We sample stage
1's width too (with torchvision's 1x1 projection shortcut when it differs from the stem), so all four
stages vary. The stem (64 channels, 7x7) is fixed, as in nn-Meter.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from search_spaces.cnn_families.blocks import PooledClassifier, ResidualReLU, choice, conv_bn_act, scaled

STEM = (64, 7)
STAGES = ((64, 2), (128, 2), (256, 2), (512, 2))  # (width, blocks); stage i > 0 starts with stride 2
WIDTH_MULTIPLIERS = tuple(round(0.2 + 0.1 * i, 1) for i in range(11))  # 0.2 .. 1.2 (nn-Meter resnet.yaml)
KERNELS = (3, 5, 7)


def base() -> dict:
    return {"stem": {"width": STEM[0], "kernel": STEM[1]},
            "stages": [{"width": w, "kernels": [3] * n} for w, n in STAGES]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for width, n in STAGES:
        depth = choice(rng, (1, 2, 3)) if extended else n
        stages.append({"width": scaled(width, choice(rng, WIDTH_MULTIPLIERS)),
                       "kernels": [choice(rng, KERNELS) for _ in range(depth)]})
    return {"stem": {"width": STEM[0], "kernel": STEM[1]}, "stages": stages}


class BasicBlock(ResidualReLU):
    """conv kxk (stride) -> BN -> ReLU -> conv kxk -> BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        body = nn.Sequential(conv_bn_act(c_in, c_out, kernel, stride), conv_bn_act(c_out, c_out, kernel, act=None))
        super().__init__(body, c_in, c_out, stride)


class ResNet(PooledClassifier):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        stem = config["stem"]
        layers: list[nn.Module] = [conv_bn_act(3, stem["width"], stem["kernel"], 2), nn.MaxPool2d(3, 2, 1)]
        c_in = stem["width"]
        for i, stage in enumerate(config["stages"]):
            for j, kernel in enumerate(stage["kernels"]):
                layers.append(BasicBlock(c_in, stage["width"], kernel, 2 if (i > 0 and j == 0) else 1))
                c_in = stage["width"]
        super().__init__(layers, c_in, num_classes)
