"""Execution providers and onnxruntime sessions with the protocol's settings.

``cpu`` is onnxruntime's CPU provider with one intra-op and one inter-op thread, sequential
execution and every graph optimisation. ``cuda`` and ``tensorrt`` need onnxruntime-gpu (TensorRT also
its libraries); ``torch-cuda`` is PyTorch on a CUDA GPU and times torch modules, not ONNX sessions
(see nas_predictor.latency.torch_cuda).
"""

from __future__ import annotations

import onnxruntime as ort

from nas_predictor.latency.errors import MeasurementError, ProviderUnavailableError

PROVIDERS = ("cpu", "cuda", "tensorrt", "torch-cuda")
ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                 "tensorrt": "TensorrtExecutionProvider"}
# The GPU providers each provider runs on, before the CPU one that takes what they cannot run:
# TensorRT hands unsupported nodes to CUDA.
GPU_CHAINS = {"cpu": (), "cuda": ("CUDAExecutionProvider",),
              "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider")}
THREADS = 1


def check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise MeasurementError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")


def execution_providers(provider: str, device_id: int = 0) -> list:
    """The ``providers`` argument of an InferenceSession for ``provider``, after checking that this
    onnxruntime has it."""
    check_provider(provider)
    if provider == "torch-cuda":
        raise MeasurementError("provider 'torch-cuda' times a PyTorch module, not an onnxruntime session: "
                               "use nas_predictor.latency.measure_torch_cuda(module, input_shape)")
    wanted = ORT_PROVIDERS[provider]
    available = ort.get_available_providers()
    if wanted not in available:
        install = ("onnxruntime-gpu (pip install onnxruntime-gpu, matching the CUDA version) and a CUDA GPU"
                   if provider == "cuda" else
                   "onnxruntime-gpu built with TensorRT, plus the TensorRT libraries, and a CUDA GPU")
        raise ProviderUnavailableError(
            f"provider {provider!r} needs onnxruntime's {wanted}, but onnxruntime {ort.__version__} "
            f"({ort.get_device()} build) has only {', '.join(available)}; install {install}. "
            f"On a GPU machine without onnxruntime-gpu, PyTorch CUDA timing (measure_torch_cuda) works")
    options = {"device_id": device_id}
    return [*((name, options) for name in GPU_CHAINS[provider]), "CPUExecutionProvider"]


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = THREADS
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    return options


def create_session(model_bytes: bytes, providers: list, name: str) -> ort.InferenceSession:
    """An InferenceSession, checking that the first requested provider really runs the model
    (onnxruntime falls back to the CPU silently when, e.g., the CUDA libraries fail to load)."""
    try:
        session = ort.InferenceSession(model_bytes, sess_options=session_options(), providers=providers)
    except Exception as err:  # onnxruntime raises Fail, InvalidGraph, NotImplemented, ...
        raise MeasurementError(f"{name}: onnxruntime cannot load the model ({err})") from None
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if session.get_providers()[0] != wanted:
        raise ProviderUnavailableError(f"{name}: onnxruntime did not start {wanted} (the session runs on "
                                       f"{session.get_providers()}); check the CUDA / TensorRT installation")
    return session
