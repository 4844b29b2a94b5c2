"""Hand-written PyTorch networks of the kinds people deploy (torchvision cannot be installed beside the
CPU torch wheel here), used to exercise the ONNX encoder: CNNs with residuals, depthwise convs,
HardSwish / SE, transposed convs and resizing, and transformers with LayerNorm / GELU / attention."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = 4 * mid
        self.body = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride), conv_bn(mid, cout, 1, act=None))
        self.down = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None)

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=None))
        self.down = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None)

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


def resnet(depths: tuple[int, ...], bottleneck: bool, classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, n in enumerate(depths):
        width = 64 * 2 ** i
        for j in range(n):
            stride = 2 if j == 0 and i > 0 else 1
            if bottleneck:
                layers.append(Bottleneck(cin, width, stride))
                cin = 4 * width
            else:
                layers.append(BasicBlock(cin, width, stride))
                cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, k: int = 3, act=nn.ReLU6, se: bool = False) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [conv_bn(cin, mid, 1, act=act)]
        layers.append(conv_bn(mid, mid, k, stride, groups=mid, act=act))
        if se:
            layers.append(SqueezeExcite(mid))
        layers.append(conv_bn(mid, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, max(8, c // 4), 1), nn.ReLU(),
                                nn.Conv2d(max(8, c // 4), c, 1), nn.Hardsigmoid())

    def forward(self, x):
        return x * self.fc(x)


def mobilenet_v2(classes: int = 1000) -> nn.Module:
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)]
    cin = 32
    for t, c, n, s in cfg:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    return nn.Sequential(*layers, conv_bn(cin, 1280, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(1280, classes))


def mobilenet_v3_like(classes: int = 1000) -> nn.Module:
    """MobileNetV3-style: HardSwish and squeeze-excite with HardSigmoid (fused ops at opset >= 14)."""
    cfg = [(16, 1, 3, 1, False), (24, 4, 3, 2, False), (40, 3, 5, 2, True), (80, 6, 3, 2, False), (112, 6, 3, 1, True),
           (160, 6, 5, 2, True)]
    layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)]
    cin = 16
    for c, e, k, s, se in cfg:
        layers.append(InvertedResidual(cin, c, s, e, k, nn.Hardswish, se))
        cin = c
    return nn.Sequential(*layers, conv_bn(cin, 960, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, classes))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, t, c))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.n1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.n2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class ViT(nn.Module):
    def __init__(self, dim: int = 192, depth: int = 12, heads: int = 3, patch: int = 16, classes: int = 1000) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (224 // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class TinyUNet(nn.Module):
    """Encoder-decoder with ConvTranspose, bilinear Resize, Concat skips and InstanceNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.e1, self.e2 = conv_bn(3, 16), conv_bn(16, 32, 3, 2)
        self.e3 = nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.InstanceNorm2d(64), nn.LeakyReLU(0.1))
        self.up1 = nn.ConvTranspose2d(64, 32, 2, 2)
        self.d1 = conv_bn(64, 32)
        self.d2 = conv_bn(48, 16)
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        y = self.d1(torch.cat([self.up1(c), b], 1))
        y = nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.out(self.d2(torch.cat([y, a], 1))))


class ShuffleUnit(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(conv_bn(c // 2, c // 2, 1), conv_bn(c // 2, c // 2, 3, groups=c // 2, act=None),
                                    conv_bn(c // 2, c // 2, 1))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        y = torch.cat([a, self.branch(b)], 1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def shufflenet_like(classes: int = 1000) -> nn.Module:
    return nn.Sequential(conv_bn(3, 48, 3, 2), nn.MaxPool2d(3, 2, 1), *[ShuffleUnit(48) for _ in range(6)],
                         conv_bn(48, 96, 3, 2), *[ShuffleUnit(96) for _ in range(6)], nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(96, classes))


def vgg11(classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, classes))


# name -> (constructor, input shape)
ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "resnet18": (lambda: resnet((2, 2, 2, 2), False), (1, 3, 224, 224)),
    "resnet50": (lambda: resnet((3, 4, 6, 3), True), (1, 3, 224, 224)),
    "mobilenet_v2": (mobilenet_v2, (1, 3, 224, 224)),
    "mobilenet_v3_like": (mobilenet_v3_like, (1, 3, 224, 224)),
    "vit_tiny": (ViT, (1, 3, 224, 224)),
    "tiny_unet": (TinyUNet, (1, 3, 64, 64)),
    "shufflenet_like": (shufflenet_like, (1, 3, 224, 224)),
    "vgg11": (vgg11, (1, 3, 224, 224)),
}
