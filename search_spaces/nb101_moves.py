"""Moves between NAS-Bench-101 cells: neighbours, one-step mutation, the official mutation, relabellings.

All of them work on Cells (``nas_predictor.nb101_cell``) and return canonical (pruned) cells, except
:func:`mutate_official`, which returns the unpruned 7-vertex spec as the official routine does.

What "one mutation away" means for a pruned cell. The official routines mutate the unpruned 7-vertex
spec (``original_matrix``), whose dangling vertices are hidden state that a pruned cell has lost. A
pruned cell with n < 7 vertices stands for every 7-vertex spec that prunes to it; the simplest is the
cell padded with 7 - n isolated vertices. One edge flip on that padded form never brings a padding
vertex into the cell (it needs an in-edge *and* an out-edge to be on an input-to-output path), so the
flips and op changes of the padded form give exactly the flips and op changes of the pruned cell. A
search restricted to them could remove vertices (an edge removal prunes what it disconnects) but never
add one. So one mutation here also includes *inserting a vertex*: a padding vertex, placed anywhere in
the topological order, gets one op and the two edges (one in, one out) that connect it, the smallest
change that grows a cell.
"""

from __future__ import annotations

import itertools

import numpy as np

from nas_predictor.errors import ArchError
from nas_predictor.nb101_cell import MAX_VERTICES, MIDDLE_OPS, Cell, canonical_cell, format_arch, is_valid

# Upper-triangular edge slots of the 7-vertex form, row by row (0->1, 0->2, ..., 5->6).
EDGE_SLOTS = tuple((i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))
OP_SPOTS = MAX_VERTICES - 2
# The official mutate_spec flips each of the 21 slots with probability rate/7 (3 * rate flips expected)
# and resamples each of the 5 ops with probability rate/5 (1 * rate expected): 3/4 of its changes are
# edge flips, whatever the rate.
EDGE_MOVE_PROB = 3 / 4


def flip_edge(cell: Cell, i: int, j: int) -> Cell:
    matrix = [list(row) for row in cell.matrix]
    matrix[i][j] = 1 - matrix[i][j]
    return Cell(matrix, cell.ops)


def change_op(cell: Cell, vertex: int, op: str) -> Cell:
    return Cell(cell.matrix, cell.ops[:vertex] + (op,) + cell.ops[vertex + 1 :])


def insert_vertex(cell: Cell, gap: int, src: int, dst: int, op: str) -> Cell:
    """``cell`` with a new vertex ``op`` placed after vertex ``gap``, fed by ``src`` (<= gap) and feeding
    ``dst`` (> gap); indices are those of ``cell``."""
    n = cell.num_vertices
    new = gap + 1
    old_of_new = [v for v in range(n) if v <= gap] + [None] + [v for v in range(n) if v > gap]
    matrix = [[0 if a is None or b is None else cell.matrix[a][b] for b in old_of_new] for a in old_of_new]
    matrix[src][new] = 1
    matrix[new][dst + 1] = 1
    return Cell(matrix, cell.ops[:new] + (op,) + cell.ops[new:])


def neighbours(cell: Cell) -> list[Cell]:
    """Every valid cell one edge flip, op change or vertex insertion away (canonical, deduplicated,
    in a fixed order), ``cell``'s own canonical form excluded."""
    own = canonical_cell(cell)
    n = own.num_vertices
    candidates = [flip_edge(own, i, j) for i in range(n) for j in range(i + 1, n)]
    candidates += [change_op(own, v, op) for v in range(1, n - 1) for op in MIDDLE_OPS if op != own.ops[v]]
    if n < MAX_VERTICES:
        candidates += [
            insert_vertex(own, gap, src, dst, op)
            for gap in range(n - 1)
            for src in range(gap + 1)
            for dst in range(gap + 1, n)
            for op in MIDDLE_OPS
        ]
    found: dict[str, Cell] = {}
    own_arch = format_arch(own)
    for candidate in candidates:
        if is_valid(candidate):
            pruned = canonical_cell(candidate)
            found.setdefault(format_arch(pruned), pruned)
    found.pop(own_arch, None)
    return list(found.values())


def pad_randomly(cell: Cell, rng: np.random.Generator) -> tuple[Cell, set[int]]:
    """The cell padded to 7 vertices with isolated vertices at random middle positions and random ops,
    and the indices of those padding vertices (a cell of 7 or more vertices is returned as it is)."""
    n = cell.num_vertices
    if n >= MAX_VERTICES:
        return cell, set()
    padding = {int(p) + 1 for p in rng.choice(OP_SPOTS, size=MAX_VERTICES - n, replace=False)}
    live = iter(range(n))
    old_of_new = [None if v in padding else next(live) for v in range(MAX_VERTICES)]
    matrix = [[0 if a is None or b is None else cell.matrix[a][b] for b in old_of_new] for a in old_of_new]
    ops = tuple(MIDDLE_OPS[int(rng.integers(len(MIDDLE_OPS)))] if v is None else cell.ops[v] for v in old_of_new)
    return Cell(matrix, ops), padding


