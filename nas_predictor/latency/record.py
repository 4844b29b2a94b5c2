"""The latency label record: one measured model, with everything needed to judge and compare it.

``LatencyLabel.to_dict()`` is plain JSON (one line of a dataset file); ``from_dict`` reads it back.
Labels from different machines, reference versions or thread settings compare only roughly.
"""

from __future__ import annotations

import functools
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# 2: the gated ratio is scaled by the kept pairs' own reference runs (reference_scale_ms), and every
# timed run is stored (target_runs_ms / reference_runs_ms) so a label can be checked against its runs.
RECORD_VERSION = 2


@dataclass
class RawStats:
    """Plain statistics of the target runs, no gating or correction.

    median_ms / p10_ms / min_ms / max_ms: over every timed target run of every pass;
    runs: their number; pairs_kept / pairs_total: (target, reference) pairs that passed the reference
    gate / were measured (0 / 0 on GPU providers, which have no reference); passes: measurement passes."""

    median_ms: float
    p10_ms: float
    min_ms: float
    max_ms: float
    runs: int
    pairs_kept: int = 0
    pairs_total: int = 0
    passes: int = 1


@dataclass
class RobustStats:
    """The protocol's estimates; the label is one of them (``LatencyLabel.estimator`` says which).

    gated_ms: median(target / reference) over kept pairs x reference_scale_ms (None if no pair was
    kept); gated_ratio: that median ratio (a label can be rescaled with it); reference_scale_ms: the
    reference's fast time within the kept pairs (their low percentile; before record version 2 the
    ratio was scaled by the tracker's reference_fast_ms instead); kept_median_ms: median of the kept
    pairs' target runs, which a gated label may not exceed by more than the protocol's tolerance;
    kept_seconds: time the kept pairs took; min_of_pass_ms: median over passes of each pass's fastest
    run; pass_min_ms: those fastest runs; median_ms: median of the timed runs (GPU providers);
    eager_ms / cuda_graph_ms: PyTorch CUDA medians run eagerly / replayed as a CUDA graph."""

    gated_ms: float | None = None
    gated_ratio: float | None = None
    kept_seconds: float = 0.0
    min_of_pass_ms: float | None = None
    pass_min_ms: list[float] = field(default_factory=list)
    median_ms: float | None = None
    eager_ms: float | None = None
    cuda_graph_ms: float | None = None
    reference_scale_ms: float | None = None
    kept_median_ms: float | None = None


@dataclass
class LatencyLabel:
    """One latency label.

    model: the file (or "<bytes>", or the name given); label_ms: the latency label in ms, for the
    whole batch; estimator: which estimate the label is ("gated-ratio", "min-of-pass", "median",
    "median-eager", "median-cuda-graph"); provider: "cpu", "cuda", "tensorrt" or "torch-cuda";
    execution_providers: what onnxruntime ran it on; batch_size: dim 0 of the data input(s);
    raw / robust: see RawStats / RobustStats; fallback: True when a short model never got enough
    pairs past the gate, or its gated label contradicted its runs, and the label is the best estimate
    left (treat as less reliable; the notes say why);
    weights_filled / filled_parameters: weight-free parameter inputs replaced by random tensors
    (their number); reference_version / reference_fast_ms: the reference model and its fast-state
    time the gated estimate scales by (None on GPU); threads / inter_op_threads: onnxruntime's intra-op /
    inter-op threads (None for torch-cuda); core: the CPU core the measuring thread was pinned to
    (None: not pinned); onnxruntime_version / torch_version / onnx_opset / onnx_producer: software and
    export; cpu_model / machine / gpu: hardware (machine = host name); protocol: the protocol's
    settings; notes: what was done to the model (weights filled, batch changed, ...); timestamp:
    UTC, ISO 8601, when the label was made; record_version: the layout of this record;
    target_runs_ms / reference_runs_ms: every timed run, one list per pass (reference runs on the CPU
    only: reference_runs_ms[p][i] ran right after target_runs_ms[p][i]), rounded to 0.1 us."""

    model: str
    label_ms: float
    estimator: str
    provider: str
    execution_providers: list[str]
    batch_size: int
    raw: RawStats
    robust: RobustStats
    fallback: bool = False
    weights_filled: bool = False
    filled_parameters: int = 0
    reference_version: str | None = None
    reference_fast_ms: float | None = None
    threads: int | None = None
    inter_op_threads: int | None = None
    core: int | None = None
    onnxruntime_version: str = ""
    torch_version: str = ""
    onnx_opset: int | None = None
    onnx_producer: str = ""
    cpu_model: str = ""
    machine: str = ""
    gpu: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timestamp: str = ""
    record_version: int = RECORD_VERSION
    target_runs_ms: list[list[float]] = field(default_factory=list)
    reference_runs_ms: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatencyLabel":
        data = dict(data)
        data["raw"] = RawStats(**data["raw"])
        data["robust"] = RobustStats(**data["robust"])
        return cls(**data)

    def summary(self) -> str:
        """One line for a terminal: label, estimator, pairs kept, batch and flags."""
        parts = [self.estimator]
        if self.raw.pairs_total:
            parts.append(f"pairs {self.raw.pairs_kept}/{self.raw.pairs_total}")
        parts.append(f"passes {self.raw.passes}")
        parts.append(f"batch {self.batch_size}")
        if self.weights_filled:
            parts.append(f"weights filled: {self.filled_parameters} random tensors")
        if self.fallback:
            parts.append("FALLBACK: less reliable, see its notes")
        return f"{self.label_ms:10.3f} ms  {self.model}  [{', '.join(parts)}]"


def stored_runs(passes) -> list[list[float]]:
    """Timed runs as stored in a record: one list per pass, milliseconds rounded to 0.1 us (4 decimals),
    far below run-to-run noise and a third of the text of full floats."""
    return [[round(float(t), 4) for t in p] for p in passes]


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    return socket.gethostname()


def utc_timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def software_versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"onnxruntime_version": onnxruntime.__version__, "torch_version": torch.__version__}
