"""A latency source that times every candidate on this machine: :class:`MeasuredLatency`.

Each candidate's whole network is exported as the graph cache exports it (weight-free ONNX at batch 1,
``nas_predictor.data.latency_graphs.network_model``) and timed by the project's measurement protocol, the
one ``nas-predictor measure`` runs (``nas_predictor.latency.Measurer``: onnxruntime on the CPU, one
thread, pinned to one core, every run paired with the reference model and gated on it; see
docs/latency-protocol.md). The label it reports is what the protocol stores as ``label_ms``.

A measurement costs about a second (more on a busy machine) and is never quite the same twice, so each
one is kept: in memory, and in ``<cache dir>/<space cache key>-measured.jsonl`` (one JSON line per network,
appended as it is measured). A resumed search reads them back, so it sees the latencies it saw before
and takes the same path. A record counts only on the same machine (host and CPU), onnxruntime version,
reference model and protocol settings, so a cache copied elsewhere or a quick test protocol never
stands in for a real measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from strategies.constraints import LatencySource
from strategies.names import MEASURED_SETTING

if TYPE_CHECKING:
    from nas_predictor.latency import CpuProtocol, Measurer


class MeasuredLatency(LatencySource):
    """Each architecture's whole network timed on this machine (onnxruntime CPU, one thread, batch 1) with
    the project's protocol, every result remembered (see the module docstring).

    ``space``: a search space's name (a registered one, or a ``PythonSpace`` made in this process);
    ``cache``: the cache folder (default ``$NAS_PREDICTOR_CACHE`` or ``~/.cache/nas_predictor``, as the
    graph cache); ``persist=False`` keeps results in memory only; ``protocol``: the CPU protocol's
    settings (default: the documented protocol; tests pass a quick one); ``core``: the core the
    measuring thread is pinned to (None: the last one this process may use; -1: no pinning);
    ``progress``: a progress bar when several networks are measured at once.
    """

    kind = "measured"

    def __init__(self, space: str, cache: str | os.PathLike | None = None, *, persist: bool = True,
                 protocol: "CpuProtocol | None" = None, core: int | None = None, progress: bool = True,
                 measurer: "Measurer | None" = None) -> None:
        import onnxruntime

        from nas_predictor.latency import measurer as measuring
        from nas_predictor.latency.record import cpu_model, machine_id
        from nas_predictor.latency.reference import REFERENCE_VERSION
        from nas_predictor.spaces import cache_key, get_space

        get_space(space)  # an unknown name fails here, before any search starts
        self.space = space
        self.setting = MEASURED_SETTING
        self.protocol = measurer.protocol if measurer is not None else (protocol or measuring.DEFAULT_PROTOCOL)
        self.core = core
        self.progress = progress
        self._measurer = measurer  # made on the first measurement: it warms the reference model up
        # what a stored result must match to be used again
        self.context = {"machine": machine_id(), "cpu_model": cpu_model(), "onnxruntime": onnxruntime.__version__,
                        "reference": REFERENCE_VERSION, "protocol": _fingerprint(self.protocol.to_dict())}
        self.path: Path | None = None
        self._memo: dict[str, float] = {}
        self.labels: dict[str, dict] = {}  # arch -> what the protocol said about its label (see _entry)
        self.measured = 0  # networks measured by this object (the rest came from the cache)
        if persist:
            from nas_predictor.data.paths import cache_dir

            self.path = cache_dir(cache) / f"{cache_key(space)}-measured.jsonl"
            self._read()

    def _read(self) -> None:
        from nas_predictor.jsonl import read_jsonl

        for entry in read_jsonl(self.path, repair=False):  # a torn last line is repaired by the next writer
            if isinstance(entry, dict) and entry.get("context") == self.context and "arch" in entry:
                self._memo[entry["arch"]] = float(entry["latency_ms"])
                self.labels[entry["arch"]] = entry["label"]

    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        from nas_predictor.spaces import get_space

        space = get_space(self.space)
        canonical = [space.canonical(a) for a in archs]
        todo = list(dict.fromkeys(a for a in canonical if a not in self._memo))
        if todo:
            self._measure(space, todo)
        return np.array([self._memo[a] for a in canonical], dtype=np.float64)

    def _measure(self, space: Any, archs: list[str]) -> None:
        from tqdm.auto import tqdm

        from nas_predictor.data.latency_graphs import network_model
        from nas_predictor.latency import Measurer, MeasurementError

        if self._measurer is None:
            self._measurer = Measurer("cpu", core=self.core, protocol=self.protocol)
        failed: dict[str, str] = {}
        bar = tqdm(total=len(archs), desc="measuring latency", unit="net", leave=False, dynamic_ncols=True,
                   disable=not self.progress or len(archs) < 2)
        # the protocol's own window: a few networks in flight, a requeued one measured again later
        for outcome in self._measurer.measure_many(network_model(space, a) for a in archs):
            arch = archs[outcome.index]
            if outcome.error is not None:
                failed[arch] = str(outcome.error)
            else:
                self._keep(arch, outcome.label)
            bar.update()
        bar.close()
        for arch, first in failed.items():  # once more, alone: a burst of load can spoil one measurement
            try:
                self._keep(arch, self._measurer.measure(network_model(space, arch)))
            except MeasurementError as err:
                where = f"; the {len(self._memo)} measured so far are kept in {self.path}" if self.path else ""
                raise MeasurementError(f"could not measure {arch} on this machine (twice: {first}; then {err}); "
                                       f"is it very busy?{where}") from None

    def _keep(self, arch: str, label: Any) -> None:
        entry = _entry(label)
        self._memo[arch] = float(label.label_ms)
        self.labels[arch] = entry
        self.measured += 1
        if self.path is not None:
            from nas_predictor.io import file_lock
            from nas_predictor.jsonl import append_jsonl, read_jsonl

            # searches of one space on one machine may share the file: one writer at a time, and the
            # reader's repair of a torn last line only under the lock
            with file_lock(self.path.with_name(self.path.name + ".lock"), f"measured latencies {self.path}",
                           wait=True):
                read_jsonl(self.path)
                append_jsonl(self.path, {"arch": arch, "latency_ms": float(label.label_ms), "label": entry,
                                         "context": self.context})


def _entry(label: Any) -> dict:
    """The part of a protocol label a search keeps: how it was made and whether it is a flagged fallback
    (the full label, every run included, is ``nas-predictor measure --json``'s business)."""
    return {"label_ms": float(label.label_ms), "estimator": label.estimator, "fallback": bool(label.fallback),
            "median_ms": float(label.raw.median_ms), "runs": int(label.raw.runs), "timestamp": label.timestamp}


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
