"""ONNX models -> ArchGraph: reading, shape inference, canonical attributes, cost model."""

from nas_predictor.onnx.convert import onnx_to_graph
from nas_predictor.onnx.reader import load_model, read_model

__all__ = ["onnx_to_graph", "load_model", "read_model"]
