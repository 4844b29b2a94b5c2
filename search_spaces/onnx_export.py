"""The params / MACs counters the latency-family spec uses; ``export_onnx`` (and its constants) now live in
``nas_predictor.onnx.export`` and are re-exported here for existing imports."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nas_predictor.onnx.export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "count_macs", "count_params", "export_onnx"]


def count_params(module: nn.Module) -> int:
    """Trainable parameters: conv / linear weights and biases and BN affine, not BN running stats."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(module: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """Multiply-accumulates of one forward pass on ``input_shape`` (the whole batch).

    The NB201 / AutoDL convention the spec's sanity numbers use: conv and linear MACs, plus one per
    output element of every layer with a bias; pooling, BN and activations count nothing. Hooks
    count every execution, so a module run twice counts twice. ``device="meta"`` counts a module built
    on the meta device (shapes only, no compute).
    """
    total = 0

    def conv_hook(layer: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
        total += output.numel() * (per_output + (layer.bias is not None))

    def linear_hook(layer: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * (layer.in_features + (layer.bias is not None))

    handles = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(tuple(int(d) for d in input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return int(total)
