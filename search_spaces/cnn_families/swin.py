"""Swin Transformer-like networks (Liu et al., ICCV'21), torchvision's ``swin_transformer`` (v1) layout.

Patch embedding (Conv 4x4 stride 4 -> channels-last -> LayerNorm), then stages of Swin blocks with a
patch merging (2x2 neighbours concatenated -> LayerNorm -> Linear 4C -> 2C, no bias; odd sizes padded)
between stages, a final LayerNorm, global average pooling and a linear head. A block is
``x + W-MSA(LN(x))``, ``x + MLP(LN(x))``; every second block of a stage shifts its windows by half a
window: ``torch.roll`` (ONNX Slice + Concat) before and after the attention, plus an attention mask
that keeps windows from mixing across the wrap-around. Each window's attention adds a learned
relative position bias (a per-block table gathered by the relative-position index: ONNX Gather). Feature
maps that the window does not divide are padded (ONNX Pad) and cropped after; a window at least as
large as the padded map is not shifted (both as torchvision's ``shifted_window_attention``). All sizes
are fixed at build time, so the reshapes take constant shapes and the masks and the index are computed
once, as persistent buffers: the weight-free export makes them graph inputs (no megabyte constants),
and the one index of the network is read by Gathers only, which the latency measurer fills with zeros.

Ranges:
- embedding dim (stage i has dim x 2^i): {32, 48, 64, 80};
- window: {4, 6, 7, 8} (one for the network);
- per stage: heads from those of {1, 2, 3, 4, 6, 8, 12, 16, 24} that divide the stage's width with a
  head dim of 16..64; MLP ratio {2, 3, 4};
- depths: (2, 2, 6, 2) (``"nnlqp"`` space); ``"extended"``: 3 or 4 stages, stage depths {1, 2, 3}
  except the third {2, 4, 6, 8}.

Base network: Swin-T at half width (embed 48, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7, MLP
ratio 4): 7,299,634 parameters, 1.098 GMACs at 224 by ``meta_macs`` (Conv / Linear only; the full-width
Swin-T config gives torchvision's 28,288,354 parameters and 4.36 GMACs by the same count).
``SPEC.mac_window`` accepts 0.2x-2x of the base (Swin runs slower per MAC than a CNN on one CPU thread).
Over seeds 0-149 of each space (``meta_params``, at each draw's resolution): parameters 1.06 M - 21.99 M
(median 6.7 M nnlqp, 3.9 M extended), MACs 0.236 - 2.188 G (median 1.07 G nnlqp, 0.81 G extended).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.cnn_families.blocks import choice
from search_spaces.cnn_families.spec import FamilySpec
from search_spaces.cnn_families.vit import Attention, Mlp

__all__ = ["SPEC", "SwinTransformer", "base", "build", "sample"]

PATCH = 4
EMBED_DIMS = (32, 48, 64, 80)
WINDOWS = (4, 6, 7, 8)
HEADS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
HEAD_DIM_RANGE = (16, 64)
MLP_RATIOS = (2, 3, 4)
DEPTHS = (2, 2, 6, 2)
EXTENDED_STAGES = (3, 4)
EXTENDED_DEPTHS = ((1, 2, 3), (1, 2, 3), (2, 4, 6, 8), (1, 2, 3))


def heads_for(width: int) -> tuple[int, ...]:
    return tuple(h for h in HEADS if width % h == 0 and HEAD_DIM_RANGE[0] <= width // h <= HEAD_DIM_RANGE[1])


def base() -> dict:
    return {"embed": 48, "window": 7,
            "stages": [{"depth": d, "heads": h, "mlp_ratio": 4} for d, h in zip(DEPTHS, (3, 6, 12, 24))]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    embed = choice(rng, EMBED_DIMS)
    window = choice(rng, WINDOWS)
    n_stages = choice(rng, EXTENDED_STAGES) if extended else len(DEPTHS)
    stages = []
    for i in range(n_stages):
        depth = choice(rng, EXTENDED_DEPTHS[i]) if extended else DEPTHS[i]
        stages.append({"depth": depth, "heads": choice(rng, heads_for(embed * 2 ** i)),
                       "mlp_ratio": choice(rng, MLP_RATIOS)})
    return {"embed": embed, "window": window, "stages": stages}


def _relative_position_index(window: int) -> torch.Tensor:
    """(window^2 * window^2,) indices into the ((2 window - 1)^2, heads) bias table (torchvision's)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return (relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]).flatten()


def _shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """(windows, window^2, window^2): 0 within a region of the rolled map, -100 across regions (torchvision's)."""
    regions = torch.zeros(height, width)
    slices = ((0, -window), (-window, -shift), (-shift, None))
    count = 0
    for h in slices:
        for w in slices:
            regions[h[0]:h[1], w[0]:w[1]] = count
            count += 1
    regions = regions.view(height // window, window, width // window, window).permute(0, 2, 1, 3)
    regions = regions.reshape(-1, window * window)
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(Attention):
    """Attention within each window, plus the relative position bias and (shifted windows) the mask."""

    def __init__(self, dim: int, heads: int, window: int, mask: torch.Tensor | None) -> None:
        super().__init__(dim, heads, window * window)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.windows = 0 if mask is None else mask.shape[0]
        if mask is not None:
            # a persistent buffer: the weight-free export makes it a graph input (the measurer fills it),
            # not a constant of up to 600 KB in every file
            self.register_buffer("mask", mask.unsqueeze(1))  # (windows, 1, N, N)

    def scores(self, q: torch.Tensor, k: torch.Tensor, bias_index: torch.Tensor) -> torch.Tensor:
        n = self.tokens
        bias = self.bias_table[bias_index].reshape(n, n, self.heads).permute(2, 0, 1)
        attn = super().scores(q, k) + bias.unsqueeze(0)
        if self.windows:
            attn = (attn.reshape(-1, self.windows, self.heads, n, n) + self.mask).reshape(-1, self.heads, n, n)
        return attn


class SwinBlock(nn.Module):
    """x + (shifted) window attention(LN(x)), then x + MLP(LN(x)); x is (batch, height, width, dim)."""

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, mlp_hidden: int, height: int, width: int) -> None:
        super().__init__()
        self.dim, self.window, self.height, self.width = dim, window, height, width
        self.pad_h, self.pad_w = (-height) % window, (-width) % window
        padded_h, padded_w = height + self.pad_h, width + self.pad_w
        # torchvision: no shift along a side the window already covers
        shift = window // 2 if shifted else 0
        self.shift = (0 if window >= padded_h else shift, 0 if window >= padded_w else shift)
        self.grid = (padded_h // window, padded_w // window)
        mask = None
        if any(self.shift):
            mask = _shift_mask(padded_h, padded_w, window, max(self.shift))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, mask)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, mlp_hidden)

    def _attention(self, x: torch.Tensor, bias_index: torch.Tensor) -> torch.Tensor:
        w, (gh, gw), c = self.window, self.grid, self.dim
        if self.pad_h or self.pad_w:
            x = F.pad(x, (0, 0, 0, self.pad_w, 0, self.pad_h))
        if any(self.shift):
            x = torch.roll(x, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        x = x.reshape(-1, gh, w, gw, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        x = self.attn(x, bias_index)
        x = x.reshape(-1, gh, gw, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, gh * w, gw * w, c)
        if any(self.shift):
            x = torch.roll(x, shifts=self.shift, dims=(1, 2))
        if self.pad_h or self.pad_w:
            x = x[:, :self.height, :self.width, :]
        return x

    def forward(self, x: torch.Tensor, bias_index: torch.Tensor) -> torch.Tensor:
        x = x + self._attention(self.norm1(x), bias_index)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): 2x2 neighbours concatenated, LayerNorm, Linear (no bias)."""

    def __init__(self, dim: int, height: int, width: int) -> None:
        super().__init__()
        self.pad = (height % 2, width % 2)
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, (0, 0, 0, self.pad[1], 0, self.pad[0]))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        dim, window = config["embed"], config["window"]
        height = width = resolution // PATCH
        if height < 1:
            raise ValueError(f"swin: resolution {resolution} is smaller than the patch {PATCH}")
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        self.embed_norm = nn.LayerNorm(dim)
        layers: list[nn.Module] = []
        for i, stage in enumerate(config["stages"]):
            if i:
                layers.append(PatchMerging(dim, height, width))
                dim, height, width = 2 * dim, -(-height // 2), -(-width // 2)
            layers.extend(SwinBlock(dim, stage["heads"], window, j % 2 == 1, dim * stage["mlp_ratio"], height, width)
                          for j in range(stage["depth"]))
        self.features = nn.ModuleList(layers)
        # one relative-position index for every block (one window per network): a graph input read only
        # by Gathers, which the measurer fills with zeros (per-block copies would be tied by Identity
        # nodes, and an index read by anything but a Gather cannot be filled)
        self.register_buffer("bias_index", _relative_position_index(window))
        self.norm = nn.LayerNorm(dim)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        for layer in self.features:
            x = layer(x, self.bias_index) if isinstance(layer, SwinBlock) else layer(x)
        x = self.norm(x).permute(0, 3, 1, 2)
        return self.head(torch.flatten(self.pool(x), 1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return SwinTransformer(config, resolution, num_classes)


SPEC = FamilySpec(name="swin", base=base, sample=sample, build=build, resolution=224, min_resolution=32,
                  mac_window=(0.2, 2.0))
