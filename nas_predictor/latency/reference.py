"""The reference model of the CPU protocol: a fixed ResNet-18 at 64x64 (~6.7 ms on one thread here).

It is run right after every target run; its fast-state time turns each target/reference ratio into
milliseconds. Its definition, seed and export settings are frozen: any change to them must bump
:data:`REFERENCE_VERSION`, which every label records, because labels scale with its fast time."""

from __future__ import annotations

import functools
import io
import warnings

import torch
from torch import nn

REFERENCE_VERSION = "resnet18-64x64-seed0-opset17-v1"
REFERENCE_INPUT_SHAPE = (1, 3, 64, 64)
REFERENCE_INPUT_NAME = "input"
_SEED = 0
_OPSET = 17


def _conv_bn(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, 3, stride), nn.ReLU(), *_conv_bn(cout, cout, 3, 1))
        self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def build_reference() -> nn.Module:
    """ResNet-18 (torchvision's layout: 7x7 stem, max pool, 2-2-2-2 basic blocks, 1000 classes),
    weights from a fixed seed; the global torch RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        layers: list[nn.Module] = [*_conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for stage, width in enumerate((64, 128, 256, 512)):
            for block in range(2):
                layers.append(_BasicBlock(cin, width, 2 if block == 0 and stage > 0 else 1))
                cin = width
        model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))
    return model.eval()


@functools.lru_cache(maxsize=1)
def reference_onnx() -> bytes:
    """The reference exported with its weights (legacy exporter, opset 17), once per process."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation warning
        with torch.no_grad():
            torch.onnx.export(build_reference(), (torch.zeros(REFERENCE_INPUT_SHAPE),), buffer,
                              export_params=True, opset_version=_OPSET, input_names=[REFERENCE_INPUT_NAME],
                              output_names=["logits"], dynamo=False)
    return buffer.getvalue()
