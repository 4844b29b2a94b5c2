"""Errors of latency measurement. Both are NasPredictorErrors, so the command line exits with status 2."""

from nas_predictor.errors import NasPredictorError


class MeasurementError(NasPredictorError, RuntimeError):
    """A model cannot be measured (onnxruntime cannot load or run it, a bad setting, no such core)."""


class ProviderUnavailableError(MeasurementError):
    """The requested execution provider (CUDA, TensorRT, PyTorch CUDA) is not installed or sees no GPU."""


class InconsistentLabelError(MeasurementError):
    """A label would exceed the median of its own runs by more than the protocol's tolerance after
    every retry; it is refused rather than stored."""
