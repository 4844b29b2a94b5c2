"""The CIFAR NAS-Bench-201 macro network as a torch module (latency-families spec section 1).

The latencies in ``help_nb201_latency`` were measured on the reference PyTorch module run eagerly,
so this builder reproduces its *executed* ops, not just its function: the ``none`` edge is a real
multiply by 0.0, every conv edge has its own (non-inplace) ReLU, and unread nodes are still
computed (spec 1.3, 1.6). Only the logits are returned; the reference also returns the pooled
features, which changes no compute.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201_arch import EDGE_SOURCES, EDGE_TARGETS, parse_arch

INPUT_SIZE = 32  # CIFAR, 3x32x32


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN, the NB201 conv edge and the reduction block's halves."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` edge: the input times 0.0, a real op in the measured model (spec 1.3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def edge_op(op: str, channels: int) -> nn.Module:
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity()
    if op == "none":
        return Zero()
    raise ValueError(f"unknown NB201 op {op!r}")  # parse_arch already rejected it


class NormalCell(nn.Module):
    """A 4-node cell; node j is the left-to-right sum of its incoming edges, in arch-string order."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edge_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            total = None
            for edge, (src, dst) in enumerate(zip(EDGE_SOURCES, EDGE_TARGETS)):
                if dst != node:
                    continue
                term = self.edges[edge](nodes[src])
                # start from the first term, not from 0 (the reference's "0 +" is dropped by the tracer anyway)
                total = term if total is None else total + term
            nodes.append(total)
        return nodes[3]


class ReductionBlock(nn.Module):
    """ResNet basic block C -> 2C, stride 2; the shortcut is avg pool + 1x1 conv, no BN, no ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, ops: tuple[str, ...], num_classes: int = 10, C: int = 16, N: int = 5) -> None:
        super().__init__()
        # stem: conv + BN, no activation (spec 1.2)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage:
                layers.append(ReductionBlock(channels, 2 * channels))
                channels *= 2
            layers.extend(NormalCell(ops, channels) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build_nb201_network(arch: str, num_classes: int = 10, C: int = 16, N: int = 5) -> nn.Module:
    """The CIFAR NB201 network of an arch string (raises ArchError for a malformed one); input 3x32x32."""
    return NB201Network(parse_arch(arch), num_classes=num_classes, C=C, N=N)
