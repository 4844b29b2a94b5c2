"""Reading ONNX files: clear errors for non-ONNX input, batch-size override, every tensor sized."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from nas_predictor.errors import OnnxError
from nas_predictor.onnx.runtime_shapes import runtime_shapes
from nas_predictor.onnx.shapes import static_shapes

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
    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape, every op output sized
    constants: dict[str, tuple[int, ...]]  # tensors with known values: initializers, Constant outputs
    parameter_inputs: set[str]  # graph inputs that are weights (weight-free files)
    data_inputs: list[str]
    batch_size: int  # of the data inputs, as given or as the file has it (a symbolic batch reads as 1)
    # outputs of shape arithmetic computed while sizing (Shape -> Gather -> ...): constants, as
    # onnxruntime's constant folding makes them, so their ops are not part of the network
    folded: set[str]
    # tensors only an onnxruntime run could size (their shapes may depend on the input's values)
    runtime_sized: frozenset[str] = frozenset()


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


def parameter_inputs(model: onnx.ModelProto, initializers: set[str]) -> set[str]:
    """Graph inputs that are weights in a weight-free (export_params=False) file.

    Such files list the weights as ordinary graph inputs, after the network's own input(s). A graph
    input is a weight when every use of it is a parameter slot (Conv weight, BatchNorm statistics, ...),
    or when it carries the names torch's exporter gives parameters (``layer.weight``, ``onnx::Conv_12``).
    Parameters that feed ordinary op inputs (a ViT's ``cls_token`` into Concat, ``pos_embed`` into Add,
    a layer scale into Mul, LeViT's ``attention_biases`` into Gather) look like neither; so in a file
    that has weights among its inputs, only the first input that is not a weight is taken as data, and a
    network with several data inputs names them (``data_inputs``)."""
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
    rest = [name for name in candidates if name not in params and name not in named]
    if not rest:  # every input looks like a weight: the first named one is the data after all
        return params | (named - {next(name for name in candidates if name in named)}) if named else params
    if params or named:  # weight-free: the network's input comes first, everything after it is a weight
        return set(candidates) - {rest[0]}
    return params


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


def read_light(source: str | os.PathLike | bytes | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """``read_model``, on a copy of its own with the weights' values dropped (``_drop_weight_values``):
    what every later pass copies and reads, at any size of the original."""
    model, name = read_model(source)
    if isinstance(source, onnx.ModelProto):  # never edit the caller's proto
        model = onnx.ModelProto.FromString(model.SerializeToString())
    _drop_weight_values(model)
    return model, name


def _fix_input_sizes(graph: onnx.GraphProto, inputs: list[str], batch_size: int | None, name: str) -> int:
    """Set dim 0 of the data inputs to ``batch_size`` (a symbolic batch dim to 1 when none is given) and
    return the batch. Any other dim must be a number: FLOPs and shapes need the input's size."""
    batch = None
    for value in graph.input:
        if value.name not in inputs:
            continue
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            raise OnnxError(f"{name}: input {value.name!r} has no shape; export the model with a fixed input size")
        dims = value.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            if axis > 0 and not dim.HasField("dim_value"):
                raise OnnxError(f"{name}: input {value.name!r} has a symbolic size {dim.dim_param or '?'!r} in dim "
                                f"{axis}; export the model with a fixed input size")
        if not len(dims):
            continue
        if batch_size is not None or not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch_size or 1
        batch = batch or int(dims[0].dim_value)
    return batch or 1


def _unsized(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], folded: dict) -> list[str]:
    return [out for node in graph.node if node.op_type != "Constant"
            for out in node.output if out and out not in folded and (out not in shapes or 0 in shapes[out])]


def _producer(graph: onnx.GraphProto, tensor: str) -> str:
    for node in graph.node:
        if tensor in node.output:
            return f"{node.op_type} node {node.name or '(unnamed)'!r}"
    return "no node"


def load_model(
    source: str | os.PathLike | bytes | onnx.ModelProto, batch_size: int | None = None,
    data_inputs: Sequence[str] | None = None, name: str | None = None,
) -> LoadedModel:
    """Read a model, set the batch dimension of its data inputs, and size every tensor.

    Sizes come from one static pass (onnx's per-node inference, with shape arithmetic evaluated:
    ``shapes.static_shapes``) and, for whatever that leaves unsized, from one onnxruntime run on random
    inputs (``runtime_shapes``, cached by content). A tensor neither can size is an OnnxError naming
    the node that makes it: FLOPs and memory counted on unknown shapes would be silently wrong.
    """
    model, read_name = read_light(source)
    return load_light(model, batch_size, data_inputs, name or read_name)


def load_light(model: onnx.ModelProto, batch_size: int | None, data_inputs: Sequence[str] | None,
               name: str, seeds: Sequence[onnx.ValueInfoProto] = ()) -> LoadedModel:
    """``load_model`` of a proto from ``read_light``, which it edits in place (the caller's own copy).

    ``seeds``: the types of tensors no shape inference can give (outputs of ops of a custom domain), kept
    as given; every other tensor is sized as ``load_model`` says."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise OnnxError(f"batch size must be >= 1, got {batch_size}")
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
    batch = _fix_input_sizes(graph, inputs, batch_size, name)
    # the exporter's shapes were made at its own batch; outputs are inferred like every other tensor
    del graph.value_info[:]
    graph.value_info.extend(seeds)
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
    static = static_shapes(model, frozenset(v.name for v in seeds))
    shapes = static.shapes
    unsized = _unsized(graph, shapes, static.folded)
    if unsized:
        first = unsized[0]
        what = f"cannot size tensor {first!r} made by {_producer(graph, first)}"
        why = static.failures.get(first, "static inference left it unsized")
        try:
            shapes.update(runtime_shapes(model, unsized, name))
        except OnnxError as err:
            raise OnnxError(f"{name}: {what} ({why}), and {err}") from None
        left = [t for t in unsized if t not in shapes]
        if left:
            raise OnnxError(f"{name}: {what} ({why}); {len(left)} tensor(s) unsized")
    constants = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            constants[node.output[0]] = shapes.get(node.output[0], ())
    constants.update((tensor, tuple(value.shape)) for tensor, value in static.folded.items())
    for tensor, dims in constants.items():
        shapes.setdefault(tensor, dims)
    return LoadedModel(model, name, shapes, constants, params, inputs, batch, set(static.folded), frozenset(unsized))
