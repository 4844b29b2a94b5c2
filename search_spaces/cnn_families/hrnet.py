"""A multi-branch HRNet-like classifier (Wang et al., TPAMI'20, "Deep High-Resolution Representation
Learning"; the layout of timm's / the official ``HighResolutionNet`` small models, with a lighter head).

Layout: two 3x3 stride-2 convs (the stem, BN, ReLU) -> stage 1, bottleneck blocks at 1/4 (1x1 -> 3x3 ->
1x1 to 4 x 32 channels) -> stages 2, 3, 4, each adding one parallel branch at half
the resolution and twice the width of the previous (1/4, 1/8, 1/16, 1/32 with widths C, 2C, 4C, 8C);
a new branch is a 3x3 stride-2 conv of the lowest-resolution one (the first branch's input a 3x3 conv
of stage 1's output). A stage is a number of modules; a module runs ``blocks`` basic blocks (two kxk
convs, residual) on every branch and then FUSES the branches: output branch i sums every branch j,
the same branch as is, a lower-resolution one through 1x1 conv -> BN -> nearest upsampling to branch
i's exact size (``F.interpolate(size=...)``: ONNX Resize; sizes are computed from the resolution, so
odd sizes such as 11 <- 6 at 176 work), a higher-resolution one through i - j strided 3x3 convs (BN,
ReLU between them), then ReLU (ONNX Add of several inputs in turn). Head: HRNet's classification head
idea made light: from the highest resolution down, each branch's map is taken to the next by a 3x3
stride-2 conv (BN, ReLU) and added to it, then a 1x1 conv to ``head`` channels (BN, ReLU) -> global
average pool -> Linear.

Base network (HRNet-W18-small-v1's stages without its 2048-wide classification head): stem 64, one
stage-1 bottleneck of width 32, C = 18, 4 branches, stages 2-4 of one module each with 2 basic blocks
per branch, kernel 3, head 1024: 0.690 GMACs at 224 (``blocks.meta_macs``), 3,106,988 parameters.

Ranges drawn (in this order): the stem width from {32, 48, 64}; C from {12, 16, 18, 24, 30}; the
head width from {512, 768, 1024, 1536}; in the extended space the number of branches (2, 3 or 4: the
stages after stage 1 are branches - 1) and the stage-1 bottlenecks (1 or 2); then per later stage the
kernel of its basic blocks from {3, 5}, and in the extended space its modules (1 or 2) and basic
blocks per branch (1-3); the nnlqp space keeps 4 branches, 1 bottleneck, one module per stage and 2
blocks. The resolution (extended space) is drawn by ``generate``; any resolution >= 32 works.

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 0.71 M - 18.4 M;
MACs 0.18 - 2.07 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.cnn_families.blocks import choice, conv_bn_act
from search_spaces.cnn_families.spec import FamilySpec

STEM, WIDTH, HEAD, STAGE1_WIDTH = 64, 18, 1024, 32
BRANCHES, STAGE1_BLOCKS = 4, 1
MODULES, BLOCKS = (1, 1, 1), 2  # stages 2, 3, 4
STEMS = (32, 48, 64)
WIDTHS = (12, 16, 18, 24, 30)
HEADS = (512, 768, 1024, 1536)
BRANCH_CHOICES = (2, 3, 4)
STAGE1_CHOICES = (1, 2)
KERNELS = (3, 5)
BLOCK_CHOICES = (1, 2, 3)


def base() -> dict:
    return {"stem": STEM, "width": WIDTH, "head": HEAD, "stage1_blocks": STAGE1_BLOCKS,
            "stages": [{"kernel": 3, "modules": m, "blocks": BLOCKS} for m in MODULES[:BRANCHES - 1]]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stem = choice(rng, STEMS)
    width = choice(rng, WIDTHS)
    head = choice(rng, HEADS)
    branches = choice(rng, BRANCH_CHOICES) if extended else BRANCHES
    stage1 = choice(rng, STAGE1_CHOICES) if extended else STAGE1_BLOCKS
    stages = []
    for modules in MODULES[:branches - 1]:
        kernel = choice(rng, KERNELS)
        if extended:
            modules = choice(rng, tuple(range(1, modules + 2)))
            blocks = choice(rng, BLOCK_CHOICES)
        else:
            blocks = BLOCKS
        stages.append({"kernel": kernel, "modules": modules, "blocks": blocks})
    return {"stem": stem, "width": width, "head": head, "stage1_blocks": stage1, "stages": stages}


def _down(size: int) -> int:
    """Output size of a 3x3 stride-2 conv with padding 1."""
    return (size - 1) // 2 + 1


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4), residual with a 1x1 projection when the width changes (HRNet's stage 1)."""

    def __init__(self, c_in: int, width: int) -> None:
        super().__init__()
        c_out = 4 * width
        self.body = nn.Sequential(conv_bn_act(c_in, width, 1), conv_bn_act(width, width, 3),
                                  conv_bn_act(width, c_out, 1, act=None))
        self.proj = None if c_in == c_out else conv_bn_act(c_in, c_out, 1, act=None)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + (x if self.proj is None else self.proj(x)))


