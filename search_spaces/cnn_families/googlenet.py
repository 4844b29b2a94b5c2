"""GoogLeNet (Inception v1), torchvision layout without the auxiliary heads.

torchvision's layout: BasicConv (conv no bias -> BN -> ReLU) stem 7x7/2 (64) -> max pool -> 1x1 (64) ->
3x3 (192) -> max pool -> inception 3a, 3b -> max pool -> 4a..4e -> 2x2 max pool -> 5a, 5b -> global pool
-> dropout -> FC; all max pools with ``ceil_mode``. An inception block concatenates a 1x1 branch, a 1x1 ->
kxk branch, a second 1x1 -> kxk branch (torchvision uses 3x3 there, not the paper's 5x5: a known quirk
that its parameter count 6,624,904 includes) and a 3x3 max pool -> 1x1 branch.

NNLQP's ``spring_googlenet`` models come from SenseTime's internal model zoo (not public); we vary this
network as nn-Meter's ``googlenet.py`` / ``googlenet.yaml`` do: each of the six widths of every
inception block (1x1, 3x3-reduce, 3x3, 5x5-reduce, 5x5, pool-proj) is its base times its own
multiplier from 0.2, 0.3, ..., 1.8. nn-Meter's config also lists kernel sizes {1, 3, 5, 7} but its code
keeps the branch kernels fixed; we draw the kernels of the two kxk branches from that list. The stem
is fixed, as in nn-Meter.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import WIDTH_MULTIPLIERS, choice, conv_bn_act, scaled

KERNELS = (1, 3, 5, 7)
WIDTH_KEYS = ("c1", "c3_reduce", "c3", "c5_reduce", "c5", "pool_proj")
# torchvision's inception widths, grouped by the max pools before them: 3a-3b, 4a-4e, 5a-5b
INCEPTIONS = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
)


def base() -> dict:
    return {"stages": [[dict(zip(WIDTH_KEYS, widths), k3=3, k5=3) for widths in group] for group in INCEPTIONS]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for group in INCEPTIONS:
        bases = list(group)
        if extended:
            depth = choice(rng, [d for d in (len(group) - 1, len(group), len(group) + 1) if d >= 1])
            bases = bases[:depth] + [bases[-1]] * (depth - len(bases))
        blocks = []
        for widths in bases:
            block = {key: scaled(w, choice(rng, WIDTH_MULTIPLIERS)) for key, w in zip(WIDTH_KEYS, widths)}
            block["k3"], block["k5"] = choice(rng, KERNELS), choice(rng, KERNELS)
            blocks.append(block)
        stages.append(blocks)
    return {"stages": stages}


class Inception(nn.Module):
    def __init__(self, c_in: int, cfg: dict) -> None:
        super().__init__()
        self.branch1 = conv_bn_act(c_in, cfg["c1"], 1)
        self.branch2 = nn.Sequential(conv_bn_act(c_in, cfg["c3_reduce"], 1),
                                     conv_bn_act(cfg["c3_reduce"], cfg["c3"], cfg["k3"]))
        self.branch3 = nn.Sequential(conv_bn_act(c_in, cfg["c5_reduce"], 1),
                                     conv_bn_act(cfg["c5_reduce"], cfg["c5"], cfg["k5"]))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv_bn_act(c_in, cfg["pool_proj"], 1))
        self.out_channels = cfg["c1"] + cfg["c3"] + cfg["c5"] + cfg["pool_proj"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
                                   conv_bn_act(64, 64, 1), conv_bn_act(64, 192, 3)]
        c_in = 192
        for i, group in enumerate(config["stages"]):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True) if i == 2 else nn.MaxPool2d(3, 2, ceil_mode=True))
            for cfg in group:
                block = Inception(c_in, cfg)
                layers.append(block)
                c_in = block.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.features(x)), 1)))
