"""NAS-Bench-201: 4-node cells with 6 edges, 5 ops per edge, 15,625 architectures.

Three views of one architecture:
  arch string  ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
  op tuple     the six edge ops in arch-string order (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3)
  index        the official NAS-Bench-201 index 0..15624 (a scrambled order fixed by the benchmark file)

Many cells compute the same function: an op fed only by zeros is dead, a ``none`` edge adds nothing,
``skip_connect`` is the identity and a node sums its inputs in any order. :func:`functional_key` names
that function, which splits the 15,625 cells into 5,989 classes (the largest hold 284 cells; 4,672
are alone).
Their benchmark accuracies differ only by training noise, so predictors may average over a class.

The official order cannot be derived from the ops, so it ships as ``nasbench201_index.bin``: 15,625
little-endian uint16 op codes (code = base-5 number of the op tuple, first edge most significant),
written by :func:`write_index_file` from the benchmark table and checked against it in the tests.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from nas_predictor.spaces import SearchSpace
# The grammar lives in nb201_arch (the network builder needs it too); these names stay importable here.
from search_spaces.nb201_arch import (  # noqa: F401
    EDGE_SOURCES, EDGE_TARGETS, NUM_EDGES, OPS, OpTuple, format_arch, parse_arch,
)

if TYPE_CHECKING:
    import onnx
    import torch

# the CIFAR macro network (search_spaces/nb201_network.py): cell widths by stage, normal cells a stage
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
NUM_ARCHS = len(OPS) ** NUM_EDGES
# Op-on-node graph (spec 1.3): node 0 input, nodes 1..6 the edge ops, node 7 output.
GRAPH_EDGES = ((0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7))
INDEX_FILE = "nasbench201_index.bin"
ZERO_COST_FILE = "nasbench201_zero_cost.npz"

ZERO_KEY = "zero"
CONSTANT = "b"


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


def functional_key(ops: Sequence[str]) -> str:
    """A canonical expression of what the cell computes from its input ``x``.

    Each node is the sum of op(source) over its incoming edges, with the terms sorted (sums commute),
    ``skip_connect`` the identity, and ``none`` edges dropped. A node that only receives ``none`` edges
    is exactly zero: pooling or skipping it adds nothing, but a ReLU-conv-BN of it adds the BN shift, a
    learned per-channel constant, written ``b`` (constants add up to one constant, and any op of a
    constant is a constant). So every cell whose output only sees ``none`` edges is ``"zero"``.
    Conservative: cells it keeps apart may still be equivalent (``conv(x + x)`` vs ``conv(x)``), never
    the other way round.
    """
    values: dict[int, str | None] = {0: "x"}
    for node in (1, 2, 3):
        terms: list[str] = []
        for op, src, dst in zip(ops, EDGE_SOURCES, EDGE_TARGETS):
            if dst != node or op == "none":
                continue
            source = values[src]
            if source is None:  # an exact zero
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    terms.append(CONSTANT)
            elif source == CONSTANT or op == "skip_connect":
                terms.append(source)
            else:
                terms.append(f"{op}({source})")
        if terms.count(CONSTANT) > 1:
            terms = [t for t in terms if t != CONSTANT] + [CONSTANT]
        terms.sort()
        values[node] = None if not terms else terms[0] if len(terms) == 1 else "(" + "+".join(terms) + ")"
    return values[3] or ZERO_KEY


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

    @cached_property
    def _classes(self) -> dict[str, list[int]]:
        """Functional key -> op codes of its cells, in code order (about 0.1 s for the whole space)."""
        classes: dict[str, list[int]] = {}
        for code in range(NUM_ARCHS):
            classes.setdefault(functional_key(code_to_ops(code)), []).append(code)
        return classes

    def equivalence_key(self, arch: str) -> str:
        return functional_key(parse_arch(arch))

    def equivalent_archs(self, arch: str) -> list[str]:
        return [format_arch(code_to_ops(c)) for c in self._classes[self.equivalence_key(arch)]]

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

    def canonical(self, arch: str) -> str:
        return format_arch(parse_arch(arch))

    def build_network(self, arch: str) -> "torch.nn.Module":
        """The CIFAR-10 macro network (C=16, N=5) behind HELP's and nn-Meter's latencies."""
        from search_spaces.nb201_network import build_nb201_network  # torch only when networks are built

        return build_nb201_network(arch)

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, 32, 32)

    def network_onnx(self, arch: str) -> "onnx.ModelProto":
        """The same network written as ONNX without torch (5 ms against the exporter's 0.2-0.3 s)."""
        from search_spaces.nb201_onnx import nb201_onnx

        return nb201_onnx(arch)

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

    def choices(self) -> list[tuple[str, tuple]]:
        return [(f"edge{e}_{EDGE_SOURCES[e]}to{EDGE_TARGETS[e]}", OPS) for e in range(NUM_EDGES)]

    def from_choices(self, values: dict) -> str:
        return format_arch([values[name] for name, _ in self.choices()])

    def to_choices(self, arch: str) -> dict:
        """Each edge's op, as the very object of :data:`OPS`."""
        ops = parse_arch(arch)
        return {name: OPS[OPS.index(op)] for (name, _), op in zip(self.choices(), ops)}

    def zero_cost_table(self):
        """The proxies of all 15,625 networks (seed 0, batch 64), packaged: computing them takes about 3
        hours on two CPU cores (``nas-predictor proxies``), scoring the space with a predictor that reads
        them must not. Rows not (yet) in the table are computed on first use."""
        table = resources.files("search_spaces").joinpath(ZERO_COST_FILE)
        return table if table.is_file() else None

    def proxy_score(self, arch: str) -> float:
        """Parameters of the conv edges of every normal cell of the CIFAR network (C=16, N=5): the
        network's parameter count less a part every cell shares, so it ranks cells exactly as the
        parameter count does (which ranks them against CIFAR-10 test accuracy at Kendall tau 0.58;
        the best cell is among the 128 largest of 15,625)."""
        ops = parse_arch(arch)
        per_width = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}  # kernel area; no conv bias, BN adds 2C
        return float(sum(CELLS_PER_STAGE * (per_width[op] * c * c + 2 * c)
                         for op in ops if op in per_width for c in STAGE_CHANNELS))

    def neighbours(self, arch: str) -> list[str]:
        ops = parse_arch(arch)
        return [
            format_arch(ops[:edge] + (op,) + ops[edge + 1 :])
            for edge in range(NUM_EDGES)
            for op in OPS
            if op != ops[edge]
        ]
