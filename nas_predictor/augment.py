"""Isomorphic relabelling of cells for the architecture-consistency (AC) loss (spec section 3)."""

from __future__ import annotations

import itertools

from nas_predictor.graph import ArchGraph


def isomorphic_relabel(graph: ArchGraph) -> ArchGraph:
    """The first relabelling of the middle nodes (lexicographic order) that changes the cell.

    Node 0 (input) and node N-1 (output) stay fixed; a permutation is accepted when it changes the
    adjacency or the op sequence and keeps every edge pointing forwards (a valid topological order).
    Returns the graph itself when no such permutation exists. For NAS-Bench-201 this swaps nodes 5 and 6.
    """
    n = graph.num_nodes
    if n <= 3:
        return graph
    original_edges = set(graph.edges)
    for middle in itertools.permutations(range(1, n - 1)):
        order = (0, *middle, n - 1)
        new_of_old = {old: new for new, old in enumerate(order)}
        edges = {(new_of_old[s], new_of_old[d]) for s, d in graph.edges}
        if any(s >= d for s, d in edges):
            continue
        ops = tuple(graph.ops[o] for o in order)
        if edges != original_edges or ops != graph.ops:
            return graph.permuted(order)
    return graph
