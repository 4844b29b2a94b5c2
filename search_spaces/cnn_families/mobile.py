"""MobileNetV2, MnasNet 1.0, MobileNetV3 (Small for NNLQP; Large too) and EfficientNet-B0, torchvision layouts.

All four are stacks of inverted-residual stages (``blocks.InvertedResidual``). A variant draws, per
stage, the output width (base width x a multiplier, ``int(base * m)``) and, per block, the depthwise
kernel and the expansion; the stride-1 blocks of a stage keep the stage's width, which is what
nn-Meter's generators do (they sample a width per block but force a stride-1 block whose base width
equals the previous one's to keep the current width, so the residual add stays valid).

Ranges (nn-Meter's ``configs/*.yaml`` and ``tf_network/*.py`` where a generator exists):

- MobileNetV2 (nn-Meter ``mobilenetv2``): widths of the stem (32), the 7 stages and the 1x1 head (1280)
  x 0.2..1.8 (step 0.1); kernel {1, 3, 5, 7}; expansion ratio {1, ..., 8} for every block (the first
  one too); hidden = round(C_in x ratio), no 1x1 expand conv at ratio 1 (torchvision).
- MnasNet (nn-Meter ``mnasnet``): stage widths x 0.2..1.8; kernel {3, 5, 7}; expansion {3, 4, 6}; the
  stem (32 -> depthwise -> 16) and the 1280 head fixed. torchvision's mnasnet1_0 is MnasNet-B1 (no SE),
  nn-Meter's generator an A1-like layout with SE: we keep torchvision's.
- MobileNetV3 (nn-Meter ``mobilenetv3``; NNLQP's family is ``spring_mobilenet_v3_small``, so the Small
  table is the base): stage widths x 0.2..1.8; kernel {1, 3, 5, 7}; expanded channels = base expanded
  x 0.8..1.8 (step 0.1, nn-Meter's ``es``); the 1x1 head conv (576) x 0.2..1.8; the 1024-wide hidden FC
  and the 16-channel stem fixed (nn-Meter fixes them). SE bottleneck = make_divisible(expanded // 4, 8),
  HardSwish / HardSigmoid as torchvision (ONNX HardSwish / HardSigmoid at opset >= 14).
- EfficientNet-B0 (NNLQP's ``spring_efficientnet_b0``; nn-Meter has no EfficientNet generator, so its
  MnasNet ranges are used): widths of the stem (32), the 7 stages and the head (1280) x 0.2..1.8; kernel
  {3, 5, 7}; expansion {3, 4, 6} (the first stage keeps MBConv1); expanded = make_divisible(C_in x e, 8)
  and SE bottleneck max(1, C_in // 4) with SiLU / Sigmoid (torchvision).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.cnn_families.blocks import (
    WIDTH_MULTIPLIERS,
    InvertedResidual,
    choice,
    conv_bn_act,
    make_divisible,
    scaled,
)

EXPANDED_MULTIPLIERS = tuple(round(0.8 + 0.1 * i, 1) for i in range(11))  # 0.8 .. 1.8 (nn-Meter mobilenetv3.yaml)


def _depth(rng: np.random.Generator, base: int) -> int:
    return choice(rng, [d for d in (base - 1, base, base + 1) if d >= 1])


class _Net(nn.Module):
    """stem -> blocks -> head -> global pool -> flatten -> classifier."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


# --------------------------------------------------------------------------------------------------
# MobileNetV2

MBV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))  # (expansion t, width c, blocks n, first stride s), torchvision
MBV2_STEM, MBV2_HEAD = 32, 1280
MBV2_KERNELS = (1, 3, 5, 7)
MBV2_EXPANSIONS = tuple(range(1, 9))


def mobilenetv2_base() -> dict:
    return {"stem": MBV2_STEM, "head": MBV2_HEAD,
            "stages": [{"width": c, "blocks": [{"kernel": 3, "expand": t} for _ in range(n)]} for t, c, n, _ in MBV2_STAGES]}


def mobilenetv2_sample(rng: np.random.Generator, extended: bool) -> dict:
    stem = scaled(MBV2_STEM, choice(rng, WIDTH_MULTIPLIERS))
    stages = []
    for _, c, n, _ in MBV2_STAGES:
        depth = _depth(rng, n) if extended else n
        stages.append({"width": scaled(c, choice(rng, WIDTH_MULTIPLIERS)),
                       "blocks": [{"kernel": choice(rng, MBV2_KERNELS), "expand": choice(rng, MBV2_EXPANSIONS)}
                                  for _ in range(depth)]})
    head = scaled(MBV2_HEAD, choice(rng, WIDTH_MULTIPLIERS))
    return {"stem": stem, "head": head, "stages": stages}


