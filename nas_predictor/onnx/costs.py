"""Per-node FLOPs of ONNX ops, counted for the whole batch.

One multiply-add is 2 FLOPs. Where we differ from the reference (NNLQP's counter, spec section 6):
- Conv FLOPs include the batch (the reference counts one sample for Conv/Gemm but the whole batch
  for BatchNorm and element-wise ops, so its totals mix units).
- ConvTranspose: every *input* pixel is multiplied by the kernel, N·C_in·H_in·W_in·(C_out/g)·k_h·k_w
  multiply-adds; the reference applies the Conv formula to the output size, which is wrong unless
  the stride is 1.
- MatMul is counted (2·K − 1 per output element, batched); the reference's misspelt key skips it.
  Einsum likewise: one multiply-add per combination of its indices' values, less one add per output.
- BatchNormalization at inference is one multiply and one add per element (scale and shift are
  folded), 2 FLOPs, not 4.
- MaxPool: k − 1 comparisons per output; Relu/Clip: one comparison per element (the reference: 0).
- Softmax ≈ 3 per element (exp, sum, divide), LayerNormalization ≈ 8 (two means, subtract,
  square, rsqrt-scale, affine), Gelu ≈ 8, HardSwish/HardSigmoid ≈ 3-4, Erf/Tanh/Sigmoid/Exp ≈ 1
  call each counted as 1 (the reference: a constant for Softmax, nothing for the rest).
- Resize: nearest 0; linear 2^d·2 per output element (d = resized dims); cubic 4^d·2.
- Ops that only move data (Reshape, Transpose, Concat, Slice, Gather, Pad, Cast, ...) cost 0 FLOPs
  but still count towards memory access.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

ShapeOf = Callable[[str], "tuple[int, ...] | None"]

# FLOPs per output element for element-wise ops
ELEMENTWISE = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Sqrt": 1, "Reciprocal": 1, "Neg": 1, "Abs": 1,
    "Exp": 1, "Log": 1, "Erf": 1, "Tanh": 1, "Sigmoid": 1, "Relu": 1, "LeakyRelu": 2, "PRelu": 2,
    "Clip": 2, "Elu": 3, "Selu": 3, "Softplus": 2, "HardSigmoid": 3, "HardSwish": 4, "Gelu": 8,
    "Mish": 4, "Max": 1, "Min": 1, "Where": 1, "Equal": 1, "Greater": 1, "Less": 1, "Not": 1,
    "And": 1, "Or": 1, "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1, "Mod": 1,
    "BatchNormalization": 2, "InstanceNormalization": 8, "LayerNormalization": 8, "GroupNormalization": 8,
    "Softmax": 3, "LogSoftmax": 4, "Dropout": 0,
}
REDUCE = {"ReduceMean": 1, "ReduceSum": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceL2": 2, "ReduceProd": 1,
          "GlobalAveragePool": 1, "GlobalMaxPool": 1, "ArgMax": 1, "ArgMin": 1}


def numel(shape: Sequence[int] | None) -> int:
    """Elements of a tensor; a scalar () has one, an unknown shape (None) counts none."""
    return 0 if shape is None else int(math.prod(shape))


def einsum_macs(equation: str, shapes: Sequence[Sequence[int] | None]) -> int:
    """Multiply-accumulates of an Einsum: the product of the sizes of all its distinct indices (each
    combination of index values is one product of the operands), 0 when a shape or the equation is
    missing. An ellipsis stands for the same leading dims in every operand that has it."""
    terms = equation.split("->")[0].split(",") if equation else []
    if not terms or len(terms) != len(shapes) or any(s is None for s in shapes):
        return 0
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        letters = term.replace("...", "")
        if "..." in term:
            broadcast = len(shape) - len(letters)
            start = term.index("...")
            for k, dim in enumerate(shape[start:start + broadcast]):
                key = f"...{broadcast - k}"  # aligned from the right, as broadcasting does
                sizes[key] = max(sizes.get(key, 1), int(dim))
            shape = list(shape[:start]) + list(shape[start + broadcast:])
        if len(letters) != len(shape):
            return 0
        for letter, dim in zip(letters, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(dim))
    return int(math.prod(sizes.values()))


def node_flops(op: str, inputs: Sequence[str], outputs: Sequence[str], attrs: dict[str, Any], shape_of: ShapeOf) -> float:
    """FLOPs of one node; 0 when the shapes it needs are unknown."""
    out = shape_of(outputs[0]) if outputs else None
    x = shape_of(inputs[0]) if inputs and inputs[0] else None
    if op == "Conv":
        weight = shape_of(inputs[1]) if len(inputs) > 1 else None
        if not out or not weight:
            return 0.0
        macs_per_output = numel(weight[1:])  # C_in/g · prod(kernel)
        return float(numel(out) * (2 * macs_per_output - 1 + attrs.get("bias", 0)))
    if op == "ConvTranspose":
        weight = shape_of(inputs[1]) if len(inputs) > 1 else None
        if not x or not weight or not out:
            return 0.0
        # weight (C_in, C_out/g, k...): each input element meets C_out/g · prod(k) weights
        return float(2 * numel(x) * numel(weight[1:]) + attrs.get("bias", 0) * numel(out))
    if op in ("Gemm", "MatMul"):
        a = x
        if not a or not out:
            return 0.0
        k = (a[-2] if attrs.get("transA") else a[-1]) if len(a) >= 2 else a[0]
        bias = attrs.get("bias", 0) if op == "Gemm" else 0
        return float(numel(out) * (2 * k - 1 + bias))
    if op == "Einsum":
        macs = einsum_macs(attrs.get("equation", ""), [shape_of(i) if i else None for i in inputs])
        return float(2 * macs - numel(out)) if macs and out else 0.0
    if op in ("MaxPool", "AveragePool", "LpPool"):
        window = math.prod(attrs.get("kernel", [1]))
        return float(numel(out) * (window - 1 if op == "MaxPool" else window))
    if op in REDUCE:
        return float(REDUCE[op] * numel(x))
    if op in ELEMENTWISE:
        return float(ELEMENTWISE[op] * numel(out))
    if op in ("Resize", "Upsample"):
        mode = attrs.get("mode", 0)
        if not mode or not x or not out:
            return 0.0
        resized = sum(1 for a, b in zip(x, out) if a != b) or 1
        return float(numel(out) * 2 * (2 if mode == 1 else 4) ** resized)
    return 0.0


MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum")


def node_macs(op: str, attrs: dict[str, Any], shape: Sequence[int] | None) -> float:
    """Multiply-accumulates of a Conv / ConvTranspose / Gemm / MatMul node, from the FLOPs node_flops
    gave it (2 per multiply-add, minus one add per output, plus the bias) and its output shape: the
    figure torchvision and timm publish as "GFLOPs" (they count MACs)."""
    flops = float(attrs.get("flops", 0.0))
    if op not in MAC_OPS or not flops:
        return 0.0
    bias = attrs.get("bias", 0) if op != "MatMul" else 0
    out = numel(shape)
    if op == "ConvTranspose":  # 2 per input-weight product, bias once per output
        return (flops - bias * out) / 2
    return (flops + out * (1 - bias)) / 2


def graph_macs(graph, ops: Sequence[str] = MAC_OPS) -> float:
    """Multiply-accumulates of a graph's ``ops`` nodes (by default every Conv, ConvTranspose, Gemm and
    MatMul), for the whole batch."""
    return float(sum(node_macs(op, a, s) for op, a, s in zip(graph.ops, graph.attrs, graph.shapes) if op in ops))
