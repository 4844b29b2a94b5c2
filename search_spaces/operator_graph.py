"""Shared pieces of the operator micro-benchmark: seeded shape draws and the ONNX graph builder."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "input"
OUTPUT_NAME = "output"


# --- drawing -------------------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
    """One of ``options`` as the plain Python value (JSON-serialisable)."""
    index = int(rng.choice(len(options), p=p)) if p is not None else int(rng.integers(len(options)))
    value = options[index]
    return value.item() if isinstance(value, np.generic) else value


def _log_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer drawn log-uniformly from [low, high]."""
    return int(min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high)))))))


def _channels(rng: np.random.Generator, low: int = 8, high: int = 1024) -> int:
    """Channels, log-uniform; most networks use multiples of 8, scaled ones (nn-Meter's) need not."""
    c = _log_int(rng, low, high)
    if c >= 16 and rng.random() < 0.75:
        c = min(high, max(low, 8 * round(c / 8)))
    return c


def _spatial(rng: np.random.Generator, low: int = 7, high: int = 112) -> int:
    return _log_int(rng, low, high)


def _tokens(rng: np.random.Generator) -> int:
    """A token count: a square grid of side 4..56 (16..3136 tokens), a class token in a quarter of draws."""
    side = _log_int(rng, 4, 56)
    return side * side + int(rng.random() < 0.25)


def _dim(rng: np.random.Generator, low: int = 32, high: int = 1024) -> int:
    return _channels(rng, low, high)


# --- building ------------------------------------------------------------------------------------------

class _Graph:
    """Collects one operator's graph: data inputs first, then weight inputs, constants as initializers."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.data: list[onnx.ValueInfoProto] = []
        self.weights: list[onnx.ValueInfoProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self.outputs: list[str] = []
        self._names: dict[str, int] = {}

    def _name(self, stem: str) -> str:
        n = self._names.get(stem, 0)
        self._names[stem] = n + 1
        return stem if n == 0 else f"{stem}_{n}"

    def input(self, shape: Sequence[int], name: str = INPUT_NAME) -> str:
        """A data input; ``shape`` without the batch dimension."""
        name = self._name(name)
        self.data.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [self.batch, *shape]))
        return name

    def weight(self, name: str, shape: Sequence[int]) -> str:
        """A weight-free parameter (a graph input named like torch's parameters: ``<layer>.weight``)."""
        name = self._name(name)
        self.weights.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        name = self._name(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def scalar(self, value: float) -> str:
        """A float scalar as a Constant node (how the exporter writes the GELU pattern's numbers)."""
        name = self._name("const")
        self.nodes.append(helper.make_node("Constant", [], [name], name=name,
                                           value=numpy_helper.from_array(np.array(value, dtype=np.float32))))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> Any:
        stem = self._name(op.lower())
        names = [f"{stem}_out" if outputs == 1 else f"{stem}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=stem, **attrs))
        return names[0] if outputs == 1 else names

    def output(self, *names: str) -> None:
        self.outputs.extend(names)

    def model(self, kind: str, opset: int) -> onnx.ModelProto:
        outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in self.outputs]
        graph = helper.make_graph(self.nodes, kind, self.data + self.weights, outputs, self.initializers)
        model = helper.make_model(graph, producer_name="nas-predictor search_spaces.operators",
                                  opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8  # onnxruntime 1.14+ reads IR 8 (opset 17's)
        # declared output shapes and intermediate value_info, as an exporter writes them; strict: a
        # graph whose shapes do not agree fails here, not in the measurer
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
