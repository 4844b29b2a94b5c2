"""PyTorch CUDA timing of a torch module: CUDA events, eagerly and replayed as a CUDA graph.

For GPU machines without onnxruntime-gpu: the label is the PyTorch CUDA latency of the same plain
torch model whose ONNX graph was exported on the CPU side (pass that file as ``onnx_source``; it is
only read for the record). Each repeat is timed between two CUDA events recorded on the current
stream around one forward pass; events are read after a final ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import nn

from nas_predictor.latency.errors import MeasurementError, ProviderUnavailableError
from nas_predictor.latency.protocol import GpuProtocol
from nas_predictor.latency.record import (LatencyLabel, RawStats, RobustStats, cpu_model, machine_id,
                                          software_versions, stored_runs, utc_timestamp)
from nas_predictor.latency.estimators import summarize
from nas_predictor.latency.timing import timed_runs

MODES = ("eager", "graph")


class CudaEventClock:
    """Marks are CUDA events recorded on the current stream; elapsed times read after a sync."""

    def mark(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(self, start: torch.cuda.Event, end: torch.cuda.Event) -> float:
        return float(start.elapsed_time(end))

    def sync(self) -> None:
        torch.cuda.synchronize()


def check_arguments(input_shape: Sequence[int], batch: int | None, mode: str, cuda_graphs: bool) -> tuple[int, ...]:
    """The input shape to time (batch applied); clear errors for bad arguments."""
    shape = tuple(input_shape)
    if not shape or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in shape):
        raise MeasurementError(f"input_shape must be positive integers, e.g. (1, 3, 224, 224); got {input_shape!r}")
    if batch is not None:
        if batch < 1:
            raise MeasurementError(f"batch size must be >= 1, got {batch}")
        shape = (batch, *shape[1:])
    if mode not in MODES:
        raise MeasurementError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "graph" and not cuda_graphs:
        raise MeasurementError("mode='graph' labels with the CUDA-graph time: it needs cuda_graphs=True")
    return shape


def require_cuda() -> None:
    if not torch.cuda.is_available():
        cuda = torch.version.cuda
        build = f"a CUDA {cuda} build" if cuda else "a CPU-only build"
        raise ProviderUnavailableError(
            f"provider 'torch-cuda' needs a CUDA GPU, but torch {torch.__version__} ({build}) sees none; "
            f"run on a GPU machine with a CUDA build of torch, or measure the ONNX file with provider 'cpu'")


def _capture(module: nn.Module, x: torch.Tensor) -> torch.cuda.CUDAGraph:
    """A CUDA graph of one forward pass; warmed up on a side stream first, as capture requires."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            module(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(x)
    torch.cuda.synchronize()
    return graph


def measure_torch_cuda(
    module: nn.Module, input_shape: Sequence[int], *, batch: int | None = None,
    onnx_source: str | os.PathLike | None = None, mode: str = "eager", cuda_graphs: bool = True,
    protocol: GpuProtocol | None = None, device: int = 0, name: str | None = None,
) -> LatencyLabel:
    """Time ``module`` on ``input_shape`` (float32, batch first) on CUDA ``device``.

    Eager runs are always timed; with ``cuda_graphs`` a captured CUDA graph of the forward pass is
    timed too (when capture fails -- an op that cannot be captured -- only eager is stored, with a
    note). ``mode`` picks which median is the label. The module is moved to the GPU and set to eval.
    """
    shape = check_arguments(input_shape, batch, mode, cuda_graphs)
    protocol = protocol or GpuProtocol()
    require_cuda()
    dev = torch.device("cuda", device)
    module = module.to(dev).eval()
    x = torch.randn(shape, device=dev)
    clock = CudaEventClock()
    notes = []
    with torch.no_grad():
        eager = timed_runs(lambda: module(x), clock, warmup=protocol.warmup_runs, repeats=protocol.repeats)
        graph_times = None
        if cuda_graphs:
            try:
                graph = _capture(module, x)
            except RuntimeError as err:
                if mode == "graph":
                    raise MeasurementError(f"CUDA graph capture failed ({err}); use mode='eager'") from None
                notes.append(f"CUDA graph capture failed ({err}); eager time only")
            else:
                graph_times = timed_runs(graph.replay, clock, warmup=protocol.warmup_runs, repeats=protocol.repeats)
    chosen = graph_times if mode == "graph" else eager
    runs = summarize(chosen)
    eager_ms = summarize(eager).median_ms
    graph_ms = summarize(graph_times).median_ms if graph_times else None
    opset, producer, model = None, "", name or type(module).__name__
    if onnx_source is not None:
        from nas_predictor.onnx.reader import read_model

        proto, model = read_model(onnx_source)
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        producer = f"{proto.producer_name} {proto.producer_version}".strip()
        model = name or model
    return LatencyLabel(
        model=model, label_ms=runs.median_ms, estimator="median-cuda-graph" if mode == "graph" else "median-eager",
        provider="torch-cuda", execution_providers=[f"torch {torch.__version__} CUDA {torch.version.cuda}"],
        batch_size=shape[0], raw=RawStats(runs.median_ms, runs.p10_ms, runs.min_ms, runs.max_ms, runs.runs),
        robust=RobustStats(min_of_pass_ms=runs.min_ms, pass_min_ms=[runs.min_ms], median_ms=runs.median_ms,
                           eager_ms=eager_ms, cuda_graph_ms=graph_ms),
        core=None, onnx_opset=opset, onnx_producer=producer, cpu_model=cpu_model(), machine=machine_id(),
        gpu=torch.cuda.get_device_name(dev), protocol={**protocol.to_dict(), "mode": mode, "cuda_graphs": cuda_graphs},
        notes=notes, timestamp=utc_timestamp(), target_runs_ms=stored_runs([chosen]), **software_versions())
