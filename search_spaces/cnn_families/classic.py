"""AlexNet, VGG-16 and SqueezeNet 1.0: plain conv stacks (conv with bias -> ReLU, no BN), torchvision layouts.

Variants follow nn-Meter's generators (``nn_meter/dataset/generator/networks/tf_network/{alexnet,vgg,
squeezenet}.py``, configs ``{alexnet,vgg,squeezenet}.yaml``): every conv's output channels are the base
width times a multiplier drawn from 0.2, 0.3, ..., 1.8 (floored, ``int(base * m)``), every conv's kernel
is drawn from {1, 3, 5, 7}; AlexNet and VGG also scale their two hidden FC layers (base 4096) by such a
multiplier; a SqueezeNet fire scales its squeeze and both expand widths by one multiplier and draws the
kernel of its second expand branch (torchvision's 3x3). Padding keeps the spatial size (``k // 2``),
except AlexNet's stride-4 first conv, which keeps torchvision's padding 2 at its base kernel 11.

The classifiers are sized from the real feature map (no ``AdaptiveAvgPool2d`` with output > 1, so the
legacy ONNX exporter handles every resolution): at 224 AlexNet's map is 6x6 and VGG's 7x7, exactly
torchvision's, so the base networks keep torchvision's parameter counts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import WIDTH_MULTIPLIERS, choice, scaled

KERNELS = (1, 3, 5, 7)  # nn-Meter's kernelsize list for these three families


def _pool_out(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # PyTorch drops a window starting in the padding
        out -= 1
    return out


def _depth(rng: np.random.Generator, base: int) -> int:
    return choice(rng, [d for d in (base - 1, base, base + 1) if d >= 1])


# --------------------------------------------------------------------------------------------------
# AlexNet

ALEXNET_CONVS = ((64, 11), (192, 5), (384, 3), (256, 3), (256, 3))  # (width, kernel), torchvision
ALEXNET_FC = (4096, 4096)


def alexnet_base() -> dict:
    return {"convs": [{"width": w, "kernel": k} for w, k in ALEXNET_CONVS], "fc": list(ALEXNET_FC)}


def alexnet_sample(rng: np.random.Generator, extended: bool) -> dict:
    """Widths and kernels of the 5 convs, the two FC widths; extended: 2-4 convs after the second pool."""
    bases = list(ALEXNET_CONVS)
    if extended:
        tail = _depth(rng, 3)  # the 3x3 group (conv3-5)
        bases = bases[:2] + [bases[2]] + [bases[3]] * (tail - 1)
    convs = [{"width": scaled(w, choice(rng, WIDTH_MULTIPLIERS)), "kernel": choice(rng, KERNELS)} for w, _ in bases]
    fc = [scaled(f, choice(rng, WIDTH_MULTIPLIERS)) for f in ALEXNET_FC]
    return {"convs": convs, "fc": fc}


class AlexNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = 3, resolution
        convs = config["convs"]
        for i, conv in enumerate(convs):
            k, stride = conv["kernel"], 4 if i == 0 else 1
            pad = 2 if (i == 0 and k == 11) else k // 2
            layers += [nn.Conv2d(c_in, conv["width"], k, stride, pad), nn.ReLU(inplace=False)]
            size = (size + 2 * pad - k) // stride + 1
            c_in = conv["width"]
            if i in (0, 1, len(convs) - 1):
                layers.append(nn.MaxPool2d(3, 2))
                size = _pool_out(size, 3, 2)
        if size < 1:
            raise ValueError(f"AlexNet input {resolution} too small for this variant (feature map {size})")
        self.features = nn.Sequential(*layers)
        f1, f2 = config["fc"]
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c_in * size * size, f1), nn.ReLU(inplace=False),
            nn.Dropout(0.5), nn.Linear(f1, f2), nn.ReLU(inplace=False), nn.Linear(f2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------------------------------
# VGG-16

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (width, convs) before each 2x2 max pool
VGG_FC = (4096, 4096)


def vgg16_base() -> dict:
    return {"stages": [[{"width": w, "kernel": 3} for _ in range(n)] for w, n in VGG16_STAGES], "fc": list(VGG_FC)}


def vgg16_sample(rng: np.random.Generator, extended: bool) -> dict:
    """Per conv: width and kernel (nn-Meter samples each of the 13 convs); FC widths; extended: convs per stage +-1."""
    stages = []
    for width, n in VGG16_STAGES:
        depth = _depth(rng, n) if extended else n
        stages.append([{"width": scaled(width, choice(rng, WIDTH_MULTIPLIERS)), "kernel": choice(rng, KERNELS)}
                       for _ in range(depth)])
    fc = [scaled(f, choice(rng, WIDTH_MULTIPLIERS)) for f in VGG_FC]
    return {"stages": stages, "fc": fc}


class VGG(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = 3, resolution
        for stage in config["stages"]:
            for conv in stage:
                layers += [nn.Conv2d(c_in, conv["width"], conv["kernel"], 1, conv["kernel"] // 2), nn.ReLU(inplace=False)]
                c_in = conv["width"]
            layers.append(nn.MaxPool2d(2, 2))
            size //= 2
        if size < 1:
            raise ValueError(f"VGG input {resolution} too small (five 2x2 pools need at least 32)")
        self.features = nn.Sequential(*layers)
        f1, f2 = config["fc"]
        self.classifier = nn.Sequential(
            nn.Linear(c_in * size * size, f1), nn.ReLU(inplace=False), nn.Dropout(0.5),
            nn.Linear(f1, f2), nn.ReLU(inplace=False), nn.Dropout(0.5), nn.Linear(f2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------------------------------
# SqueezeNet 1.0 (nn-Meter's generator: 96-channel 7x7 stem and 3 / 4 / 1 fires between the pools,
# which is the 1.0 layout; 1.1 has a 64-channel 3x3 stem and 2 / 2 / 4 fires)

SQUEEZENET_STEM = (96, 7)
SQUEEZENET_FIRES = (((16, 64), (16, 64), (32, 128)), ((32, 128), (48, 192), (48, 192), (64, 256)), ((64, 256),))


def squeezenet_base() -> dict:
    return {"stem": {"width": SQUEEZENET_STEM[0], "kernel": SQUEEZENET_STEM[1]},
            "stages": [[{"squeeze": s, "expand": e, "kernel": 3} for s, e in group] for group in SQUEEZENET_FIRES]}


def squeezenet_sample(rng: np.random.Generator, extended: bool) -> dict:
    """Per fire one width multiplier (squeeze and expand) and the expand kernel; stem fixed (as nn-Meter)."""
    stages = []
    for group in SQUEEZENET_FIRES:
        bases = list(group)
        if extended:
            depth = _depth(rng, len(group))
            bases = bases[:depth] + [bases[-1]] * (depth - len(bases))
        fires = []
        for s, e in bases:
            m = choice(rng, WIDTH_MULTIPLIERS)
            fires.append({"squeeze": scaled(s, m), "expand": scaled(e, m), "kernel": choice(rng, KERNELS)})
        stages.append(fires)
    return {"stem": {"width": SQUEEZENET_STEM[0], "kernel": SQUEEZENET_STEM[1]}, "stages": stages}


class Fire(nn.Module):
    def __init__(self, c_in: int, squeeze: int, expand: int, kernel: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU(inplace=False))
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=False))
        self.expand_kxk = nn.Sequential(nn.Conv2d(squeeze, expand, kernel, padding=kernel // 2), nn.ReLU(inplace=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand_kxk(x)], 1)


class SqueezeNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        stem = config["stem"]
        layers: list[nn.Module] = [nn.Conv2d(3, stem["width"], stem["kernel"], 2), nn.ReLU(inplace=False)]
        c_in = stem["width"]
        size = (resolution - stem["kernel"]) // 2 + 1
        for group in config["stages"]:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            size = _pool_out(size, 3, 2, ceil_mode=True)
            for fire in group:
                layers.append(Fire(c_in, fire["squeeze"], fire["expand"], fire["kernel"]))
                c_in = 2 * fire["expand"]
        if size < 1:
            raise ValueError(f"SqueezeNet input {resolution} too small")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(c_in, num_classes, 1), nn.ReLU(inplace=False),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)
