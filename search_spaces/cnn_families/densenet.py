"""DenseNet-BC (Huang et al., CVPR'17, "Densely Connected Convolutional Networks"; torchvision layout).

Layout (torchvision ``DenseNet``): 7x7 stride-2 conv (BN, ReLU) -> 3x3 stride-2 max pool -> 4 dense
blocks, a transition between two blocks -> BN -> ReLU -> global average pool -> Linear. A dense layer
concatenates *all* earlier feature maps of its block (one ONNX Concat with as many inputs as the layer's
index + 1), then BN -> ReLU -> 1x1 conv (-> bn_size x growth) -> BN -> ReLU -> 3x3 conv (-> growth); a
block's output is the Concat of its input and every layer's output. A transition is BN -> ReLU -> 1x1
conv (-> floor(C x compression)) -> 2x2 stride-2 average pool.

Base network: DenseNet-BC-121's depths (6 / 12 / 24 / 16 layers) at half its growth rate (16, not 32)
and stem (32, not 64 channels), bn_size 4, compression 0.5: 0.738 GMACs at 224 (``blocks.meta_macs``),
2,274,728 parameters. DenseNet-121 itself (growth 32, stem 64; 7,978,856 parameters, torchvision's
count, and 2.83 GMACs from this module) is too slow for the timing budget of this CPU.

Ranges drawn (in this order): the growth rate from {8, 12, 16, 20, 24}; the stem width from {16, 24,
32, 48}; bn_size from {2, 3, 4}; the transition compression from {0.4, 0.5, 0.6}; in the extended space
the layers per block (4-8, 6-16, 12-28, 8-20; the nnlqp space keeps 6 / 12 / 24 / 16). The resolution
(extended space) is drawn by ``generate``; any resolution >= 32 works.

Parameters over the space (``blocks.meta_params``, seeds 0-149 of both spaces): 0.36 M - 5.18 M;
MACs 0.15 - 1.87 G (inside the package's window, 0.2x - 3x the base).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice, conv_bn_act
from search_spaces.cnn_families.spec import FamilySpec

BLOCKS = (6, 12, 24, 16)
GROWTH, STEM, BN_SIZE, COMPRESSION = 16, 32, 4, 0.5
GROWTHS = (8, 12, 16, 20, 24)
STEMS = (16, 24, 32, 48)
BN_SIZES = (2, 3, 4)
COMPRESSIONS = (0.4, 0.5, 0.6)
BLOCK_CHOICES = (tuple(range(4, 9)), tuple(range(6, 17)), tuple(range(12, 29)), tuple(range(8, 21)))


def base() -> dict:
    return {"growth": GROWTH, "stem": STEM, "bn_size": BN_SIZE, "compression": COMPRESSION, "blocks": list(BLOCKS)}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    growth = choice(rng, GROWTHS)
    stem = choice(rng, STEMS)
    bn_size = choice(rng, BN_SIZES)
    compression = choice(rng, COMPRESSIONS)
    blocks = [choice(rng, c) for c in BLOCK_CHOICES] if extended else list(BLOCKS)
    return {"growth": growth, "stem": stem, "bn_size": bn_size, "compression": compression, "blocks": blocks}


def _bn_relu_conv(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """Pre-activation order (BN -> ReLU -> conv), which ``blocks.conv_bn_act`` does not cover."""
    return [nn.BatchNorm2d(c_in), nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)]


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_bn_relu_conv(c_in, bn_size * growth, 1), *_bn_relu_conv(bn_size * growth, growth, 3))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(features, 1))


class DenseBlock(nn.Module):
    def __init__(self, c_in: int, layers: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(c_in + i * growth, growth, bn_size) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        growth, bn_size = config["growth"], config["bn_size"]
        layers: list[nn.Module] = [conv_bn_act(3, config["stem"], 7, 2), nn.MaxPool2d(3, 2, 1)]
        c = config["stem"]
        for i, depth in enumerate(config["blocks"]):
            layers.append(DenseBlock(c, depth, growth, bn_size))
            c += depth * growth
            if i < len(config["blocks"]) - 1:
                c_out = int(c * config["compression"])
                layers += [*_bn_relu_conv(c, c_out, 1), nn.AvgPool2d(2, 2)]
                c = c_out
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=False)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return DenseNet(config, resolution, num_classes)


SPEC = FamilySpec(name="densenet", base=base, sample=sample, build=build, resolution=224)