class BasicBlock(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(channels, channels, kernel), conv_bn_act(channels, channels, kernel, act=None))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + x)


class Upsample(nn.Module):
    """1x1 conv -> BN -> nearest upsampling to a fixed size (ONNX Resize with constant sizes)."""

    def __init__(self, c_in: int, c_out: int, size: int) -> None:
        super().__init__()
        self.conv = conv_bn_act(c_in, c_out, 1, act=None)
        self.size = (size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), size=self.size, mode="nearest")


class HighResolutionModule(nn.Module):
    """Basic blocks on every branch, then every output branch sums all branches brought to its size."""

    def __init__(self, widths: list[int], sizes: list[int], blocks: int, kernel: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*(BasicBlock(w, kernel) for _ in range(blocks))) for w in widths)
        self.fuse = nn.ModuleList()
        for i, (w_i, size_i) in enumerate(zip(widths, sizes)):
            row = nn.ModuleList()
            for j, w_j in enumerate(widths):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(Upsample(w_j, w_i, size_i))
                else:
                    steps = [conv_bn_act(w_j, w_j, 3, 2) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, conv_bn_act(w_j, w_i, 3, 2, act=None)))
            self.fuse.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for row in self.fuse:
            y = row[0](xs[0])
            for layer, x in zip(row[1:], xs[1:]):
                y = y + layer(x)
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        stem, width = config["stem"], config["width"]
        self.stem = nn.Sequential(conv_bn_act(3, stem, 3, 2), conv_bn_act(stem, stem, 3, 2))
        c = stem
        layers: list[nn.Module] = []
        for _ in range(config["stage1_blocks"]):
            layers.append(Bottleneck(c, STAGE1_WIDTH))
            c = 4 * STAGE1_WIDTH
        self.stage1 = nn.Sequential(*layers)
        widths, sizes = [width], [_down(_down(resolution))]
        self.first = conv_bn_act(c, width, 3)  # stage 1's output -> branch 1
        self.transitions = nn.ModuleList()  # the new branch of each stage
        self.stages = nn.ModuleList()
        for stage in config["stages"]:
            self.transitions.append(conv_bn_act(widths[-1], 2 * widths[-1], 3, 2))
            widths, sizes = widths + [2 * widths[-1]], sizes + [_down(sizes[-1])]
            self.stages.append(nn.Sequential(*(HighResolutionModule(widths, sizes, stage["blocks"], stage["kernel"])
                                               for _ in range(stage["modules"]))))
        self.downs = nn.ModuleList(conv_bn_act(w, w_next, 3, 2) for w, w_next in zip(widths, widths[1:]))
        self.head = conv_bn_act(widths[-1], config["head"], 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(config["head"], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = [self.first(self.stage1(self.stem(x)))]
        for transition, stage in zip(self.transitions, self.stages):
            xs = stage(xs + [transition(xs[-1])])
        y = xs[0]
        for down, x_next in zip(self.downs, xs[1:]):
            y = down(y) + x_next
        return self.classifier(torch.flatten(self.pool(self.head(y)), 1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return HRNet(config, resolution, num_classes)


SPEC = FamilySpec(name="hrnet", base=base, sample=sample, build=build, resolution=224)
