"""Reading ONNX files: clear errors for non-ONNX input, batch-size override, shape inference."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from nas_predictor.errors import OnnxError
from nas_predictor.onnx.fold import fold_shape_computations

# Input slots that hold parameters, not activations, by op type. A tensor in such a slot is never a
# graph edge when it is a known constant (initializer, weight-free parameter input, Constant output).
# Conv/ConvTranspose bias and Gemm C are parameters whatever produced them (the reference's rule).
PARAMETER_SLOTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2),
    "BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2),
    "LayerNormalization": (1, 2), "GroupNormalization": (1, 2), "PRelu": (1,),
    "Reshape": (1,), "Resize": (1, 2, 3), "Upsample": (1,), "Expand": (1,), "Tile": (1,),
    "Pad": (1, 2, 3), "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "Split": (1,),
    "Clip": (1, 2), "TopK": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
}
ALWAYS_PARAMETER: dict[str, tuple[int, ...]] = {"Conv": (2,), "ConvTranspose": (2,), "Gemm": (2,)}


@dataclass
class LoadedModel:
    model: onnx.ModelProto
    source: str
    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape (symbolic dims read as 0)
    constants: dict[str, tuple[int, ...]]  # tensors with known values: initializers, Constant outputs
    parameter_inputs: set[str]  # graph inputs that are weights (weight-free files)
    data_inputs: list[str]
    batch_size: int | None
    shape_warning: str | None


def read_model(source: str | os.PathLike | bytes | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Parse an ONNX model from a path, raw bytes or a ModelProto, with errors that say what is wrong."""
    if isinstance(source, onnx.ModelProto):
        return source, "<ModelProto>"
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise OnnxError(f"{path}: no such ONNX file")
        data, name = path.read_bytes(), str(path)
    if not data:
        raise OnnxError(f"{name}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise OnnxError(f"{name}: not a valid ONNX model (cannot be parsed: {err})") from None
    if not model.graph.node:
        raise OnnxError(f"{name}: not an ONNX model with a graph (no nodes found; corrupt or another format?)")
    if not model.opset_import:
        raise OnnxError(f"{name}: the ONNX model declares no opset (corrupt or another format?)")
    return model, name


def _dims(type_proto: onnx.TypeProto) -> tuple[int, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else 0 for d in type_proto.tensor_type.shape.dim)


def parameter_inputs(model: onnx.ModelProto, initializers: set[str]) -> set[str]:
    """Graph inputs that are weights in a weight-free (export_params=False) file.

    Such files list the weights as ordinary graph inputs. A graph input is taken as a weight when every
    use of it is a parameter slot (Conv weight, BatchNorm statistics, ...), or when it carries the
    names torch's exporter gives parameters (``layer.weight``, ``onnx::Conv_12``) and another input
    is left as the data input."""
    candidates = [i.name for i in model.graph.input if i.name not in initializers]
    uses: dict[str, list[bool]] = {name: [] for name in candidates}
    for node in model.graph.node:
        slots = PARAMETER_SLOTS.get(node.op_type, ())
        for slot, name in enumerate(node.input):
            if name in uses:
                uses[name].append(slot in slots)
    params = {name for name, u in uses.items() if u and all(u)}
    named = {name for name in candidates if name not in params and
             (name.startswith("onnx::") or name.endswith((".weight", ".bias", ".running_mean", ".running_var")))}
    if len(candidates) - len(params) - len(named) >= 1:
        params |= named
    return params


def _constant_value_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(int(d) for d in attr.t.dims)
                elif attr.name in ("value_float", "value_int", "value_string"):
                    shapes[node.output[0]] = ()
                elif attr.name in ("value_floats", "value_ints", "value_strings"):
                    shapes[node.output[0]] = (len(onnx.helper.get_attribute_value(attr)),)
    return shapes


_VALUE_FIELDS = ("raw_data", "float_data", "double_data", "int32_data", "int64_data", "uint64_data", "string_data")


def _drop_weight_values(model: onnx.ModelProto) -> None:
    """Forget the values of large initializers (weights), keeping their dims and types.

    Only sizes matter for the graph and the costs; shape inference and every later pass copy the
    model, so a 500 MB VGG would otherwise take seconds per pass. Small tensors keep their values:
    they may be shapes, axes or pads that shape inference and folding read."""
    for tensor in model.graph.initializer:
        if int(np.prod(tensor.dims)) > 64:
            for name in _VALUE_FIELDS:
                tensor.ClearField(name)


def _infer(model: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, dict[str, tuple[int, ...]], str | None]:
    warning = None
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as err:  # onnx raises several types (InferenceError, ValidationError, RuntimeError)
        inferred, warning = model, f"{name}: ONNX shape inference failed ({err}); shapes left unknown"
    shapes: dict[str, tuple[int, ...]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = _dims(value.type)
        if dims is not None:
            shapes[value.name] = dims
    return inferred, shapes, warning


def load_model(
    source: str | os.PathLike | bytes | onnx.ModelProto, batch_size: int | None = None,
    data_inputs: Sequence[str] | None = None,
) -> LoadedModel:
    """Read a model, set the batch dimension of its data inputs and outputs, and infer every shape.

    Shape inference uses onnx's own (with data propagation, so Shape -> Gather -> Reshape chains
    resolve). If it fails, the model is still used with whatever shapes are known, and a warning says so.
    """
    model, name = read_model(source)
    if isinstance(source, onnx.ModelProto):  # never edit the caller's proto
        model = onnx.ModelProto.FromString(model.SerializeToString())
    _drop_weight_values(model)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    params = parameter_inputs(model, initializers)
    inputs = [i.name for i in graph.input if i.name not in initializers and i.name not in params]
    if data_inputs is not None:
        unknown = sorted(set(data_inputs) - {i.name for i in graph.input})
        if unknown:
            raise OnnxError(f"{name}: data input(s) {unknown} are not graph inputs "
                            f"(inputs: {[i.name for i in graph.input]})")
        params |= set(inputs) - set(data_inputs)
        inputs = list(data_inputs)
    if batch_size is not None:
        if batch_size < 1:
            raise OnnxError(f"batch size must be >= 1, got {batch_size}")
        for value in [*(i for i in graph.input if i.name in inputs), *graph.output]:
            dims = value.type.tensor_type.shape.dim
            if len(dims):
                dims[0].Clear()
                dims[0].dim_value = batch_size
    del graph.value_info[:]  # stale shapes from the exporter would survive a batch change
    inferred, shapes, warning = _infer(model, name)
    # Shape subgraphs that onnx's data propagation leaves open: fold them and infer again.
    for _ in range(3):
        if not fold_shape_computations(inferred, lambda t: shapes.get(t)):
            break
        del inferred.graph.value_info[:]
        inferred, shapes, warning = _infer(inferred, name)
    constants = {t.name: tuple(int(d) for d in t.dims) for t in inferred.graph.initializer}
    constants.update(_constant_value_shapes(inferred))
    for tensor, dims in constants.items():
        shapes.setdefault(tensor, dims)
    outputs = [o for n in inferred.graph.node if n.op_type != "Constant" for o in n.output if o]
    missing = [o for o in outputs if o not in shapes or 0 in shapes[o]]
    if missing and warning is None:
        warning = (f"{name}: shape inference left {len(missing)} of {len(outputs)} tensors without a full shape "
                   f"(first: {missing[0]!r}); unknown sizes encode as 0 and count no FLOPs")
    if warning:
        warnings.warn(warning, stacklevel=3)
    return LoadedModel(inferred, name, shapes, constants, params, inputs, batch_size, warning)

