"""NAS-Bench-101 cells: validation, pruning, the official graph hash and the arch-string format.

Pure logic (numpy only), shared by ``search_spaces.nasbench101`` (the search space) and
``nas_predictor.data.nb101`` (the benchmark tables); it lives in the inner package because imports
point inwards (strategies -> search_spaces -> nas_predictor).

A cell is an upper-triangular 0/1 adjacency matrix (edge i -> j for i < j) plus one op per vertex:
``input`` first, ``output`` last, the vertices between from ``MIDDLE_OPS``.

Arch string (the space's stable id): ``"<rows>|<ops>"``, rows = the adjacency rows as '0'/'1' strings
joined by '.', ops = the op names of all vertices (input and output included) joined by ','::

    0110000.0001000.0000100.0000010.0000001.0000001.0000000|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,output

Validity follows the official API (google-research/nasbench, ``nasbench/lib/model_spec.py`` and
``NASBench._check_spec`` in ``nasbench/api.py``): the spec is first pruned (vertices not on an
input-to-output path are dropped); a spec without such a path is invalid; the *pruned* spec must then
have at most 7 vertices and at most 9 edges. So an unpruned spec with more than 9 edges is valid when
its pruned form has 9 or fewer (the official ``_check_spec`` counts ``model_spec.matrix``, the pruned
matrix). The canonical form of a cell is its pruned spec; its key is the official md5 graph hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nas_predictor.errors import ArchError

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
# The official config['available_ops'] order: the hash labels a middle vertex by its op's index here.
MIDDLE_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9
# Labels of the input and output vertices in the official hash (ModelSpec.hash_spec).
_INPUT_LABEL, _OUTPUT_LABEL = -1, -2


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-101 spec (not necessarily pruned): ``matrix[i][j] == 1`` is the edge i -> j.

    Construction checks the structure (square 0/1 matrix, strictly upper triangular, op count, input
    first, output last, known middle ops); :func:`canonical_cell` checks membership of the space.
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        try:
            rows = tuple(tuple(int(v) for v in row) for row in self.matrix)
        except (TypeError, ValueError):
            raise ArchError(f"NAS-Bench-101 adjacency must be a matrix of 0/1 ints, got {self.matrix!r}") from None
        n = len(ops)
        if n < 2:
            raise ArchError(f"a NAS-Bench-101 cell needs at least the input and output vertices, got ops {list(ops)}")
        if len(rows) != n or any(len(row) != n for row in rows):
            lengths = sorted({len(row) for row in rows})
            raise ArchError(f"adjacency must be {n}x{n} for {n} ops, got {len(rows)} rows of length {lengths}")
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v not in (0, 1):
                    raise ArchError(f"adjacency entry ({i}, {j}) is {v}; entries must be 0 or 1")
                if v and j <= i:
                    raise ArchError(
                        f"adjacency is not upper triangular: entry ({i}, {j}) is 1 (edges must go from a lower to a "
                        "higher vertex index)"
                    )
        if ops[0] != INPUT:
            raise ArchError(f"the first op must be {INPUT!r}, got {ops[0]!r}")
        if ops[-1] != OUTPUT:
            raise ArchError(f"the last op must be {OUTPUT!r}, got {ops[-1]!r}")
        for v, op in enumerate(ops[1:-1], start=1):
            if op not in MIDDLE_OPS:
                raise ArchError(f"unknown op {op!r} at vertex {v}; allowed: {', '.join(MIDDLE_OPS)}")
        object.__setattr__(self, "matrix", rows)
        object.__setattr__(self, "ops", ops)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(i, j) for i, row in enumerate(self.matrix) for j, v in enumerate(row) if v]

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int8)


def parse_arch(arch: str) -> Cell:
    """Arch string -> Cell (structure checked, not pruned)."""
    if not isinstance(arch, str):
        raise ArchError(f"NAS-Bench-101 arch must be a string, got {type(arch).__name__}")
    parts = arch.strip().split("|")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ArchError(
            f"malformed NAS-Bench-101 arch string {arch!r}: expected '<rows>|<ops>', rows of 0/1 joined by '.', "
            "ops joined by ','"
        )
    rows, ops = parts[0].split("."), parts[1].split(",")
    for i, row in enumerate(rows):
        if not row or set(row) - {"0", "1"}:
            raise ArchError(f"row {i} of {arch!r} is {row!r}; rows must be strings of '0' and '1'")
    return Cell(tuple(tuple(int(c) for c in row) for row in rows), tuple(ops))


def format_arch(cell: Cell) -> str:
    """Cell -> arch string (exactly this spec; prune first for the canonical string)."""
    rows = ".".join("".join(str(v) for v in row) for row in cell.matrix)
    return rows + "|" + ",".join(cell.ops)


def spec_to_arch(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> str:
    """Official (matrix, ops) form -> arch string of that same spec (not pruned)."""
    return format_arch(Cell(matrix, tuple(ops)))


def arch_to_spec(arch: str) -> tuple[np.ndarray, list[str]]:
    """Arch string -> (int8 adjacency matrix, ops list), the form ``ModelSpec(matrix, ops)`` takes."""
    cell = parse_arch(arch)
    return cell.array(), list(cell.ops)


def prune(cell: Cell) -> Cell:
    """The official ``ModelSpec._prune``: keep the vertices reachable from the input that also reach the
    output, in their order; ArchError when the output cannot be reached from the input."""
    n = cell.num_vertices
    succ = [[j for j in range(n) if cell.matrix[i][j]] for i in range(n)]
    pred = [[i for i in range(n) if cell.matrix[i][j]] for j in range(n)]
    from_input, from_output = _reachable(0, succ), _reachable(n - 1, pred)
    keep = sorted(from_input & from_output)
    if not keep:  # a vertex in both sets means a path input -> vertex -> output exists
        raise ArchError(f"invalid NAS-Bench-101 cell: no path from input to output in {format_arch(cell)!r}")
    if len(keep) == n:
        return cell
    return Cell(tuple(tuple(cell.matrix[i][j] for j in keep) for i in keep), tuple(cell.ops[i] for i in keep))


def _reachable(start: int, neighbours: list[list[int]]) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        for nxt in neighbours[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def canonical_cell(cell: Cell) -> Cell:
    """The pruned cell, checked against the space limits (ArchError says which is broken)."""
    pruned = prune(cell)
    if pruned.num_vertices > MAX_VERTICES:
        raise ArchError(f"too many vertices: {pruned.num_vertices} after pruning (NAS-Bench-101 allows {MAX_VERTICES})")
    if pruned.num_edges > MAX_EDGES:
        raise ArchError(f"too many edges: {pruned.num_edges} after pruning (NAS-Bench-101 allows {MAX_EDGES})")
    return pruned


def canonical_arch(arch: str) -> str:
    """The arch string of the pruned cell (ArchError when malformed or outside the space)."""
    return format_arch(canonical_cell(parse_arch(arch)))


def is_valid(cell: Cell) -> bool:
    try:
        canonical_cell(cell)
    except ArchError:
        return False
    return True


def cell_hash(cell: Cell) -> str:
    """The official hash of the cell: ``ModelSpec.hash_spec(config['available_ops'])`` of its pruned spec,
    the key of ``NASBench.fixed_statistics``. Isomorphic cells share it."""
    pruned = canonical_cell(cell)
    labels = [_INPUT_LABEL] + [MIDDLE_OPS.index(op) for op in pruned.ops[1:-1]] + [_OUTPUT_LABEL]
    return hash_module(pruned.matrix, labels)


def hash_module(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """The official ``graph_util.hash_module``: a Weisfeiler-Lehman style md5 over in/out degrees and labels.

    Every vertex starts from md5(str((out_degree, in_degree, label))); then, as many rounds as there are
    vertices, each becomes md5 of its sorted in-neighbour hashes, '|', its sorted out-neighbour hashes,
    '|', its own hash; the fingerprint is md5 of str() of the sorted final hashes. The exact strings fed
    to md5 matter: they must match Python's str() of the official tuples and lists.
    """
    n = len(labels)
    rows = [list(map(int, row)) for row in matrix]
    out_degree = [sum(row) for row in rows]
    in_degree = [sum(rows[i][j] for i in range(n)) for j in range(n)]
    hashes = [_md5(str((out_degree[v], in_degree[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[w] for w in range(n) if rows[w][v]))
                + "|"
                + "".join(sorted(hashes[w] for w in range(n) if rows[v][w]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
