"""ShuffleNetV2 (Ma et al., ECCV'18; torchvision ``ShuffleNetV2`` layout).

Layout: 3x3 stride-2 conv (24 channels, BN, ReLU) -> 3x3 stride-2 max pool -> 3 stages of shuffle units
-> 1x1 conv (BN, ReLU) -> global average pool (``mean([2, 3])`` as torchvision) -> Linear. A stride-1
unit splits the channels in two halves (ONNX Split), passes one through 1x1 conv -> BN ->
ReLU -> depthwise kxk -> BN -> 1x1 conv -> BN -> ReLU and concatenates it with the other; a stride-2
unit (the first of a stage) runs both a depthwise kxk stride-2 -> 1x1 branch on the input and the
three-layer branch, and concatenates them. Every unit ends with the channel shuffle of 2 groups
(view -> transpose -> view: ONNX Reshape -> Transpose -> Reshape; the batch is left as -1 and the other
dims are constants, so the graph has no Shape arithmetic).

Base network: ShuffleNetV2 1.0x (stage widths 116 / 232 / 464, repeats 4 / 8 / 4, head 1024, kernel 3):
0.145 GMACs at 224 (``blocks.meta_macs``; torchvision: 0.14 GFLOPS), 2,278,604 parameters (torchvision's
count).

Ranges drawn (in this order): per stage the width, ``make_divisible(base width x m, 8)`` (even, as the
split needs) with m in {0.5, 0.75, 1.0, 1.25, 1.5, 2.0} (torchvision's 0.5x-2.0x multipliers), in the
extended space the repeats (stage 1: 2-6, stage 2: 4-12, stage 3: 2-6; nnlqp space 4 / 8 / 4), then
per unit the depthwise kernel from {3, 5, 7}; last the head conv's width from {512, 768, 1024, 1536,
2048} (torchvision's 2.0x uses 2048). The stem is fixed. The resolution (extended space) is drawn by
``generate``; any resolution >= 32 works.

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 0.93 M - 7.14 M;
MACs 0.045 - 0.433 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice, conv_bn_act, make_divisible
from search_spaces.cnn_families.spec import FamilySpec

STEM, HEAD = 24, 1024
WIDTHS = (116, 232, 464)
REPEATS = (4, 8, 4)
WIDTH_MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
REPEAT_CHOICES = (tuple(range(2, 7)), tuple(range(4, 13)), tuple(range(2, 7)))
KERNELS = (3, 5, 7)
HEADS = (512, 768, 1024, 1536, 2048)


def base() -> dict:
    return {"stem": STEM, "head": HEAD,
            "stages": [{"width": w, "kernels": [3] * n} for w, n in zip(WIDTHS, REPEATS)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for width, repeats, choices in zip(WIDTHS, REPEATS, REPEAT_CHOICES):
        w = make_divisible(width * choice(rng, WIDTH_MULTIPLIERS), 8)
        n = choice(rng, choices) if extended else repeats
        stages.append({"width": w, "kernels": [choice(rng, KERNELS) for _ in range(n)]})
    return {"stem": STEM, "head": choice(rng, HEADS), "stages": stages}


def channel_shuffle(x: torch.Tensor, groups: int, channels: int, height: int, width: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups; the sizes are passed in so the exported Reshapes
    get constant shapes (``x.size()`` would trace into Shape / Gather / Concat nodes)."""
    x = x.view(-1, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(-1, channels, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, size: int) -> None:
        super().__init__()
        half = c_out // 2
        self.stride, self.c_out = stride, c_out
        self.size = (size + 2 * (kernel // 2) - kernel) // stride + 1  # the output's height and width
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn_act(c_in, c_in, kernel, stride, groups=c_in, act=None),
                                         conv_bn_act(c_in, half, 1))
        else:
            self.branch1 = None
        c_branch = c_in if stride > 1 else half
        self.branch2 = nn.Sequential(conv_bn_act(c_branch, half, 1),
                                     conv_bn_act(half, half, kernel, stride, groups=half, act=None),
                                     conv_bn_act(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            # explicit sizes: ``chunk`` traces into Shape arithmetic, a sized split into one Split node
            x1, x2 = x.split([self.c_out // 2, self.c_out // 2], dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2, self.c_out, self.size, self.size)


class ShuffleNetV2(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        size = (resolution - 1) // 2 + 1  # 3x3 stride-2 stem, padding 1
        size = (size - 1) // 2 + 1  # 3x3 stride-2 max pool, padding 1
        layers: list[nn.Module] = [conv_bn_act(3, config["stem"], 3, 2), nn.MaxPool2d(3, 2, 1)]
        c_in = config["stem"]
        for stage in config["stages"]:
            for j, kernel in enumerate(stage["kernels"]):
                unit = ShuffleUnit(c_in, stage["width"], kernel, 2 if j == 0 else 1, size)
                layers.append(unit)
                c_in, size = stage["width"], unit.size
        layers.append(conv_bn_act(c_in, config["head"], 1))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(config["head"], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return ShuffleNetV2(config, resolution, num_classes)


SPEC = FamilySpec(name="shufflenet", base=base, sample=sample, build=build, resolution=224)
