"""MobileViT-like hybrids (Mehta & Rastegari, ICLR'22), the layout of Apple's ml-cvnets MobileViT (v1) / timm's ``mobilevit_xs``.

A 3x3 stride-2 stem and five stages of MobileNetV2 inverted-residual blocks (``blocks.InvertedResidual``,
SiLU; the first block of stages 2-5 has stride 2); stages 3-5 end with a MobileViT block: local
representation (3x3 conv -> BN -> SiLU, then a 1x1 conv to the transformer dim d), unfold into 2x2 patches
(Reshape / Transpose: (B, d, H, W) -> (4B, HW/4, d)), L pre-norm transformer layers (``vit.TransformerBlock``:
LayerNormalization, MatMul / Softmax attention, GELU MLP) and a LayerNorm, fold back, a 1x1 conv to C
(BN, SiLU), concatenation with the block's input and a 3x3 fusion conv (BN, SiLU). A map the patch does
not divide is resized to the next multiple with bilinear ``F.interpolate`` before unfolding and back after
folding (ONNX Resize), as ml-cvnets does: at 224 the last stage's 7x7 map (and, e.g., 11x11 at 176).
A 1x1 conv to 4x the last width (BN, SiLU), global pooling and a linear classifier close the network.

Ranges (per stage 1..5 unless said):
- width: {16, 24, 32}, {24, 32, 48, 64}, {48, 64, 80, 96}, {64, 80, 96, 128}, {80, 96, 128, 160};
- MV2 expansion {2, 3, 4} and depthwise kernel {3, 5} per stage;
- MV2 blocks: 1, 3, 1, 1, 1 (``"nnlqp"`` space); ``"extended"``: stage 2 {1, 2, 3, 4}, others fixed;
- stages 3-5, transformer: dim {64, 96, 144}, {80, 120, 192}, {96, 144, 240}; heads of {2, 3, 4, 6, 8}
  that divide the dim with a head dim >= 16; MLP ratio {2, 3, 4}; depth 2, 4, 3 (``"nnlqp"``) or
  {1, 2, 3}, {2, 3, 4, 5}, {1, 2, 3, 4} (``"extended"``).
Patch 2x2 and the stem's 16 channels are fixed (as in every MobileViT).

Base network: MobileViT-XS (widths 32, 48, 64, 80, 96; dims 96, 120, 144; depths 2, 4, 3; 4 heads, MLP
ratio 2, expansion 4, kernel 3): 2,317,848 parameters (timm's ``mobilevit_xs``: 2.3 M), 0.705 GMACs at 224
by ``meta_macs``.
``SPEC.mac_window`` accepts 0.2x-2x of the base.
Over seeds 0-149 of each space (``meta_params``, at each draw's resolution): parameters 1.26 M - 6.93 M
(median 3.4 M nnlqp, 3.0 M extended), MACs 0.240 - 1.406 G (median 0.80 G nnlqp, 0.57 G extended).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.cnn_families.blocks import InvertedResidual, choice, conv_bn_act
from search_spaces.cnn_families.spec import FamilySpec
from search_spaces.cnn_families.vit import TransformerBlock, heads_for

__all__ = ["MobileViT", "SPEC", "base", "build", "sample"]

STEM = 16
PATCH = 2
WIDTHS = ((16, 24, 32), (24, 32, 48, 64), (48, 64, 80, 96), (64, 80, 96, 128), (80, 96, 128, 160))
EXPANSIONS = (2, 3, 4)
KERNELS = (3, 5)
MV2_BLOCKS = (1, 3, 1, 1, 1)
EXTENDED_MV2_BLOCKS = ((1,), (1, 2, 3, 4), (1,), (1,), (1,))
VIT_DIMS = ((64, 96, 144), (80, 120, 192), (96, 144, 240))  # stages 3, 4, 5
VIT_DEPTHS = (2, 4, 3)
EXTENDED_VIT_DEPTHS = ((1, 2, 3), (2, 3, 4, 5), (1, 2, 3, 4))
MLP_RATIOS = (2, 3, 4)
FIRST_VIT_STAGE = 2  # index of stage 3
HEAD_FACTOR = 4  # the last 1x1 conv has 4x the last stage's width (ml-cvnets)


def base() -> dict:
    stages = []
    for i, (width, blocks) in enumerate(zip((32, 48, 64, 80, 96), MV2_BLOCKS)):
        stage: dict = {"width": width, "expand": 4, "kernel": 3, "blocks": blocks}
        if i >= FIRST_VIT_STAGE:
            j = i - FIRST_VIT_STAGE
            stage["vit"] = {"dim": (96, 120, 144)[j], "depth": VIT_DEPTHS[j], "heads": 4, "mlp_ratio": 2}
        stages.append(stage)
    return {"stages": stages}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for i in range(len(WIDTHS)):
        stage: dict = {"width": choice(rng, WIDTHS[i]), "expand": choice(rng, EXPANSIONS), "kernel": choice(rng, KERNELS),
                       "blocks": choice(rng, EXTENDED_MV2_BLOCKS[i]) if extended else MV2_BLOCKS[i]}
        if i >= FIRST_VIT_STAGE:
            j = i - FIRST_VIT_STAGE
            dim = choice(rng, VIT_DIMS[j])
            stage["vit"] = {"dim": dim, "depth": choice(rng, EXTENDED_VIT_DEPTHS[j]) if extended else VIT_DEPTHS[j],
                            "heads": choice(rng, heads_for(dim)), "mlp_ratio": choice(rng, MLP_RATIOS)}
        stages.append(stage)
    return {"stages": stages}


class MobileViTBlock(nn.Module):
    """Local 3x3 + 1x1, unfold 2x2 patches, transformer, fold, 1x1, concat with the input, 3x3 fusion.

    ``size`` is the map's side at build time (fixed by the resolution), so every reshape has constant sizes
    and the Resize is there exactly when the patch does not divide the map."""

    def __init__(self, channels: int, dim: int, depth: int, heads: int, mlp_hidden: int, size: int) -> None:
        super().__init__()
        self.size, self.dim = size, dim
        self.unfolded = -(-size // PATCH) * PATCH  # ml-cvnets: the next multiple of the patch
        self.grid = self.unfolded // PATCH
        tokens = self.grid * self.grid
        self.local = nn.Sequential(conv_bn_act(channels, channels, 3, act="silu"),
                                   nn.Conv2d(channels, dim, 1, bias=False))
        self.transformer = nn.Sequential(*(TransformerBlock(dim, heads, mlp_hidden, tokens) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.project = conv_bn_act(dim, channels, 1, act="silu")
        self.fusion = conv_bn_act(2 * channels, channels, 3, act="silu")

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d, S, S) -> (B * P, N, d), P = patch^2 pixels per patch, N = patches (ml-cvnets' unfolding)."""
        p, n, d = PATCH, self.grid, self.dim
        x = x.reshape(-1, p, n, p).transpose(1, 2)  # (B d n, n, p, p)
        x = x.reshape(-1, d, n * n, p * p).transpose(1, 3)  # (B, P, N, d)
        return x.reshape(-1, n * n, d)

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        p, n, d = PATCH, self.grid, self.dim
        x = x.reshape(-1, p * p, n * n, d).transpose(1, 3)  # (B, d, N, P)
        x = x.reshape(-1, n, p, p).transpose(1, 2)  # (B d n, p, n, p)
        return x.reshape(-1, d, n * p, n * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        resize = self.unfolded != self.size
        if resize:
            y = F.interpolate(y, size=(self.unfolded, self.unfolded), mode="bilinear", align_corners=False)
        y = self._fold(self.norm(self.transformer(self._unfold(y))))
        if resize:
            y = F.interpolate(y, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.fusion(torch.cat((x, self.project(y)), dim=1))


class MobileViT(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        size = -(-resolution // 2)  # 3x3 stride-2 convs (padding 1) give ceil(size / 2)
        layers: list[nn.Module] = [conv_bn_act(3, STEM, 3, 2, act="silu")]
        c_in = STEM
        for i, stage in enumerate(config["stages"]):
            for j in range(stage["blocks"]):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(InvertedResidual(c_in, stage["width"], stage["kernel"], stride,
                                               c_in * stage["expand"], "silu"))
                size = -(-size // stride)
                c_in = stage["width"]
            vit = stage.get("vit")
            if vit is not None:
                layers.append(MobileViTBlock(c_in, vit["dim"], vit["depth"], vit["heads"], vit["dim"] * vit["mlp_ratio"],
                                             size))
        head = HEAD_FACTOR * c_in
        layers.append(conv_bn_act(c_in, head, 1, act="silu"))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(head, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return MobileViT(config, resolution, num_classes)


SPEC = FamilySpec(name="mobilevit", base=base, sample=sample, build=build, resolution=224, min_resolution=32,
                  mac_window=(0.2, 2.0))
