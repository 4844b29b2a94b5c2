"""NAS-Bench-201: 4-node cells with 6 edges, 5 ops per edge, 15,625 architectures.

Three views of one architecture:
  arch string  ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
  op tuple     the six edge ops in arch-string order (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3)
  index        the official NAS-Bench-201 index 0..15624 (a scrambled order fixed by the benchmark file)

The official order cannot be derived from the ops, so it ships as ``nasbench201_index.bin``: 15,625
little-endian uint16 op codes (code = base-5 number of the op tuple, first edge most significant),
written by :func:`write_index_file` from the benchmark table and checked against it in the tests.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from search_spaces.base import SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
NUM_ARCHS = len(OPS) ** NUM_EDGES
# Source cell node of each edge, in arch-string order; grouped by target node 1, 2, 3.
EDGE_SOURCES = (0, 0, 1, 0, 1, 2)
# Op-on-node graph (spec 1.3): node 0 input, nodes 1..6 the edge ops, node 7 output.
GRAPH_EDGES = ((0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7))
INDEX_FILE = "nasbench201_index.bin"

_ARCH_RE = re.compile(
    r"^\|([a-z0-9_]+)~0\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|([a-z0-9_]+)~2\|$"
)

OpTuple = tuple[str, str, str, str, str, str]


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


def ops_to_code(ops: Sequence[str]) -> int:
    code = 0
    for op in ops:
        code = code * len(OPS) + OPS.index(op)
    return code


def code_to_ops(code: int) -> OpTuple:
    ops = []
    for _ in range(NUM_EDGES):
        code, digit = divmod(code, len(OPS))
        ops.append(OPS[digit])
    return tuple(reversed(ops))  # type: ignore[return-value]


def write_index_file(arch_strs: Sequence[str], path: str | Path) -> None:
    """Write the official index order (from a benchmark table) in the shipped binary format."""
    codes = np.array([ops_to_code(parse_arch(a)) for a in arch_strs], dtype="<u2")
    if len(codes) != NUM_ARCHS or len(np.unique(codes)) != NUM_ARCHS:
        raise ArchError(f"expected {NUM_ARCHS} distinct architectures, got {len(np.unique(codes))}")
    Path(path).write_bytes(codes.tobytes())


class NASBench201(SearchSpace):
    name = "nasbench201"
    op_vocab = ("input", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none", "output")

    @cached_property
    def _index_to_code(self) -> np.ndarray:
        data = resources.files("search_spaces").joinpath(INDEX_FILE).read_bytes()
        codes = np.frombuffer(data, dtype="<u2").astype(np.int64)
        if codes.shape != (NUM_ARCHS,):
            raise ArchError(f"{INDEX_FILE} is damaged: {codes.size} entries instead of {NUM_ARCHS}")
        return codes

    @cached_property
    def _code_to_index(self) -> np.ndarray:
        inverse = np.empty(NUM_ARCHS, dtype=np.int64)
        inverse[self._index_to_code] = np.arange(NUM_ARCHS)
        return inverse

    def __len__(self) -> int:
        return NUM_ARCHS

    def __iter__(self) -> Iterator[str]:
        return (self.arch_from_index(i) for i in range(NUM_ARCHS))

    def index_of(self, arch: str) -> int:
        return int(self._code_to_index[ops_to_code(parse_arch(arch))])

    def arch_from_index(self, index: int) -> str:
        if not 0 <= int(index) < NUM_ARCHS:
            raise ArchError(f"NAS-Bench-201 index {index} out of range 0..{NUM_ARCHS - 1}")
        return format_arch(code_to_ops(int(self._index_to_code[int(index)])))

    def to_graph(self, arch: str) -> ArchGraph:
        return self.ops_to_graph(parse_arch(arch))

    @staticmethod
    def ops_to_graph(ops: Sequence[str]) -> ArchGraph:
        return ArchGraph(ops=("input", *ops, "output"), edges=GRAPH_EDGES)

    def sample(self, rng: np.random.Generator) -> str:
        return format_arch([OPS[i] for i in rng.integers(0, len(OPS), NUM_EDGES)])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        ops = list(parse_arch(arch))
        edge = int(rng.integers(NUM_EDGES))
        ops[edge] = [op for op in OPS if op != ops[edge]][int(rng.integers(len(OPS) - 1))]
        return format_arch(ops)

    def neighbours(self, arch: str) -> list[str]:
        ops = parse_arch(arch)
        return [
            format_arch(ops[:edge] + (op,) + ops[edge + 1 :])
            for edge in range(NUM_EDGES)
            for op in OPS
            if op != ops[edge]
        ]