def mobilenetv2_build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    c_in = config["stem"]
    blocks: list[nn.Module] = []
    for (_, _, _, s), stage in zip(MBV2_STAGES, config["stages"]):
        for j, block in enumerate(stage["blocks"]):
            expanded = int(round(c_in * block["expand"]))
            blocks.append(InvertedResidual(c_in, stage["width"], block["kernel"], s if j == 0 else 1, expanded, "relu6"))
            c_in = stage["width"]
    return _Net(conv_bn_act(3, config["stem"], 3, 2, act="relu6"), blocks,
                conv_bn_act(c_in, config["head"], 1, act="relu6"),
                nn.Sequential(nn.Dropout(0.2), nn.Linear(config["head"], num_classes)))


# --------------------------------------------------------------------------------------------------
# MnasNet 1.0 (torchvision's MnasNet-B1)

MNAS_STAGES = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2), (192, 5, 2, 6, 4),
               (320, 3, 1, 6, 1))  # (width, kernel, first stride, expansion, blocks)
MNAS_HEAD = 1280
MNAS_KERNELS = (3, 5, 7)
MNAS_EXPANSIONS = (3, 4, 6)


def mnasnet_base() -> dict:
    return {"stages": [{"width": w, "blocks": [{"kernel": k, "expand": e} for _ in range(n)]} for w, k, _, e, n in MNAS_STAGES]}


def mnasnet_sample(rng: np.random.Generator, extended: bool) -> dict:
    stages = []
    for w, _, _, _, n in MNAS_STAGES:
        depth = _depth(rng, n) if extended else n
        stages.append({"width": scaled(w, choice(rng, WIDTH_MULTIPLIERS)),
                       "blocks": [{"kernel": choice(rng, MNAS_KERNELS), "expand": choice(rng, MNAS_EXPANSIONS)}
                                  for _ in range(depth)]})
    return {"stages": stages}


def mnasnet_build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    stem = nn.Sequential(conv_bn_act(3, 32, 3, 2), conv_bn_act(32, 32, 3, groups=32), conv_bn_act(32, 16, 1, act=None))
    c_in = 16
    blocks: list[nn.Module] = []
    for (_, _, s, _, _), stage in zip(MNAS_STAGES, config["stages"]):
        for j, block in enumerate(stage["blocks"]):
            blocks.append(InvertedResidual(c_in, stage["width"], block["kernel"], s if j == 0 else 1,
                                           c_in * block["expand"], "relu", always_expand=True))
            c_in = stage["width"]
    return _Net(stem, blocks, conv_bn_act(c_in, MNAS_HEAD, 1),
                nn.Sequential(nn.Dropout(0.2), nn.Linear(MNAS_HEAD, num_classes)))


# --------------------------------------------------------------------------------------------------
# MobileNetV3

# stage: (width, se, activation, first stride, [(kernel, expanded) per block]), torchvision's tables
MBV3_TABLES = {
    "small": {
        "stages": ((16, True, "relu", 2, ((3, 16),)),
                   (24, False, "relu", 2, ((3, 72), (3, 88))),
                   (40, True, "hswish", 2, ((5, 96), (5, 240), (5, 240))),
                   (48, True, "hswish", 1, ((5, 120), (5, 144))),
                   (96, True, "hswish", 2, ((5, 288), (5, 576), (5, 576)))),
        "head": 576, "hidden": 1024,
    },
    "large": {
        "stages": ((16, False, "relu", 1, ((3, 16),)),
                   (24, False, "relu", 2, ((3, 64), (3, 72))),
                   (40, True, "relu", 2, ((5, 72), (5, 120), (5, 120))),
                   (80, False, "hswish", 2, ((3, 240), (3, 200), (3, 184), (3, 184))),
                   (112, True, "hswish", 1, ((3, 480), (3, 672))),
                   (160, True, "hswish", 2, ((5, 672), (5, 960), (5, 960)))),
        "head": 960, "hidden": 1280,
    },
}
MBV3_STEM = 16
MBV3_KERNELS = (1, 3, 5, 7)