def mutate_one_step(cell: Cell, rng: np.random.Generator) -> Cell:
    """One change drawn like the official mutate_spec's changes, resampled until valid and different.

    On the randomly padded 7-vertex form: with probability 3/4 an edge slot (uniform over the 21), else
    an op spot (uniform over the 5). A slot between two live vertices flips; a slot from or to a padding
    vertex inserts it (the other edge it needs goes to or comes from a uniformly drawn live vertex on its
    other side); an op spot on a live vertex takes one of the two other ops. Moves that change nothing
    (a slot between two padding vertices, the op of a padding vertex) are drawn again. The result is
    always one of :func:`neighbours`.
    """
    own = canonical_cell(cell)
    own_arch = format_arch(own)
    padded, padding = pad_randomly(own, rng)
    live = [v for v in range(MAX_VERTICES) if v not in padding]
    while True:
        if rng.random() < EDGE_MOVE_PROB:
            i, j = EDGE_SLOTS[int(rng.integers(len(EDGE_SLOTS)))]
            if i in padding and j in padding:
                continue
            child = flip_edge(padded, i, j)
            if j in padding:  # the new vertex j also needs an out-edge to a later live vertex
                later = [v for v in live if v > j]
                child = flip_edge(child, j, later[int(rng.integers(len(later)))])
            elif i in padding:  # and vertex i an in-edge from an earlier live vertex
                earlier = [v for v in live if v < i]
                child = flip_edge(child, earlier[int(rng.integers(len(earlier)))], i)
        else:
            v = int(rng.integers(1, MAX_VERTICES - 1))
            if v in padding:
                continue
            others = [op for op in MIDDLE_OPS if op != padded.ops[v]]
            child = change_op(padded, v, others[int(rng.integers(len(others)))])
        if is_valid(child):
            pruned = canonical_cell(child)
            if format_arch(pruned) != own_arch:
                return pruned


def mutate_official(cell: Cell, rng: np.random.Generator, mutation_rate: float = 1.0) -> Cell:
    """The official ``mutate_spec`` of the NAS-Bench-101 regularized-evolution example (NASBench.ipynb).

    Every edge slot flips with probability ``mutation_rate / 7`` and every middle op is replaced by one of
    the two others with probability ``mutation_rate / 5``, on the unpruned spec, resampled until the result
    is valid. Like the official routine it may return an equivalent (even identical) cell, and it returns
    the unpruned spec, so that dangling vertices carry over to the next mutation as ``original_matrix``
    does. A spec with fewer than 7 vertices (a pruned cell) is padded first (:func:`pad_randomly`).
    """
    canonical_cell(cell)  # the official routine starts from a valid spec
    padded, _ = pad_randomly(cell, rng)
    n = padded.num_vertices
    while True:
        matrix = padded.array()
        for i in range(n - 1):
            for j in range(i + 1, n):
                if rng.random() < mutation_rate / MAX_VERTICES:
                    matrix[i, j] = 1 - matrix[i, j]
        ops = list(padded.ops)
        for v in range(1, n - 1):
            if rng.random() < mutation_rate / OP_SPOTS:
                others = [op for op in MIDDLE_OPS if op != ops[v]]
                ops[v] = others[int(rng.integers(len(others)))]
        child = Cell(matrix, tuple(ops))
        if is_valid(child):
            return child


def relabellings(cell: Cell) -> list[Cell]:
    """The pruned cell under every order of its middle vertices that keeps all edges pointing forwards
    (at most 5! = 120 orders): isomorphic cells with the same hash, ``cell`` first, deduplicated."""
    own = canonical_cell(cell)
    n = own.num_vertices
    found = {format_arch(own): own}
    for middle in itertools.permutations(range(1, n - 1)):
        order = (0, *middle, n - 1)
        position = {old: new for new, old in enumerate(order)}
        if any(position[i] >= position[j] for i, j in own.edges):
            continue
        matrix = [[own.matrix[a][b] for b in order] for a in order]
        relabelled = Cell(matrix, tuple(own.ops[v] for v in order))
        found.setdefault(format_arch(relabelled), relabelled)
    return list(found.values())


def cell_from_choices(values: dict) -> Cell:
    """The 7-vertex spec of the categorical view: edge bits ``e{i}_{j}`` and middle ops ``op{v}``."""
    try:
        matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
        for i, j in EDGE_SLOTS:
            matrix[i, j] = int(values[f"e{i}_{j}"])
        ops = ("input", *(values[f"op{v}"] for v in range(1, MAX_VERTICES - 1)), "output")
    except KeyError as err:
        raise ArchError(f"missing NAS-Bench-101 choice {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise ArchError(f"NAS-Bench-101 edge choices must be 0 or 1 ({err})") from None
    return Cell(matrix, ops)
