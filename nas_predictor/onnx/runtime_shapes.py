"""Shapes that static inference cannot give, from one onnxruntime run of the model on random inputs.

Used only for the tensors the static pass (``shapes.static_shapes``) leaves unsized: ops without an
inference function, shapes computed from data values. The model is run as it is, weight-free or not:
parameters whose values were dropped (or that a weight-free file lists as inputs) are fed random values
of their declared size, which leaves every shape of a network whose shapes follow its input size exact.
The result is cached on disk by the model's content hash (``<cache dir>/onnx-shapes/<sha256>.json``),
so a second encoding of the same file never runs it again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from nas_predictor.errors import OnnxError
from nas_predictor.io import atomic_write_bytes

CACHE_VERSION = 1
_memory: dict[str, dict[str, list[int]]] = {}


def _cache_file(key: str) -> Path:
    from nas_predictor.data.paths import cache_dir

    return cache_dir() / "onnx-shapes" / f"{key}.json"


def _read_cache(key: str) -> dict[str, list[int]] | None:
    if key in _memory:
        return _memory[key]
    try:
        data = json.loads(_cache_file(key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("shapes"), dict):
        return None  # another version's or a damaged file: computed again and rewritten
    _memory[key] = data["shapes"]
    return data["shapes"]


def _write_cache(key: str, shapes: dict[str, list[int]]) -> None:
    _memory[key] = shapes
    try:
        atomic_write_bytes(json.dumps({"version": CACHE_VERSION, "shapes": shapes}).encode(), _cache_file(key))
    except OSError:  # a read-only home: the in-memory copy still serves this process
        pass


def _runnable(model: onnx.ModelProto, tensors: list[str]) -> onnx.ModelProto:
    """A copy whose outputs are the wanted tensors and whose value-less initializers are inputs."""
    run = onnx.ModelProto()
    run.CopyFrom(model)
    graph = run.graph
    kept = []
    for t in graph.initializer:
        if int(np.prod(t.dims)) > 0 and not _has_values(t):
            graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            kept.append(t)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.output[:]
    del graph.value_info[:]
    # untyped outputs: onnxruntime types them itself, where static inference may not have
    graph.output.extend(onnx.ValueInfoProto(name=name) for name in tensors)
    return run


def _has_values(t: onnx.TensorProto) -> bool:
    return bool(t.raw_data or t.float_data or t.int32_data or t.int64_data or t.double_data or t.uint64_data
                or t.string_data or t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL)


def _random_feed(arg, rng: np.random.Generator) -> np.ndarray:
    dims = arg.shape
    if any(not isinstance(d, int) or d < 0 for d in dims):
        raise OnnxError(f"input {arg.name!r} has no fixed size {dims}; export the model with fixed input sizes")
    kind = arg.type  # e.g. "tensor(float)"
    if "float" in kind or "double" in kind:
        dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64,
                 "tensor(bfloat16)": np.float32}.get(kind, np.float32)
        return rng.standard_normal(dims).astype(dtype)
    if "bool" in kind:
        return np.zeros(dims, dtype=bool)
    dtype = {"tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}.get(kind, np.int64)
    return np.zeros(dims, dtype=dtype)


def runtime_shapes(model: onnx.ModelProto, tensors: list[str], name: str) -> dict[str, tuple[int, ...]]:
    """Shapes of ``tensors`` from one onnxruntime run (cached by content); raises OnnxError, naming
    onnxruntime's complaint, when the model cannot be run (the caller adds which tensor it needed)."""
    import onnxruntime as ort

    wanted = list(dict.fromkeys(tensors))
    key = hashlib.sha256(model.SerializeToString(deterministic=True) + "\0".join(wanted).encode()).hexdigest()
    cached = _read_cache(key)
    if cached is None:
        options = ort.SessionOptions()
        # no fusion: a fused node's inner tensors would no longer exist to be read back
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 4  # a failure is raised as an OnnxError; nothing to print besides
        try:
            session = ort.InferenceSession(_runnable(model, wanted).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
            rng = np.random.default_rng(0)
            feeds = {arg.name: _random_feed(arg, rng) for arg in session.get_inputs()}
            quiet = ort.RunOptions()
            quiet.log_severity_level = 4
            outputs = session.run(None, feeds, quiet)
        except OnnxError:
            raise
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OnnxError(f"onnxruntime cannot run the model to size it: {first[:300]}") from None
        cached = {t: [int(d) for d in np.shape(out)] for t, out in zip(wanted, outputs)}
        _write_cache(key, cached)
    return {t: tuple(dims) for t, dims in cached.items()}
