"""Measured latency labels: onnxruntime on the CPU with the reference-gated protocol
(../shared/docs/latency-measurement.md), onnxruntime CUDA / TensorRT, and PyTorch CUDA timing.

- estimators: the protocol's statistics as pure functions (gating, fast-state tracking, ratio
  median, min-of-pass);
- protocol: its settings and the done / requeue decision after each pass;
- timing: timing loops over an injectable clock; pinning: one-core pinning;
- reference: the fixed reference model; prepare: weights for weight-free files, batch, inputs;
- providers: execution providers and sessions; record: the label record (every run stored);
- consistency: a stored label checked against its own runs;
- measurer: :class:`Measurer`, :func:`measure_onnx`; torch_cuda: :func:`measure_torch_cuda`.
"""

from nas_predictor.latency.errors import InconsistentLabelError, MeasurementError, ProviderUnavailableError
from nas_predictor.latency.measurer import Measurer, Outcome, measure_onnx
from nas_predictor.latency.protocol import CpuProtocol, GpuProtocol
from nas_predictor.latency.providers import PROVIDERS
from nas_predictor.latency.record import LatencyLabel, RawStats, RobustStats
from nas_predictor.latency.reference import REFERENCE_VERSION
from nas_predictor.latency.torch_cuda import measure_torch_cuda

__all__ = ["InconsistentLabelError", "MeasurementError", "ProviderUnavailableError", "Measurer", "Outcome",
           "measure_onnx", "CpuProtocol", "GpuProtocol", "PROVIDERS", "LatencyLabel", "RawStats", "RobustStats",
           "REFERENCE_VERSION", "measure_torch_cuda"]
