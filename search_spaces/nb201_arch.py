"""The NAS-Bench-201 arch-string grammar: the ops, the cell's six edges, parsing and formatting.

Shared by the search space (search_spaces.nasbench201) and the torch network builder
(search_spaces.nb201_network), which both build on it without importing each other.
"""

from __future__ import annotations

import re
from typing import Sequence

from nas_predictor.errors import ArchError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
# Source cell node of each edge, in arch-string order; grouped by target node 1, 2, 3.
EDGE_SOURCES = (0, 0, 1, 0, 1, 2)
# Target cell node of each edge, in arch-string order.
EDGE_TARGETS = (1, 2, 2, 3, 3, 3)
OpTuple = tuple[str, str, str, str, str, str]

_ARCH_RE = re.compile(
    r"^\|([a-z0-9_]+)~0\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|([a-z0-9_]+)~2\|$"
)


def parse_arch(arch: str) -> OpTuple:
    """Arch string -> op tuple, with an error that says what is wrong."""
    if not isinstance(arch, str):
        raise ArchError(f"NAS-Bench-201 arch must be a string, got {type(arch).__name__}")
    match = _ARCH_RE.match(arch.strip())
    if match is None:
        raise ArchError(
            f"malformed NAS-Bench-201 arch string {arch!r}: expected "
            "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from " + ", ".join(OPS)
        )
    ops = match.groups()
    for pos, op in enumerate(ops):
        if op not in OPS:
            raise ArchError(f"unknown op {op!r} on edge {pos} of {arch!r}; allowed: {', '.join(OPS)}")
    return ops  # type: ignore[return-value]


def format_arch(ops: Sequence[str]) -> str:
    """Op tuple -> arch string."""
    if len(ops) != NUM_EDGES:
        raise ArchError(f"NAS-Bench-201 needs {NUM_EDGES} edge ops, got {len(ops)}: {list(ops)}")
    for op in ops:
        if op not in OPS:
            raise ArchError(f"unknown op {op!r}; allowed: {', '.join(OPS)}")
    cells = [[f"{op}~{src}" for op, src in zip(ops[a:b], EDGE_SOURCES[a:b])] for a, b in ((0, 1), (1, 3), (3, 6))]
    return "+".join("|" + "|".join(c) + "|" for c in cells)
