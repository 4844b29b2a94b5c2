"""MetaFormer / PoolFormer (Yu et al., CVPR'22), the layout of timm's ``poolformer_s12`` (MetaFormer v1).

Four stages on a channels-first map: a conv patch embedding before each (7x7 stride 4 padding 2, then
3x3 stride 2 padding 1), then blocks ``x + ls1 * (pool(n1(x)) - n1(x))``, ``x + ls2 * MLP(n2(x))``, where
``pool`` is the token mixer, average pooling kxk stride 1 without the padded zeros (ONNX AveragePool,
``count_include_pad=0``, then Sub), ``n`` GroupNorm with one group (ONNX at opset 17: Reshape ->
InstanceNormalization -> Reshape -> Mul -> Add), the MLP 1x1 conv -> GELU (Erf) -> 1x1 conv and ``ls``
a per-channel layer scale (Mul). A final GroupNorm, global average pooling (ReduceMean) and a linear head.

Ranges (per stage):
- width: {32, 48, 64}, {64, 96, 128}, {160, 192, 240, 320}, {256, 320, 384, 512};
- MLP ratio: {2, 3, 4}; pooling kernel: {3, 5};
- depth: (2, 2, 6, 2) (``"nnlqp"`` space); ``"extended"``: {1, 2, 3} except the third stage {2, 4, 6, 8}.

Base network: PoolFormer-S12 at 3/4 width (widths 48, 96, 240, 384, depths 2, 2, 6, 2, MLP ratio 4,
pool 3): 6,807,736 parameters, 1.029 GMACs at 224 by ``meta_macs`` (the full-width S12 config gives
timm's 11,915,176 parameters and 1.818 GMACs). ``SPEC.mac_window`` accepts 0.2x-2x of the base.
Over seeds 0-149 of each space (``meta_params``, at each draw's resolution): parameters 1.35 M - 11.76 M
(median 5.0 M nnlqp, 4.6 M extended), MACs 0.209 - 1.696 G (median 0.78 G nnlqp, 0.55 G extended).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import choice, stack_stages
from search_spaces.cnn_families.spec import FamilySpec

__all__ = ["PoolFormer", "SPEC", "base", "build", "sample"]

WIDTHS = ((32, 48, 64), (64, 96, 128), (160, 192, 240, 320), (256, 320, 384, 512))
MLP_RATIOS = (2, 3, 4)
POOL_SIZES = (3, 5)
DEPTHS = (2, 2, 6, 2)
EXTENDED_DEPTHS = ((1, 2, 3), (1, 2, 3), (2, 4, 6, 8), (1, 2, 3))
BASE_WIDTHS = (48, 96, 240, 384)


def base() -> dict:
    return {"stages": [{"width": w, "depth": d, "mlp_ratio": 4, "pool": 3} for w, d in zip(BASE_WIDTHS, DEPTHS)]}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for i in range(len(DEPTHS)):
        stages.append({"width": choice(rng, WIDTHS[i]),
                       "depth": choice(rng, EXTENDED_DEPTHS[i]) if extended else DEPTHS[i],
                       "mlp_ratio": choice(rng, MLP_RATIOS), "pool": choice(rng, POOL_SIZES)})
    return {"stages": stages}


class Pooling(nn.Module):
    """PoolFormer's token mixer: pool(x) - x (the block's residual adds x back)."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, 1, pool_size // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x


class PoolFormerBlock(nn.Module):
    def __init__(self, dim: int, mlp_hidden: int, pool_size: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.norm1, self.token_mixer = nn.GroupNorm(1, dim), Pooling(pool_size)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_hidden, 1), nn.GELU(), nn.Conv2d(mlp_hidden, dim, 1))
        self.ls1 = nn.Parameter(init_values * torch.ones(dim, 1, 1))
        self.ls2 = nn.Parameter(init_values * torch.ones(dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1 * self.token_mixer(self.norm1(x))
        return x + self.ls2 * self.mlp(self.norm2(x))


def _stage_layers(i: int, c_in: int, stage: dict) -> list[nn.Module]:
    """Stage ``i``: its patch embedding (7x7 stride 4 for the first, else 3x3 stride 2), then its blocks."""
    width = stage["width"]
    embed = nn.Conv2d(c_in, width, 7, 4, 2) if i == 0 else nn.Conv2d(c_in, width, 3, 2, 1)
    return [embed, *(PoolFormerBlock(width, width * stage["mlp_ratio"], stage["pool"]) for _ in range(stage["depth"]))]


class PoolFormer(nn.Module):
    def __init__(self, config: dict, resolution: int, num_classes: int) -> None:
        super().__init__()
        self.features, c_in = stack_stages(config["stages"], _stage_layers)
        self.norm = nn.GroupNorm(1, c_in)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x)).mean(dim=(-2, -1)))


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return PoolFormer(config, resolution, num_classes)


SPEC = FamilySpec(name="poolformer", base=base, sample=sample, build=build, resolution=224, min_resolution=32,
                  mac_window=(0.2, 2.0))
