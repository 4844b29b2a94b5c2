"""Exception types. Every error names the thing that was wrong so a user can fix the input."""


class NasPredictorError(Exception):
    """Base class for all errors raised by nas_predictor."""


class GraphError(NasPredictorError, ValueError):
    """An ArchGraph is malformed (empty, dangling edge, cycle, non-finite value)."""


class ConfigError(NasPredictorError, ValueError):
    """A configuration file or override has an unknown key or an invalid value."""


class DataError(NasPredictorError, ValueError):
    """Benchmark data is missing, malformed or contains invalid labels."""


class CheckpointError(NasPredictorError, ValueError):
    """A checkpoint file is missing, truncated, corrupt or of an unknown format."""


class ArchError(NasPredictorError, ValueError):
    """An architecture description (e.g. an arch string) is malformed."""


class TrainingError(NasPredictorError, RuntimeError):
    """Training diverged (non-finite loss)."""


class OnnxError(NasPredictorError, ValueError):
    """A file is not a readable ONNX model (corrupt, truncated, or another format)."""
