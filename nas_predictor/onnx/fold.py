"""Fold shape computations (Shape -> Gather -> Div -> Slice ...) into constants.

Exporters write reshapes and splits as small integer subgraphs over ``Shape``. onnx's data
propagation resolves some of them, not all (e.g. Div, Mul of shape values), which leaves later
tensors without sizes. With the input shapes fixed, these subgraphs are constants: evaluate them with
NumPy and replace their ops by ``Constant`` ops, as onnxruntime's constant folding does when it loads
the model, then infer shapes again.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

MAX_ELEMENTS = 64  # shape values are short vectors; never fold real data


def _int_inputs(values: dict[str, np.ndarray], node: onnx.NodeProto) -> list[np.ndarray] | None:
    out = []
    for name in node.input:
        if not name:
            out.append(None)
            continue
        if name not in values:
            return None
        out.append(values[name])
    return out


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _evaluate(node: onnx.NodeProto, args: list, shape_of: Callable) -> np.ndarray | None:
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
        return a // b if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b
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
    return None


def fold_shape_computations(model: onnx.ModelProto, shape_of: Callable) -> int:
    """Replace (in place) every op whose outputs are computable small integer tensors by Constants;
    returns how many ops were folded."""
    values: dict[str, np.ndarray] = {}
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and np.prod(t.dims) <= MAX_ELEMENTS:
            values[t.name] = numpy_helper.to_array(t)
    folded = 0
    nodes = list(model.graph.node)
    for position, node in enumerate(nodes):
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and np.prod(a.t.dims) <= MAX_ELEMENTS:
                    values[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_int", "value_ints"):
                    values[node.output[0]] = np.asarray(helper.get_attribute_value(a), dtype=np.int64)
            continue
        if len(node.output) != 1:
            continue
        try:
            result = _evaluate(node, _int_inputs(values, node), shape_of)
        except Exception:  # noqa: BLE001 - an op we cannot fold simply stays as it is
            result = None
        if result is None or np.size(result) > MAX_ELEMENTS:
            continue
        result = np.asarray(result)
        if result.dtype.kind == "f":
            result = result.astype(np.float32)
        elif result.dtype.kind == "b":
            result = result.astype(bool)
        else:
            result = result.astype(np.int64)
        values[node.output[0]] = result
        nodes[position] = helper.make_node("Constant", [], [node.output[0]],
                                           value=numpy_helper.from_array(result, name=node.output[0] + "_folded"))
        folded += 1
    if folded:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return folded
