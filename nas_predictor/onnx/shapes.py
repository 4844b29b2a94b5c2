"""Every tensor's shape: one static pass over the nodes, then, for what is left, one onnxruntime run.

The static pass walks the nodes in file order (ONNX requires topological order) and, for each node,
either computes its output *values* (small shape tensors: ``Shape``, ``Gather``, ``Mod``, ... see
``fold``) or infers its output *types* with onnx's per-node inference, fed the values known so far.
One pass resolves chains that onnx's whole-graph ``infer_shapes`` leaves open: a Swin-T's window
padding (Shape -> Mod -> Pad -> Reshape, once per block) would need one whole-graph inference per block.

What the static pass cannot size (an op without an inference function, a shape that depends on data
values) is sized by running the model once in onnxruntime on random inputs (``runtime_shapes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import defs, helper, numpy_helper, shape_inference

from nas_predictor.onnx.fold import MAX_ELEMENTS, evaluate


@dataclass
class StaticShapes:
    shapes: dict[str, tuple[int, ...]]  # tensor -> dims, 0 for an unknown or symbolic dim
    elem_types: dict[str, int]  # tensor -> onnx.TensorProto data type, where known
    folded: dict[str, np.ndarray] = field(default_factory=dict)  # outputs of nodes computed here: their values
    failures: dict[str, str] = field(default_factory=dict)  # tensor -> why inference could not size it


def _dims(type_proto: onnx.TypeProto) -> tuple[int, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else 0 for d in type_proto.tensor_type.shape.dim)


_LIST_CONSTANTS = {"value_float": (onnx.TensorProto.FLOAT, False), "value_int": (onnx.TensorProto.INT64, False),
                   "value_floats": (onnx.TensorProto.FLOAT, True), "value_ints": (onnx.TensorProto.INT64, True)}


class _Tensors:
    """What the pass knows of each tensor: dims and element type, a TypeProto made only when onnx's
    inference asks for one, and small values converted to NumPy only when an op reads them."""

    def __init__(self) -> None:
        self.dims: dict[str, tuple[int, ...] | None] = {}
        self.elem: dict[str, int] = {}
        self._types: dict[str, onnx.TypeProto] = {}
        self._protos: dict[str, onnx.TensorProto] = {}
        self.values: dict[str, np.ndarray] = {}

    def add_type(self, name: str, t: onnx.TypeProto) -> None:
        self._types[name] = t
        self.dims[name] = _dims(t)
        if t.HasField("tensor_type"):
            self.elem[name] = t.tensor_type.elem_type

    def add_tensor(self, name: str, elem: int, dims, proto: onnx.TensorProto | None = None) -> None:
        self.dims[name], self.elem[name] = tuple(int(d) for d in dims), elem
        self._types.pop(name, None)
        if proto is not None and math.prod(self.dims[name]) <= MAX_ELEMENTS:
            self._protos[name] = proto

    def add_value(self, name: str, value: np.ndarray) -> None:
        self.values[name] = value
        self.add_tensor(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)

    def has_value(self, name: str) -> bool:
        return name in self.values or name in self._protos

    def value(self, name: str) -> np.ndarray | None:
        if name not in self.values and name in self._protos:
            self.values[name] = numpy_helper.to_array(self._protos.pop(name))
        return self.values.get(name)

    def type_proto(self, name: str) -> onnx.TypeProto:
        if name not in self._types:
            self._types[name] = helper.make_tensor_type_proto(self.elem[name], list(self.dims[name]))
        return self._types[name]

    def data_proto(self, name: str) -> onnx.TensorProto | None:
        if name in self._protos:
            return self._protos[name]
        value = self.values.get(name)
        return None if value is None else numpy_helper.from_array(value)


def _constant(node: onnx.NodeProto, known: _Tensors) -> None:
    for attr in node.attribute:
        if attr.name == "value":  # a large constant is data (e.g. a mask), never a shape
            known.add_tensor(node.output[0], attr.t.data_type, attr.t.dims, attr.t)
        elif attr.name in _LIST_CONSTANTS:
            elem, is_list = _LIST_CONSTANTS[attr.name]
            value = np.asarray(helper.get_attribute_value(attr),
                               dtype=np.float32 if elem == onnx.TensorProto.FLOAT else np.int64)
            known.add_value(node.output[0], value if is_list else value.reshape(()))


def _whole_graph(model: onnx.ModelProto) -> StaticShapes | None:
    """onnx's whole-graph inference (one C++ call), when it alone sizes every op output and there is no
    shape arithmetic to fold (no Shape/Size, no op fed by constants only); else None. The usual CNN
    export (ResNet, MobileNet) takes this path, several times faster than the per-node pass."""
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants.update(n.output[0] for n in graph.node if n.op_type == "Constant" and n.output)
    for node in graph.node:
        if node.op_type in ("Shape", "Size") or node.op_type != "Constant" and all(
                i in constants for i in node.input if i):
            return None
    try:
        inferred = shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - the per-node pass says which node fails
        return None
    result = StaticShapes({}, {})
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = _dims(value.type)
        if dims is not None:
            result.shapes[value.name] = dims
            result.elem_types[value.name] = value.type.tensor_type.elem_type
    known = _Tensors()  # initializers and Constant outputs, read the way the per-node pass reads them
    for t in graph.initializer:
        known.add_tensor(t.name, t.data_type, t.dims)
    for node in graph.node:
        if node.op_type == "Constant":
            _constant(node, known)
        elif any(o and (o not in result.shapes or 0 in result.shapes[o]) for o in node.output):
            return None
    result.shapes.update(known.dims)
    result.elem_types.update(known.elem)
    return result


def static_shapes(model: onnx.ModelProto, seeded: frozenset[str] = frozenset()) -> StaticShapes:
    """Every tensor's shape (module docstring). ``seeded`` names tensors whose types the graph's
    ``value_info`` already gives (outputs of an op no inference knows, e.g. nas_predictor.onnx.fragments'
    stand-ins for modules): a node whose outputs are all seeded keeps them."""
    fast = _whole_graph(model)
    if fast is not None:
        return fast
    graph = model.graph
    opsets = {o.domain or "": o.version for o in model.opset_import}
    known = _Tensors()
    for v in graph.input:
        known.add_type(v.name, v.type)
    for v in graph.value_info:
        if v.name in seeded:
            known.add_type(v.name, v.type)
    for t in graph.initializer:  # weights had their values dropped; small ones keep them
        known.add_tensor(t.name, t.data_type, t.dims, t)
    result = StaticShapes({}, {})

    def shape_of(name: str) -> tuple[int, ...] | None:
        return known.dims.get(name)

    for node in graph.node:
        if node.op_type == "Constant":
            _constant(node, known)
            continue
        if seeded and node.output and all(o in seeded for o in node.output if o):
            continue
        if len(node.output) == 1 and node.domain in ("", "ai.onnx"):
            computable = all(known.has_value(name) for name in node.input if name)
            args = [known.value(name) if name else None for name in node.input] if computable else None
            try:
                out = evaluate(node, args, shape_of)
            except Exception:  # noqa: BLE001 - an op we cannot evaluate is inferred below instead
                out = None
            if out is not None and np.size(out) <= MAX_ELEMENTS:
                out = np.asarray(out)
                known.add_value(node.output[0], out)
                result.folded[node.output[0]] = out
                continue
        missing = [name for name in node.input if name and known.dims.get(name, "none") == "none"]
        if missing:
            for out in node.output:
                result.failures.setdefault(out, f"its input {missing[0]!r} has no known type")
            continue
        try:
            schema = defs.get_schema(node.op_type, opsets.get(node.domain or "", 1), node.domain or "")
        except Exception:  # noqa: BLE001 - onnx.defs.SchemaError: a custom or misspelt op
            for out in node.output:
                result.failures[out] = f"op {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}) is not a known ONNX op"
            continue
        data = {}
        for name in node.input:
            proto = known.data_proto(name) if name else None
            if proto is not None:
                data[name] = proto
        try:
            inferred = shape_inference.infer_node_outputs(
                schema, node, {name: known.type_proto(name) for name in node.input if name}, data)
        except Exception as err:  # noqa: BLE001 - onnx raises InferenceError, ValidationError, RuntimeError
            for out in node.output:
                result.failures[out] = f"shape inference failed: {str(err).strip().splitlines()[0][:200]}"
            continue
        for name, t in inferred.items():
            known.add_type(name, t)
    result.shapes = {name: dims for name, dims in known.dims.items() if dims is not None}
    result.elem_types = dict(known.elem)
    return result
