"""Scalar constant operands read as part of their reader: ``x * 0``, ``x + 3`` without the constant's node.

A traced network's scalar operands (NNI's hub ``NasBench201`` writes its "none" op as ``x.mul(0.)``;
hard-swish written by hand adds 3 and divides by 6) become graph inputs of shape ``()``: a source node
per operand, whose token holds no value (the encoding records shapes, not values), so it tells the
model only that its reader has a scalar operand. In an opaque NAS-Bench-201 network these are 15 of
156 nodes, and a whole-network surrogate's refit costs time per node (nas_predictor/online.py). The
reader keeps its op type and output shape; its in-degree still differs from a two-tensor op's.

Like stacked_sums.py, a reading for *structure* (the online accuracy surrogate's tokens), not for runtime:
latency encodings keep every node (encoding.drop_scalar_inputs is off by default).
"""

from __future__ import annotations

import math

from nas_predictor.graph import ArchGraph
from nas_predictor.op_vocab import INPUT_OP


def scalar_inputs(graph: ArchGraph) -> list[int]:
    """Source Input nodes of one element (shape ``()`` or all ones) that feed another node and are not
    the network's data (the ONNX reader marks those ``batched``; it also gives an input of unknown shape
    the shape ``()``, so without that mark a node is not taken for a scalar)."""
    if graph.shapes is None or graph.attrs is None or INPUT_OP not in graph.ops:
        return []
    preds, succs = graph.neighbour_lists()
    return [i for i, op in enumerate(graph.ops)
            if op == INPUT_OP and not preds.get(i) and succs.get(i) and graph.attrs[i].get("batched") == 0
            and graph.shapes[i] is not None and math.prod(graph.shapes[i]) == 1]


def drop_scalar_inputs(graph: ArchGraph) -> ArchGraph:
    """``graph`` without its scalar_inputs (and their edges); the same graph when it has none or when
    they are all it has."""
    gone = set(scalar_inputs(graph))
    if not gone or len(gone) == graph.num_nodes:
        return graph
    keep = [i for i in range(graph.num_nodes) if i not in gone]
    new = {old: i for i, old in enumerate(keep)}
    edges = [(new[s], new[d]) for s, d in graph.edges if s not in gone]
    # scalar_inputs found some, so attrs and shapes are known; removing sources keeps the order topological
    return ArchGraph.derived([graph.ops[i] for i in keep], edges, [dict(graph.attrs[i]) for i in keep],
                             [graph.shapes[i] for i in keep], dict(graph.scalars))
