"""ArchGraph: the one representation every input (arch string, cell spec, ONNX file) becomes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from nas_predictor.errors import GraphError


@dataclass(frozen=True)
class ArchGraph:
    """A directed acyclic graph of operations.

    ops:      one operation type per node (e.g. "nor_conv_3x3", "Conv"); node i is ops[i].
    edges:    directed (src, dst) pairs of node indices.
    attrs:    optional per-node attribute dicts (kernel, stride, ...); numeric values must be finite.
    shapes:   optional per-node output shape (tuple of ints).
    scalars:  optional global scalars (flops, params, memory access, batch size).
    """

    ops: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    attrs: tuple[Mapping[str, Any], ...] | None = None
    shapes: tuple[tuple[int, ...], ...] | None = None
    scalars: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "edges", tuple((int(s), int(d)) for s, d in self.edges))
        if self.attrs is not None:
            object.__setattr__(self, "attrs", tuple(dict(a) for a in self.attrs))
        if self.shapes is not None:
            object.__setattr__(self, "shapes", tuple(tuple(int(x) for x in s) for s in self.shapes))
        object.__setattr__(self, "scalars", dict(self.scalars))
        self.validate()

    @property
    def num_nodes(self) -> int:
        return len(self.ops)

    def validate(self) -> None:
        n = len(self.ops)
        if n == 0:
            raise GraphError("empty graph: an ArchGraph needs at least one node")
        for i, op in enumerate(self.ops):
            if not isinstance(op, str) or not op:
                raise GraphError(f"node {i}: op type must be a non-empty string, got {op!r}")
        for src, dst in self.edges:
            for end in (src, dst):
                if not 0 <= end < n:
                    raise GraphError(f"edge ({src}, {dst}) refers to missing node {end} (graph has {n} nodes)")
            if src == dst:
                raise GraphError(f"edge ({src}, {dst}) is a self loop")
        for name, per_node in (("attrs", self.attrs), ("shapes", self.shapes)):
            if per_node is not None and len(per_node) != n:
                raise GraphError(f"{name} has {len(per_node)} entries for {n} nodes")
        if self.attrs is not None:
            for i, attrs in enumerate(self.attrs):
                for key, value in attrs.items():
                    _check_finite(value, f"node {i} attribute {key!r}")
        for key, value in self.scalars.items():
            _check_finite(value, f"global scalar {key!r}")
        cycle = self._find_cycle_node()
        if cycle is not None:
            raise GraphError(f"graph has a cycle through node {cycle} ({self.ops[cycle]!r})")

    def _find_cycle_node(self) -> int | None:
        # Kahn's algorithm: nodes never reaching in-degree 0 lie on (or after) a cycle.
        n = len(self.ops)
        indeg = [0] * n
        succ: list[list[int]] = [[] for _ in range(n)]
        for s, d in self.edges:
            succ[s].append(d)
            indeg[d] += 1
        ready = [i for i in range(n) if indeg[i] == 0]
        seen = 0
        while ready:
            node = ready.pop()
            seen += 1
            for nxt in succ[node]:
                indeg[nxt] -= 1
                if indeg[nxt] == 0:
                    ready.append(nxt)
        if seen == n:
            return None
        return min(i for i in range(n) if indeg[i] > 0)

    def adjacency(self) -> list[list[int]]:
        """Directed 0/1 adjacency matrix, A[src][dst] = 1."""
        n = len(self.ops)
        adj = [[0] * n for _ in range(n)]
        for s, d in self.edges:
            adj[s][d] = 1
        return adj

    def neighbour_lists(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """({node: its inputs}, {node: its readers}), in edge order; nodes without any are absent."""
        preds: dict[int, list[int]] = {}
        succs: dict[int, list[int]] = {}
        for src, dst in self.edges:
            preds.setdefault(dst, []).append(src)
            succs.setdefault(src, []).append(dst)
        return preds, succs

    def permuted(self, order: Sequence[int]) -> "ArchGraph":
        """The same graph with new node i = old node order[i]."""
        n = len(self.ops)
        if sorted(order) != list(range(n)):
            raise GraphError(f"{list(order)} is not a permutation of {n} nodes")
        new_of_old = {old: new for new, old in enumerate(order)}
        return ArchGraph(
            ops=tuple(self.ops[o] for o in order),
            edges=tuple(sorted((new_of_old[s], new_of_old[d]) for s, d in self.edges)),
            attrs=None if self.attrs is None else tuple(self.attrs[o] for o in order),
            shapes=None if self.shapes is None else tuple(self.shapes[o] for o in order),
            scalars=self.scalars,
        )


    @classmethod
    def derived(cls, ops: Sequence[str], edges: Sequence[tuple[int, int]], attrs: Sequence[Mapping[str, Any]] | None,
                shapes: Sequence[tuple[int, ...]] | None, scalars: Mapping[str, float]) -> "ArchGraph":
        """A graph made from a validated one by a transform that keeps it valid (dropping nodes, rewiring
        edges forward), built without validating again: checking every attribute of a network costs
        several times the transform. The caller vouches for ints, finite values and acyclicity."""
        graph = object.__new__(cls)
        object.__setattr__(graph, "ops", tuple(ops))
        object.__setattr__(graph, "edges", tuple(edges))
        object.__setattr__(graph, "attrs", None if attrs is None else tuple(attrs))
        object.__setattr__(graph, "shapes", None if shapes is None else tuple(shapes))
        object.__setattr__(graph, "scalars", dict(scalars))
        return graph

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (lists and numbers), for caches; ``from_dict`` reverses it."""
        return {"ops": list(self.ops), "edges": [list(e) for e in self.edges],
                "attrs": None if self.attrs is None else [dict(a) for a in self.attrs],
                "shapes": None if self.shapes is None else [list(s) for s in self.shapes],
                "scalars": dict(self.scalars)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchGraph":
        try:
            return cls(ops=tuple(data["ops"]), edges=tuple(tuple(e) for e in data["edges"]),
                       attrs=None if data.get("attrs") is None else tuple(data["attrs"]),
                       shapes=None if data.get("shapes") is None else tuple(tuple(s) for s in data["shapes"]),
                       scalars=data.get("scalars") or {})
        except (KeyError, TypeError, ValueError) as err:
            raise GraphError(f"not a serialised ArchGraph ({type(err).__name__}: {err})") from None


def _check_finite(value: Any, where: str) -> None:
    values = value if isinstance(value, (list, tuple)) else (value,)
    for v in values:
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and not math.isfinite(v):
            raise GraphError(f"{where} is not finite ({v!r})")
