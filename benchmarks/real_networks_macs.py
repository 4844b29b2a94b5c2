"""Multiply-adds of an encoded graph, from its shapes or the encoder's own count (benchmarks/real_networks.py)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from real_networks_catalog import ENCODER_MAC_OPS, MAC_OPS


# -- check (project venv) ------------------------------------------------------------------------------
def _numel(shape) -> int:
    return int(math.prod(shape))


def _known(shape) -> bool:
    return bool(shape) and all(d > 0 for d in shape)


def node_macs_from_shapes(op: str, attrs: dict, out: tuple, inputs: list[tuple]) -> int | None:
    """Multiply-adds of one Conv/ConvTranspose/Gemm/MatMul node from the graph's own shapes and attributes
    (None when a shape it needs is unresolved). The benchmark's count while the encoder has no per-node
    ``macs`` attribute; a cross-check once it has."""
    if not _known(out) or not inputs or not all(_known(s) for s in inputs):
        return None
    kernel = _numel(attrs.get("kernel", [1]))
    group = int(attrs.get("group", 1))
    if op == "Conv":
        kernel_dims = list(attrs.get("kernel", []))
        weights = [w for w in inputs if len(w) == len(out) and w[0] == out[1] and list(w[2:]) == kernel_dims]
        if len(inputs) == 2 and weights:  # a computed weight (weight standardisation) arrives as an edge
            return _numel(out) * _numel(weights[-1][1:])
        return _numel(out) * (inputs[0][1] // group) * kernel
    if op == "ConvTranspose":
        x = max(inputs, key=_numel)
        return _numel(x) * (out[1] // group) * kernel
    if op == "Gemm":
        trans_a = attrs.get("transA", 0)
        for a in inputs:
            if len(a) == 2 and (a[1] if trans_a else a[0]) == out[0]:
                return _numel(out) * (a[0] if trans_a else a[1])
        return None
    if op == "MatMul":
        if len(inputs) == 1:
            a = inputs[0]
            return _numel(out) * a[-1]
        for a in inputs:
            for b in inputs:
                if a is b:
                    continue
                k = a[-1]
                if len(b) >= 2 and b[-2] == k and b[-1] == out[-1]:
                    return _numel(out) * k
                if len(b) == 1 and b[0] == k:
                    return _numel(out) * k
        return None
    return None


def encoder_macs(graph) -> tuple[float | None, str]:
    """The encoder's own Conv/ConvTranspose/Gemm/MatMul MACs: a per-node ``macs`` attribute where it sets
    one, else nas_predictor.onnx.costs.graph_macs where that exists (None: the encoder has neither)."""
    attrs = graph.attrs or ()
    marked = [a for op, a in zip(graph.ops, attrs) if op in ENCODER_MAC_OPS and "macs" in a]
    if marked:
        return float(sum(a["macs"] for a in marked)), "encoder: per-node macs attribute"
    try:
        from nas_predictor.onnx.costs import graph_macs
    except ImportError:
        return None, "none"
    return graph_macs(graph, ENCODER_MAC_OPS), "encoder: nas_predictor.onnx.costs.graph_macs"


def graph_costs(graph) -> dict[str, Any]:
    """Our MACs (the encoder's own count where it has one, else the benchmark's count from the graph's
    shapes), the benchmark's count as a cross-check, and the nodes whose shapes are unresolved."""
    preds: dict[int, list[int]] = defaultdict(list)
    for s, d in graph.edges:
        preds[d].append(s)
    attrs = graph.attrs or [{}] * graph.num_nodes
    shapes = graph.shapes or [()] * graph.num_nodes
    from_shapes = 0
    unresolved_mac_nodes, mac_nodes = [], 0
    for i, op in enumerate(graph.ops):
        if op not in MAC_OPS:
            continue
        mac_nodes += 1
        macs = node_macs_from_shapes(op, attrs[i], shapes[i], [shapes[p] for p in sorted(preds[i])])
        if macs is None:
            unresolved_mac_nodes.append(i)
        else:
            from_shapes += macs
    zero_dims = [i for i, s in enumerate(shapes) if s and 0 in s]
    # a weight-free export lists its parameters as graph inputs; the image must be the only one taken as data
    data_inputs = [i for i, op in enumerate(graph.ops) if op == "Input" and attrs[i].get("batched")]
    ours, source = encoder_macs(graph)
    return {
        "macs": from_shapes if ours is None else ours,
        "macs_source": "benchmark: node_macs_from_shapes" if ours is None else source,
        "macs_from_shapes": from_shapes, "mac_nodes": mac_nodes,
        "unresolved_mac_nodes": len(unresolved_mac_nodes),
        "zero_dim_nodes": len(zero_dims),
        "batched_inputs": len(data_inputs),
        "batched_input_shapes": [list(shapes[i]) for i in data_inputs[:6]],
        "first_unresolved": None if not (unresolved_mac_nodes or zero_dims) else
        f"node {min(unresolved_mac_nodes + zero_dims)} ({graph.ops[min(unresolved_mac_nodes + zero_dims)]})",
    }


