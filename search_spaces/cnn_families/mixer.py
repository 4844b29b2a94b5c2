"""MLP-Mixer (Tolstikhin et al., NeurIPS'21) and ResMLP (Touvron et al., TPAMI'22), timm's ``MlpMixer`` / ``ResMlp`` layouts.

Both embed non-overlapping patches with a conv (kernel = stride = patch; a remainder the patch does not
divide is dropped, as timm's ``strict_img_size=False``), mix the tokens and then the channels in each of
``depth`` residual blocks, normalise, average the tokens (ONNX ReduceMean) and classify (Linear).
``config["kind"]`` picks the block:

- ``"mixer"``: ``x + T(MLP_tok(T(LN(x))))``, ``x + MLP_ch(LN(x))``; MLP = Linear -> GELU -> Linear, the token
  MLP over the token axis (Transpose, MatMul), LayerNorm (ONNX LayerNormalization);
- ``"resmlp"``: ``x + ls1 * T(Linear_tok(T(aff1(x))))``, ``x + ls2 * MLP_ch(aff2(x))``, where ``aff(x) =
  alpha * x + beta`` is ResMLP's per-channel affine norm (ONNX Mul + Add, no LayerNormalization), the
  token mixing is one Linear over the tokens and ``ls`` a per-channel layer scale (Mul).

Ranges:
- kind: {"mixer", "resmlp"};
- patch: {16, 24, 32};
- hidden dim: {192, 256, 320, 384, 448, 512};
- per block: channel-MLP ratio {2, 3, 4}; token-MLP hidden {64, 128, 256, 384} (mixer only);
- depth: 8 (``"nnlqp"`` space) or {4, 6, 8, 10, 12} (``"extended"``).

Base network: Mixer-S/32 (patch 32, dim 512, depth 8, token hidden 256, channel ratio 4): 19,104,624
parameters (timm's ``mixer_s32_224``: 19.1 M), 1.005 GMACs at 224 (``meta_macs``); the ResMLP-S12 config
(patch 16, dim 384, depth 12, ratio 4) gives timm's 15,350,872 parameters. ``SPEC.mac_window`` accepts
0.2x-2x of the base.
Over seeds 0-149 of each space (``meta_params``, at each draw's resolution; 162 mixer and 138 resmlp
draws): parameters 1.57 M - 20.18 M (median 7.9 M), MACs 0.201 - 1.941 G (median 0.60 G).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice
from search_spaces.cnn_families.spec import FamilySpec
from search_spaces.cnn_families.vit import Mlp

__all__ = ["MlpMixer", "SPEC", "base", "build", "sample"]

KINDS = ("mixer", "resmlp")
PATCHES = (16, 24, 32)
DIMS = (192, 256, 320, 384, 448, 512)
MLP_RATIOS = (2, 3, 4)
TOKEN_HIDDEN = (64, 128, 256, 384)
DEPTH = 8
EXTENDED_DEPTHS = (4, 6, 8, 10, 12)


def base() -> dict:
    return {"kind": "mixer", "patch": 32, "dim": 512,
            "blocks": [{"token_hidden": 256, "mlp_ratio": 4} for _ in range(DEPTH)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    kind = choice(rng, KINDS)
    patch = choice(rng, PATCHES)
    dim = choice(rng, DIMS)
    depth = choice(rng, EXTENDED_DEPTHS) if extended else DEPTH
    blocks = []
    for _ in range(depth):
        block = {"mlp_ratio": choice(rng, MLP_RATIOS)}
        if kind == "mixer":
            block["token_hidden"] = choice(rng, TOKEN_HIDDEN)
        blocks.append(block)
    return {"kind": kind, "patch": patch, "dim": dim, "blocks": blocks}


class Affine(nn.Module):
    """ResMLP's norm: alpha * x + beta per channel."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha, self.beta = nn.Parameter(torch.ones(1, 1, dim)), nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + self.beta


class MixerBlock(nn.Module):
    def __init__(self, dim: int, tokens: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1, self.mlp_tokens = nn.LayerNorm(dim, eps=1e-6), Mlp(tokens, token_hidden)
        self.norm2, self.mlp_channels = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, channel_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class ResBlock(nn.Module):
    def __init__(self, dim: int, tokens: int, channel_hidden: int, init_values: float = 1e-4) -> None:
        super().__init__()
        self.norm1, self.linear_tokens = Affine(dim), nn.Linear(tokens, tokens)
        self.norm2, self.mlp_channels = Affine(dim), Mlp(dim, channel_hidden)
        self.ls1 = nn.Parameter(init_values * torch.ones(dim))
        self.ls2 = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1 * self.linear_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ls2 * self.mlp_channels(self.norm2(x))


class MlpMixer(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        patch, dim = config["patch"], config["dim"]
        grid = resolution // patch
        if grid < 1:
            raise ValueError(f"mixer: resolution {resolution} is smaller than the patch {patch}")
        self.dim, self.tokens = dim, grid * grid
        self.stem = nn.Conv2d(3, dim, patch, patch)
        if config["kind"] == "mixer":
            blocks = [MixerBlock(dim, self.tokens, b["token_hidden"], dim * b["mlp_ratio"]) for b in config["blocks"]]
            self.norm: nn.Module = nn.LayerNorm(dim, eps=1e-6)
        elif config["kind"] == "resmlp":
            blocks = [ResBlock(dim, self.tokens, dim * b["mlp_ratio"]) for b in config["blocks"]]
            self.norm = Affine(dim)
        else:
            raise ValueError(f"mixer: unknown kind {config['kind']!r}; choose one of {', '.join(KINDS)}")
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).reshape(-1, self.dim, self.tokens).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return MlpMixer(config, resolution, num_classes)


SPEC = FamilySpec(name="mixer", base=base, sample=sample, build=build, resolution=224, min_resolution=32,
                  mac_window=(0.2, 2.0))
