"""Making any ONNX file runnable for timing: weights for weight-free files, a batch size, input data.

Weight-free files (``export_params=False``) list their weights as graph inputs with no initializer.
They are found by the same rule ``onnx_to_graph`` uses (``nas_predictor.onnx.reader``: a graph input
is a weight when every use of it is a parameter slot -- Conv weight, BatchNorm statistics, ... --
or when it has torch's parameter names and another input is left as the data input), or, when the
caller names the data inputs, every other input is a weight. Each one is filled with random values
of its declared shape and type and turned into an initializer (and dropped from the graph inputs),
so onnxruntime sees constants and optimises the graph as it would the weighted model (Conv+BN
fusion, constant folding). The prepared model says which tensors were filled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from nas_predictor.latency.errors import MeasurementError
from nas_predictor.onnx.reader import parameter_inputs, read_model

_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


@dataclass
class PreparedModel:
    """A model ready for an inference session: serialized bytes, one input array per data input."""

    name: str
    model_bytes: bytes
    feeds: dict[str, np.ndarray]
    batch_size: int
    filled_parameters: list[str] = field(default_factory=list)
    opset: int | None = None
    producer: str = ""

    @property
    def weights_filled(self) -> bool:
        return bool(self.filled_parameters)


def _static_dims(value: onnx.ValueInfoProto) -> list[int | str]:
    if not value.type.HasField("tensor_type"):
        raise MeasurementError(f"input {value.name!r} is not a tensor; only tensor inputs can be measured")
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


# (op, input position) that read an integer tensor as indices: any in-range values time the same, and zeros
# are always in range
_INDEX_INPUTS = {("Gather", 1), ("GatherElements", 1), ("GatherND", 1)}


def _index_only(graph: onnx.GraphProto, name: str) -> bool:
    uses = [(node.op_type, i) for node in graph.node for i, x in enumerate(node.input) if x == name]
    return bool(uses) and all(use in _INDEX_INPUTS for use in uses)


def _random_parameter(value: onnx.ValueInfoProto, rng: np.random.Generator, model_name: str,
                      index_only: bool = False) -> onnx.TensorProto:
    """Random values for a weight: N(0, 1/fan_in) for >= 2-D tensors (bounded activations), and
    U(0.5, 1.5) for vectors (positive, so a BatchNorm variance filled this way is valid); zeros for an
    integer tensor read only as gather indices."""
    elem = value.type.tensor_type.elem_type
    dims = _static_dims(value)
    if any(not isinstance(d, int) or d <= 0 for d in dims):
        raise MeasurementError(f"{model_name}: weight-free parameter {value.name!r} has no static shape ({dims}); "
                               f"cannot invent its values")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
    if elem not in _FLOAT_TYPES:
        if not (index_only and np.issubdtype(dtype, np.integer)):
            raise MeasurementError(f"{model_name}: weight-free parameter {value.name!r} has type "
                                   f"{onnx.TensorProto.DataType.Name(elem)}; only float weights, and integer "
                                   f"tensors used only as Gather indices, can be filled (export with weights, or "
                                   f"name the data inputs)")
        # index tables of weight-free exports (timm's attention_bias_idxs): zeros are valid indices, and a
        # gather costs the same whichever rows it reads
        return numpy_helper.from_array(np.zeros(dims, dtype=dtype), value.name)
    if len(dims) >= 2:
        fan_in = int(np.prod(dims[1:]))
        array = rng.standard_normal(dims) / np.sqrt(fan_in)
    else:
        array = rng.uniform(0.5, 1.5, size=dims)
    return numpy_helper.from_array(array.astype(dtype), value.name)


def _input_array(value: onnx.ValueInfoProto, dims: list[int], rng: np.random.Generator) -> np.ndarray:
    elem = value.type.tensor_type.elem_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
    if elem in _FLOAT_TYPES:
        return rng.standard_normal(dims).astype(dtype)
    return np.zeros(dims, dtype=dtype)  # integer / bool inputs (indices, masks): zeros are always valid


def prepare_model(
    source: str | os.PathLike | bytes | onnx.ModelProto, *, batch: int | None = None,
    data_inputs: Sequence[str] | None = None, seed: int = 0,
) -> PreparedModel:
    """Read ``source``, fill missing weights, set the batch (dim 0 of the data inputs), make input data.

    Raises OnnxError for a file that is not ONNX and MeasurementError for one that cannot be made
    runnable (symbolic non-batch dimensions, non-float weight-free parameters, a bad batch)."""
    if batch is not None and batch < 1:
        raise MeasurementError(f"batch size must be >= 1, got {batch}")
    model, name = read_model(source)
    model = onnx.ModelProto.FromString(model.SerializeToString())  # never edit the caller's proto
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    candidates = [i for i in graph.input if i.name not in initializers]
    if data_inputs is not None:
        unknown = sorted(set(data_inputs) - {i.name for i in candidates})
        if unknown:
            raise MeasurementError(f"{name}: data input(s) {unknown} are not graph inputs without a value "
                                   f"(inputs: {[i.name for i in candidates]})")
        params = {i.name for i in candidates} - set(data_inputs)
    else:
        params = parameter_inputs(model, initializers)
    data = [i for i in candidates if i.name not in params]
    if not data:
        raise MeasurementError(f"{name}: every graph input looks like a weight; name the data input(s)")

    rng = np.random.default_rng(seed)
    filled = []
    for value in candidates:
        if value.name in params:
            graph.initializer.append(_random_parameter(value, rng, name, _index_only(graph, value.name)))
            filled.append(value.name)
    if filled and model.ir_version >= 4:  # IR >= 4: initializers need not be inputs; constants fold
        kept = [i for i in graph.input if i.name not in params]
        del graph.input[:]
        graph.input.extend(kept)  # extend copies: look the data inputs up again
    data_names = {i.name for i in data}
    data = [i for i in graph.input if i.name in data_names]

    feeds: dict[str, np.ndarray] = {}
    used_batch = batch
    for value in data:
        dims = _static_dims(value)
        proto_dims = value.type.tensor_type.shape.dim
        if dims:
            if batch is not None or not isinstance(dims[0], int) or dims[0] <= 0:
                if used_batch is None:  # no override and a symbolic batch: measure batch 1
                    used_batch = 1
                proto_dims[0].Clear()
                proto_dims[0].dim_value = used_batch
                dims[0] = used_batch
            elif used_batch is None:
                used_batch = dims[0]
        bad = [(axis, d) for axis, d in enumerate(dims) if not isinstance(d, int) or d <= 0]
        if bad:
            raise MeasurementError(f"{name}: input {value.name!r} has symbolic dimension(s) {bad} (axis, name) "
                                   f"besides the batch; export with a static input shape")
        feeds[value.name] = _input_array(value, dims, rng)
    if batch is not None:
        for value in graph.output:  # the old batch in the declared outputs would contradict the new one
            dims = value.type.tensor_type.shape.dim
            if len(dims):
                dims[0].Clear()
                dims[0].dim_param = "batch"
        del graph.value_info[:]  # stale intermediate shapes from the exporter
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    try:
        model_bytes = model.SerializeToString()
    except Exception as err:  # protobuf's 2 GB limit
        raise MeasurementError(f"{name}: cannot serialize the prepared model ({err})") from None
    return PreparedModel(name, model_bytes, feeds, used_batch or 1, filled, opset,
                         f"{model.producer_name} {model.producer_version}".strip())
