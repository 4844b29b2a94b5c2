"""ViT / DeiT-style encoders (Dosovitskiy et al., ICLR'21; Touvron et al., ICML'21), timm's ``VisionTransformer`` layout.

Conv patch embedding (kernel = stride = patch; a resolution that the patch does not divide loses its
remainder, as timm's ``strict_img_size=False``), a class token plus learned position embedding (or, as a
config choice, no class token and global average pooling of the tokens, timm's ``global_pool="avg"``),
``depth`` pre-norm blocks ``x + attn(LN(x))``, ``x + mlp(LN(x))`` (qkv with bias, attention written out as
MatMul -> Softmax -> MatMul, GELU MLP), a final LayerNorm and a linear head. In ONNX (opset 17): Conv,
LayerNormalization, MatMul, Softmax, Erf (GELU), Transpose/Reshape, Concat (class token), Gemm.

Each block draws its own heads and MLP ratio (AutoFormer's space, Chen et al., ICCV'21), so the
attention matmul shapes vary within a network; heads divide the embedding dim and keep head dims >= 16.

Ranges (both spaces):
- patch: {16, 32};
- embedding dim: {128, 160, 192, 224, 256, 320, 384};
- heads per block: those of {2, 3, 4, 6, 8} that divide the dim with a head dim >= 16;
- MLP ratio per block: {2, 3, 4};
- pooling: {"token", "avg"};
- depth: 12 (``"nnlqp"`` space) or {6, 8, 10, 12, 14} (``"extended"``).

Base network: DeiT-Tiny (patch 16, dim 192, 3 heads, MLP ratio 4, depth 12, class token; 5,717,416
parameters, timm's ``deit_tiny_patch16_224``): 1.079 GMACs at 224 by ``meta_macs`` (Conv / Linear only; 1.26
with the attention matmuls). ``SPEC.mac_window`` accepts 0.2x-2x of it, so the draws stay near DeiT-Tiny's
cost (about 28 ms on one CPU thread of this machine).
Over seeds 0-149 of each space (``meta_params``, at each draw's resolution): parameters 1.68 M - 21.99 M
(median 6.2 M nnlqp, 6.6 M extended), MACs 0.218 - 2.148 G (median 0.62 G).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice
from search_spaces.cnn_families.spec import FamilySpec

__all__ = ["Attention", "Mlp", "SPEC", "TransformerBlock", "VisionTransformer", "base", "build", "sample"]

PATCHES = (16, 32)
DIMS = (128, 160, 192, 224, 256, 320, 384)
HEADS = (2, 3, 4, 6, 8)
MLP_RATIOS = (2, 3, 4)
POOLS = ("token", "avg")
DEPTH = 12
EXTENDED_DEPTHS = (6, 8, 10, 12, 14)
MIN_HEAD_DIM = 16


def heads_for(dim: int) -> tuple[int, ...]:
    return tuple(h for h in HEADS if dim % h == 0 and dim // h >= MIN_HEAD_DIM)


def base() -> dict:
    return {"patch": 16, "dim": 192, "pool": "token", "blocks": [{"heads": 3, "mlp_ratio": 4} for _ in range(DEPTH)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    patch = choice(rng, PATCHES)
    dim = choice(rng, DIMS)
    pool = choice(rng, POOLS)
    depth = choice(rng, EXTENDED_DEPTHS) if extended else DEPTH
    heads = heads_for(dim)
    return {"patch": patch, "dim": dim, "pool": pool,
            "blocks": [{"heads": choice(rng, heads), "mlp_ratio": choice(rng, MLP_RATIOS)} for _ in range(depth)]}


class Attention(nn.Module):
    """Multi-head self-attention over (batch, tokens, dim): one qkv Linear, softmax(q k^T / sqrt(d)) v, a projection.

    Written with explicit matmuls (not ``scaled_dot_product_attention``) so the legacy exporter gives the
    plain MatMul / Softmax pattern of timm's non-fused path at every opset."""

    def __init__(self, dim: int, heads: int, tokens: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        # sizes are fixed when the network is built (its resolution is), so the exported Reshapes take
        # constant shapes instead of Shape -> Gather -> Concat chains; only the batch stays free (-1)
        self.dim, self.tokens, self.heads, self.head_dim = dim, tokens, heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def scores(self, q: torch.Tensor, k: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """Attention logits; ``extra`` is what a subclass needs to add its biases (forward passes it on)."""
        return (q * self.scale) @ k.transpose(-2, -1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).reshape(-1, self.tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = self.scores(q, k, *extra).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, self.tokens, self.dim)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (timm's Mlp)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, tokens: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads, tokens)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        patch, dim = config["patch"], config["dim"]
        grid = resolution // patch
        if grid < 1:
            raise ValueError(f"vit: resolution {resolution} is smaller than the patch {patch}")
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.token = config["pool"] == "token"
        self.dim, self.patches = dim, grid * grid
        tokens = self.patches + self.token
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if self.token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*(TransformerBlock(dim, b["heads"], dim * b["mlp_ratio"], tokens)
                                      for b in config["blocks"]))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).reshape(-1, self.dim, self.patches).transpose(1, 2)
        if self.cls_token is not None:
            # expand_as reads the batch from the tensor (Shape -> Expand); the tracer bakes expand(x.shape[0])
            # into a constant, which would pin a batch-1 export to batch 1
            x = torch.cat((self.cls_token.expand_as(x[:, :1]), x), dim=1)
        x = self.norm(self.blocks(x + self.pos_embed))
        return self.head(x[:, 0] if self.token else x.mean(dim=1))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return VisionTransformer(config, resolution, num_classes)


SPEC = FamilySpec(name="vit", base=base, sample=sample, build=build, resolution=224, min_resolution=32,
                  mac_window=(0.2, 2.0))
