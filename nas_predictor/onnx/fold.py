"""Evaluate shape computations (Shape -> Gather -> Div -> Slice ...) to constants.

Exporters write reshapes and splits as small integer subgraphs over ``Shape``. onnx's data
propagation resolves some of them, not all (e.g. Div, Mul, Mod of shape values), which leaves later
tensors without sizes. With the input shapes fixed, these subgraphs are constants: ``evaluate`` computes
one node's small output with NumPy (``shapes.static_shapes`` calls it node by node and replaces the
folded ops by ``Constant`` ops, as onnxruntime's constant folding does when it loads the model).

Common shape ops have a NumPy line each (fast: a Swin-T has hundreds of them); any other standard op
whose inputs are all known small tensors (Mod, Clip, Ceil, ScatterND, ... in "same" padding and window
partitions) is evaluated by onnx's reference implementation, so no shape subgraph is left open for
want of an evaluator. Data never enters: graph inputs have no values, so only tensors computed from
constants and ``Shape``/``Size`` are folded.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

MAX_ELEMENTS = 64  # shape values are short vectors; never fold real data


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def evaluate(node: onnx.NodeProto, args: list, shape_of: Callable) -> np.ndarray | None:
    op = node.op_type
    if op == "Shape":
        dims = shape_of(node.input[0])
        if not dims or any(d <= 0 for d in dims):
            return None
        start, end = _attr(node, "start", 0), _attr(node, "end", None)
        return np.asarray(dims[start:end], dtype=np.int64)
    if op == "Size":
        dims = shape_of(node.input[0])
        return None if not dims or any(d <= 0 for d in dims) else np.asarray(int(np.prod(dims)), dtype=np.int64)
    if args is None:
        return None
    if op == "Gather":
        return np.take(args[0], args[1], axis=_attr(node, "axis", 0))
    if op == "Unsqueeze":
        axes = args[1] if len(args) > 1 and args[1] is not None else _attr(node, "axes", [])
        out = args[0]
        for axis in sorted(int(a) % (out.ndim + len(axes)) for a in np.atleast_1d(axes)):
            out = np.expand_dims(out, axis)
        return out
    if op == "Squeeze":
        axes = args[1] if len(args) > 1 and args[1] is not None else _attr(node, "axes", None)
        return np.squeeze(args[0]) if axes is None else np.squeeze(args[0], axis=tuple(int(a) for a in np.atleast_1d(axes)))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(a) for a in args], axis=_attr(node, "axis", 0))
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](args[0], args[1])
    if op == "Div":
        a, b = args
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":  # ONNX integer division truncates towards zero
            return (np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))
        return a / b
    if op == "Cast":
        to = onnx.helper.tensor_dtype_to_np_dtype(_attr(node, "to", onnx.TensorProto.INT64))
        return args[0].astype(to)
    if op == "Slice" and len(args) >= 3:
        data, starts, ends = args[:3]
        axes = args[3] if len(args) > 3 and args[3] is not None else range(len(starts))
        steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index = [slice(None)] * data.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            index[int(a)] = slice(int(s), int(e), int(st))
        return data[tuple(index)]
    if op == "Reshape":
        shape = [int(v) for v in np.atleast_1d(args[1])]
        if not _attr(node, "allowzero", 0):  # 0 copies the input's dim (ONNX default)
            shape = [args[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return args[0].reshape(shape)
    if op == "Identity":
        return args[0]
    if op == "ConstantOfShape":
        shape = [int(v) for v in np.atleast_1d(args[0])]
        if np.prod(shape) > MAX_ELEMENTS:
            return None
        value = _attr(node, "value", None)
        fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, dtype=np.float32)
        return np.full(shape, fill[0], dtype=fill.dtype)
    if op == "Range":
        return np.arange(args[0], args[1], args[2])
    if op == "Equal":
        return np.equal(args[0], args[1])
    if op == "Where":
        return np.where(args[0], args[1], args[2])
    if op in ("ReduceProd",):
        return np.prod(args[0], keepdims=bool(_attr(node, "keepdims", 1)))
    if op in _ELEMENTWISE:
        return _ELEMENTWISE[op](*args)
    if op == "Mod":
        a, b = args
        return np.fmod(a, b) if _attr(node, "fmod", 0) else np.mod(a, b)
    if op == "Transpose":
        perm = _attr(node, "perm", None)
        return np.transpose(args[0], perm)
    if op == "Expand":  # ONNX Expand broadcasts both ways (numpy's broadcast_to only one)
        shape = np.broadcast_shapes(args[0].shape, tuple(int(v) for v in np.atleast_1d(args[1])))
        return np.broadcast_to(args[0], shape).copy() if np.prod(shape) <= MAX_ELEMENTS else None
    if op == "Clip" and len(node.input) >= 1 and not node.attribute:  # opset >= 11: min and max are inputs
        low = args[1] if len(args) > 1 and args[1] is not None else None
        high = args[2] if len(args) > 2 and args[2] is not None else None
        return np.clip(args[0], low, high) if low is not None or high is not None else args[0]
    if op == "Pow":
        return np.power(args[0], args[1]).astype(args[0].dtype)
    return _reference(node, args)


_ELEMENTWISE = {
    "Neg": np.negative, "Abs": np.abs, "Ceil": np.ceil, "Floor": np.floor, "Sqrt": np.sqrt, "Not": np.logical_not,
    "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and, "Or": np.logical_or, "Sign": np.sign,
    "Max": lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)), "Min": lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)),
}


def _reference(node: onnx.NodeProto, args: list) -> np.ndarray | None:
    """Any other standard op, by onnx's reference implementation (about 1 ms a node)."""
    if node.domain not in ("", "ai.onnx"):
        return None
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(args)]  # "" keeps an omitted input omitted
    single = helper.make_node(node.op_type, names, list(node.output), domain=node.domain)
    single.attribute.extend(node.attribute)
    feeds = {name: a for name, a in zip(names, args) if name}
    (result, *_) = ReferenceEvaluator(single).run(None, feeds)
    return result
