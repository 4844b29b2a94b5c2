"""Small torch helpers shared by the core, the search spaces and the benchmarks (torch only)."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Parameters of ``module``: the trainable ones (conv / linear weights and biases, norm affines; not
    BN running statistics, which are buffers), or every parameter with ``trainable_only=False``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
