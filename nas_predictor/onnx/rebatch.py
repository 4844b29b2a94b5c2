"""Change the batch size of an ArchGraph made by onnx_to_graph, without the ONNX file.

Exporting a network is the expensive step (tens to hundreds of ms); latency tables need the same
networks at batch 1, 32, 64, 256. onnx_to_graph marks which nodes carry the batch (attrs
``batched``) and splits each op's memory traffic into batched and fixed elements, so the graph at
another batch is exact: batched shapes get the new dim 0, FLOPs and batched traffic scale with the
batch, parameters and constant inputs stay. It equals onnx_to_graph(model, batch_size=B) for models
whose batched tensors keep the batch in dim 0 (all CNN families here). A graph with a batched tensor
whose dim 0 is not the batch (attention heads folded into dim 0, a sequence-first layout) cannot be
re-batched this way: its new shapes would be guesses, so that is an error, never a silent graph.
"""

from __future__ import annotations

from nas_predictor.errors import GraphError
from nas_predictor.graph import ArchGraph


def rebatch(graph: ArchGraph, batch_size: int) -> ArchGraph:
    if batch_size < 1:
        raise GraphError(f"batch size must be >= 1, got {batch_size}")
    if graph.attrs is None or graph.shapes is None or "batch_size" not in graph.scalars:
        raise GraphError("rebatch needs a graph made by onnx_to_graph (attributes, shapes and a batch size)")
    old = int(graph.scalars["batch_size"])
    for i, (shape, a) in enumerate(zip(graph.shapes, graph.attrs)):
        if a.get("batched") and len(shape) and shape[0] != old:
            raise GraphError(f"cannot re-batch this graph from {old} to {batch_size}: node {i} ({graph.ops[i]}) follows "
                             f"the input but its shape {tuple(shape)} does not lead with the batch {old}; encode the "
                             f"ONNX file at batch {batch_size} instead (onnx_to_graph(path, batch_size={batch_size}))")
    factor = batch_size / old
    shapes, attrs = [], []
    memory = 0.0
    for shape, a in zip(graph.shapes, graph.attrs):
        if a.get("batched") and shape and shape[0] == old:
            shape = (batch_size, *shape[1:])
        shapes.append(shape)
        if a.get("batched"):
            a = {**a, "flops": a.get("flops", 0.0) * factor, "memory_batched": a.get("memory_batched", 0) * factor}
        memory += a.get("memory_batched", 0) + a.get("memory_fixed", 0)
        attrs.append(a)
    params = graph.scalars.get("params", 0.0)
    scalars = {**graph.scalars, "batch_size": float(batch_size), "flops": float(sum(a.get("flops", 0.0) for a in attrs)),
               "memory_access": float(memory + params)}
    return ArchGraph(graph.ops, graph.edges, tuple(attrs), tuple(shapes), scalars)
