"""A sum written as ``torch.stack(xs).sum(0)`` read as what it is: one n-ary Add of the stacked tensors.

PyTorch cell code often sums a node's inputs by stacking them (DARTS-style cells; NNI's hub
``NasBench201`` sums every cell node so), which the exporter writes as one Unsqueeze per input, a Concat
and a ReduceSum over the stacked axis: 2k + 1 nodes where the network's structure has one sum. In an
opaque NAS-Bench-201 network these are 180 of 341 nodes, and a whole-network surrogate's refit costs
time per node (nas_predictor/online.py). This rewrite is exact: it applies only where the shapes prove
that every Unsqueeze inserts the Concat's axis and the ReduceSum removes it (keepdims=0); a sum of one
tensor is the tensor itself and its three nodes go.

It is a reading for *structure* (the online accuracy surrogate's tokens), not for runtime: the stacked
form does copy its inputs at run time, so latency encodings keep it (encoding.merge_stacked_sums is off
by default), and graph totals (FLOPs, memory traffic) are left as exported.
"""

from __future__ import annotations

from nas_predictor.graph import ArchGraph

SUM_OP = "Add"  # an n-ary Add: the vocabulary's op for a sum of tensors


def _drop_axis(shape: tuple, axis: int) -> tuple | None:
    if shape is None or not -len(shape) <= axis < len(shape):
        return None
    axis %= len(shape)
    return tuple(shape[:axis]) + tuple(shape[axis + 1:])


def stacked_sums(graph: ArchGraph) -> dict[int, tuple[int, list[int], list[int]]]:
    """{ReduceSum node: (its Concat, the Unsqueezes, the tensors they stack)} for every exact stack-sum."""
    if "ReduceSum" not in graph.ops or graph.shapes is None or graph.attrs is None:
        return {}
    preds, succs = graph.neighbour_lists()
    found = {}
    for node, op in enumerate(graph.ops):
        if op != "ReduceSum" or len(preds.get(node, ())) != 1:
            continue
        concat = preds[node][0]
        axis = graph.attrs[concat].get("axis") if graph.ops[concat] == "Concat" else None
        if axis is None or succs.get(concat) != [node]:
            continue
        axis = int(axis)
        out = tuple(graph.shapes[node]) if graph.shapes[node] is not None else None
        if out is None or _drop_axis(graph.shapes[concat], axis) != out:  # the stacked axis is reduced away
            continue
        unsqueezes = sorted(preds.get(concat, ()))
        sources = []
        for u in unsqueezes:
            ins = preds.get(u, ())
            shape = graph.shapes[u]
            if (graph.ops[u] != "Unsqueeze" or succs.get(u) != [concat] or len(ins) != 1 or shape is None
                    or _drop_axis(shape, axis) != out or shape[axis % len(shape)] != 1
                    or tuple(graph.shapes[ins[0]] or ()) != out):
                break
            sources.append(ins[0])
        else:
            if sources:
                found[node] = (concat, unsqueezes, sources)
    return found


def merge_stacked_sums(graph: ArchGraph) -> ArchGraph:
    """``graph`` with every exact stack-sum as one Add of the stacked tensors (the ReduceSum node, renamed;
    it keeps its attributes and output shape) and every stack-sum of one tensor removed (its readers read
    the tensor); the same graph when there is none."""
    found = stacked_sums(graph)
    if not found:
        return graph
    gone: set[int] = set()
    rewire: dict[int, int] = {}  # a removed one-tensor sum -> the tensor
    for node, (concat, unsqueezes, sources) in found.items():
        gone.update((concat, *unsqueezes))
        if len(sources) == 1:
            gone.add(node)
            rewire[node] = sources[0]

    def target(i: int) -> int:
        while i in rewire:  # a one-tensor sum of a one-tensor sum
            i = rewire[i]
        return i

    keep = [i for i in range(graph.num_nodes) if i not in gone]
    new = {old: i for i, old in enumerate(keep)}
    edges = set()
    for src, dst in graph.edges:
        if dst in gone:
            continue
        if dst in found and len(found[dst][2]) > 1:
            continue  # the sum's inputs are added below
        edges.add((new[target(src)], new[dst]))
    for node, (_, _, sources) in found.items():
        if len(sources) > 1:
            edges.update((new[target(s)], new[node]) for s in sources)
    ops = [SUM_OP if i in found else graph.ops[i] for i in keep]
    attrs = None if graph.attrs is None else [dict(graph.attrs[i]) for i in keep]
    shapes = None if graph.shapes is None else [graph.shapes[i] for i in keep]
    # sources come before their stack and the sum after it, so the kept order stays topological
    return ArchGraph.derived(ops, sorted(edges), attrs, shapes, dict(graph.scalars))