def mobilenetv3_base(version: str = "small") -> dict:
    table = MBV3_TABLES[version]
    return {"version": version, "head": table["head"],
            "stages": [{"width": w, "blocks": [{"kernel": k, "expanded": e} for k, e in blocks]}
                       for w, _, _, _, blocks in table["stages"]]}


def mobilenetv3_sample(rng: np.random.Generator, extended: bool, version: str = "small") -> dict:
    table = MBV3_TABLES[version]
    stages = []
    for w, _, _, _, blocks in table["stages"]:
        bases = list(blocks)
        if extended:
            depth = _depth(rng, len(bases))
            bases = bases[:depth] + [bases[-1]] * (depth - len(bases))
        stages.append({"width": scaled(w, choice(rng, WIDTH_MULTIPLIERS)),
                       "blocks": [{"kernel": choice(rng, MBV3_KERNELS), "expanded": scaled(e, choice(rng, EXPANDED_MULTIPLIERS))}
                                  for _, e in bases]})
    head = scaled(table["head"], choice(rng, WIDTH_MULTIPLIERS))
    return {"version": version, "head": head, "stages": stages}


def mobilenetv3_build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    table = MBV3_TABLES[config["version"]]
    c_in = MBV3_STEM
    blocks: list[nn.Module] = []
    for (_, se, act, s, _), stage in zip(table["stages"], config["stages"]):
        for j, block in enumerate(stage["blocks"]):
            expanded = block["expanded"]
            squeeze = make_divisible(expanded // 4, 8) if se else None
            blocks.append(InvertedResidual(c_in, stage["width"], block["kernel"], s if j == 0 else 1, expanded, act,
                                           se_squeeze=squeeze, se_act="relu", se_gate="hsigmoid"))
            c_in = stage["width"]
    hidden = table["hidden"]
    return _Net(conv_bn_act(3, MBV3_STEM, 3, 2, act="hswish"), blocks, conv_bn_act(c_in, config["head"], 1, act="hswish"),
                nn.Sequential(nn.Linear(config["head"], hidden), nn.Hardswish(), nn.Dropout(0.2),
                              nn.Linear(hidden, num_classes)))


# --------------------------------------------------------------------------------------------------
# EfficientNet-B0

EFF_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # (expansion, kernel, first stride, width, blocks)
EFF_STEM, EFF_HEAD = 32, 1280
EFF_KERNELS = (3, 5, 7)
EFF_EXPANSIONS = (3, 4, 6)


def efficientnet_base() -> dict:
    return {"stem": EFF_STEM, "head": EFF_HEAD,
            "stages": [{"width": c, "blocks": [{"kernel": k, "expand": e} for _ in range(n)]} for e, k, _, c, n in EFF_STAGES]}


def efficientnet_sample(rng: np.random.Generator, extended: bool) -> dict:
    stem = scaled(EFF_STEM, choice(rng, WIDTH_MULTIPLIERS))
    stages = []
    for i, (e, _, _, c, n) in enumerate(EFF_STAGES):
        depth = _depth(rng, n) if extended else n
        expansions = (e,) if i == 0 else EFF_EXPANSIONS
        stages.append({"width": scaled(c, choice(rng, WIDTH_MULTIPLIERS)),
                       "blocks": [{"kernel": choice(rng, EFF_KERNELS), "expand": choice(rng, expansions)}
                                  for _ in range(depth)]})
    head = scaled(EFF_HEAD, choice(rng, WIDTH_MULTIPLIERS))
    return {"stem": stem, "head": head, "stages": stages}


def efficientnet_build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    c_in = config["stem"]
    blocks: list[nn.Module] = []
    for (_, _, s, _, _), stage in zip(EFF_STAGES, config["stages"]):
        for j, block in enumerate(stage["blocks"]):
            expanded = make_divisible(c_in * block["expand"], 8)
            blocks.append(InvertedResidual(c_in, stage["width"], block["kernel"], s if j == 0 else 1, expanded, "silu",
                                           se_squeeze=max(1, c_in // 4), se_act="silu", se_gate="sigmoid"))
            c_in = stage["width"]
    return _Net(conv_bn_act(3, config["stem"], 3, 2, act="silu"), blocks, conv_bn_act(c_in, config["head"], 1, act="silu"),
                nn.Sequential(nn.Dropout(0.2), nn.Linear(config["head"], num_classes)))
