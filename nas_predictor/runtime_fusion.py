"""The graph onnxruntime runs rather than the graph the exporter wrote: a BatchNormalization that reads a
Conv's only output is folded into that Conv.

onnxruntime folds such a BatchNormalization into the Conv's weights and bias when it loads a model
(ConvBNFusion, a basic-level optimisation that is on by default), and torch's exporter makes the same
fold itself when it exports in eval mode with constant folding. One network therefore reaches a
predictor with or without BN nodes depending on how it was exported, while onnxruntime times one
kernel either way. The generated training families are exported unfolded (so the eager-PyTorch tables
stay exact) and carry a Conv -> BN pair where a torchvision export carries one Conv with a bias;
folding both into the runtime form shows a latency predictor one graph per network.

A BN that reads anything else stays: DenseNet's pre-activation BN after a Concat, LeViT's BN after
MatMul + Flatten (onnxruntime's MatMul+BN fusion looks only through Reshape and Transpose). onnxruntime
runs those as kernels of their own.
"""

from __future__ import annotations

from nas_predictor.graph import ArchGraph

_FOLDED_OP = "BatchNormalization"
_INTO_OP = "Conv"


def foldable_batchnorms(graph: ArchGraph) -> dict[int, int]:
    """{BN node: the Conv node it folds into} for every BN whose one input is a Conv read by nothing else."""
    if _FOLDED_OP not in graph.ops:  # the common fast path: nothing to fold
        return {}
    preds, succs = graph.neighbour_lists()
    folds = {}
    for node, op in enumerate(graph.ops):
        if op != _FOLDED_OP or len(preds.get(node, ())) != 1:
            continue
        conv = preds[node][0]
        if graph.ops[conv] == _INTO_OP and succs.get(conv) == [node]:
            folds[node] = conv
    return folds


def fold_batchnorm(graph: ArchGraph) -> ArchGraph:
    """``graph`` with every foldable BatchNormalization merged into its Conv (the Conv gains a bias, as
    the exporter's fold gives it); the same graph when there is none. Graph totals lose the BN's FLOPs
    and memory traffic, which the fused kernel does not spend."""
    folds = foldable_batchnorms(graph)
    if not folds:
        return graph
    keep = [i for i in range(graph.num_nodes) if i not in folds]
    new = {old: i for i, old in enumerate(keep)}
    # a dropped BN's consumers now read its Conv; node order stays topological (Conv < BN < consumer)
    edges = sorted({(new[folds.get(src, src)], new[dst]) for src, dst in graph.edges if dst not in folds})
    attrs = None
    scalars = dict(graph.scalars)
    if graph.attrs is not None:
        attrs = [dict(graph.attrs[i]) for i in keep]
        for conv in set(folds.values()):
            if "bias" in graph.attrs[conv]:
                attrs[new[conv]]["bias"] = 1
        gone = [graph.attrs[bn] for bn in folds]
        if "flops" in scalars:
            scalars["flops"] = max(0.0, scalars["flops"] - sum(float(a.get("flops", 0.0)) for a in gone))
        if "memory_access" in scalars:
            traffic = sum(float(a.get("memory_batched", 0)) + float(a.get("memory_fixed", 0)) for a in gone)
            scalars["memory_access"] = max(0.0, scalars["memory_access"] - traffic)
    shapes = None if graph.shapes is None else [graph.shapes[i] for i in keep]
    # dropping nodes and moving edges forward keeps a valid graph valid: no second validation
    return ArchGraph.derived([graph.ops[i] for i in keep], edges, attrs, shapes, scalars)
