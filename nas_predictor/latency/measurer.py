"""Measuring ONNX models with onnxruntime: :class:`Measurer` (many models, one set-up) and :func:`measure_onnx`.

On the CPU a measurer keeps the reference model's session loaded and its fast-state tracker running
across every model it measures, so a dataset builder creates one and calls it model after model in
one long-lived process. :meth:`Measurer.measure_many` keeps a small window of models in flight and
interleaves their passes: a model requeued by the protocol (too few pairs passed the gate, or a long
model's next pass) is measured again after the others, i.e. later, as the protocol asks.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from nas_predictor.errors import NasPredictorError
from nas_predictor.latency.errors import InconsistentLabelError, MeasurementError
from nas_predictor.latency.estimators import ReferenceTracker, summarize
from nas_predictor.latency.pinning import choose_core, pinned
from nas_predictor.latency.prepare import PreparedModel, prepare_model
from nas_predictor.latency.protocol import MEDIAN, CpuProtocol, Decision, GpuProtocol, decide, is_long, pass_complete
from nas_predictor.latency.providers import THREADS, check_provider, create_session, execution_providers
from nas_predictor.latency.record import (LatencyLabel, RawStats, RobustStats, cpu_model, machine_id,
                                          software_versions, stored_runs, utc_timestamp)
from nas_predictor.latency.reference import REFERENCE_INPUT_NAME, REFERENCE_INPUT_SHAPE, REFERENCE_VERSION, reference_onnx
from nas_predictor.latency.timing import PerfClock, paired_runs, timed_runs

DEFAULT_PROTOCOL = CpuProtocol()
DEFAULT_GPU_PROTOCOL = GpuProtocol()

Source = str | os.PathLike | bytes | onnx.ModelProto


@dataclass
class Outcome:
    """One model's result from :meth:`Measurer.measure_many`: a label, or the error that stopped it."""

    index: int  # position in the sources given
    model: str
    label: LatencyLabel | None = None
    error: NasPredictorError | None = None


@dataclass
class _Job:
    index: int
    prepared: PreparedModel
    session: ort.InferenceSession
    run: Callable[[], object]
    notes: list[str]
    target_passes: list[list[float]] = field(default_factory=list)
    reference_passes: list[list[float]] = field(default_factory=list)
    long: bool | None = None
    last_pass_end: float = -math.inf


def _source_name(source: Source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(source, onnx.ModelProto):
        return "<ModelProto>"
    return str(source)


class Measurer:
    """Latency labels of ONNX models on one provider with one fixed protocol.

    provider: "cpu" (the reference-gated protocol), "cuda" or "tensorrt" (onnxruntime-gpu: warm-up,
    median of repeats); core: CPU core the measuring thread is pinned to during each pass (None: the
    last core this process may use; -1: no pinning); protocol / gpu_protocol: settings (defaults:
    the documented protocol); seed: of the random input data and filled weights.
    """

    def __init__(self, provider: str = "cpu", *, core: int | None = None, protocol: CpuProtocol | None = None,
                 gpu_protocol: GpuProtocol | None = None, device_id: int = 0, seed: int = 0) -> None:
        check_provider(provider)
        self.provider = provider
        self.device_id = device_id
        self.seed = seed
        self.protocol = protocol or DEFAULT_PROTOCOL
        self.gpu_protocol = gpu_protocol or DEFAULT_GPU_PROTOCOL
        self._providers = execution_providers(provider, device_id)  # clear error when not installed
        self.core = choose_core(core)
        self._clock = PerfClock()
        self.tracker = ReferenceTracker(self.protocol.fast_percentile, self.protocol.reference_window)
        self._reference_run: Callable[[], object] | None = None
        if provider == "cpu":
            self._start_reference()

    # --- set-up -----------------------------------------------------------------------------------

    def _start_reference(self) -> None:
        session = create_session(reference_onnx(), self._providers, "reference model")
        feeds = {REFERENCE_INPUT_NAME: np.random.default_rng(0).standard_normal(REFERENCE_INPUT_SHAPE).astype(np.float32)}
        self._reference_session = session  # kept alive with the measurer

        def run() -> object:
            return session.run(None, feeds)

        n = self.protocol.reference_warmup_runs
        with pinned(self.core):
            times = timed_runs(run, self._clock, warmup=min(3, n), repeats=max(1, n - 3))
        self.tracker.add(times)
        self._reference_run = run

    def warm_reference(self, seconds: float) -> float | None:
        """Run the reference model alone for about ``seconds`` more and return its fast-state time (None
        off the CPU). A measurer started while the machine is busy reads the reference slow; more runs
        let the tracker find the fast state that the labels are scaled by."""
        if self._reference_run is None:
            return None
        deadline = time.perf_counter() + seconds
        with pinned(self.core):
            while time.perf_counter() < deadline:
                self.tracker.add(timed_runs(self._reference_run, self._clock, warmup=0, repeats=10))
        return self.tracker.fast_ms

    def _runner(self, session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        if self.provider == "cpu":
            return lambda: session.run(None, feeds)
        # GPU: inputs copied to the device once, outputs left there, so a run times the graph only
        binding = session.io_binding()
        device_inputs = [ort.OrtValue.ortvalue_from_numpy(a, "cuda", self.device_id) for a in feeds.values()]
        for name, value in zip(feeds, device_inputs):
            binding.bind_ortvalue_input(name, value)
        for output in session.get_outputs():
            binding.bind_output(output.name, "cuda", self.device_id)

        def run() -> None:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()  # the run is over when the outputs are ready

        run.inputs = device_inputs  # type: ignore[attr-defined]  # keep the device buffers alive
        return run

    def _prepare(self, index: int, source: Source, batch: int | None, data_inputs: Sequence[str] | None) -> _Job:
        prepared = prepare_model(source, batch=batch, data_inputs=data_inputs, seed=self.seed)
        session = create_session(prepared.model_bytes, self._providers, prepared.name)
        notes = []
        if prepared.weights_filled:
            notes.append(f"weight-free file: {len(prepared.filled_parameters)} parameter inputs filled with random "
                         f"values and made initializers")
        if batch is not None:
            notes.append(f"batch set to {batch} (dim 0 of the data inputs)")
        try:
            run = self._runner(session, prepared.feeds)
            with pinned(self.core):
                for _ in range(max(1, self.protocol.warmup_runs if self.provider == "cpu" else 1)):
                    run()
        except Exception as err:
            raise MeasurementError(f"{prepared.name}: onnxruntime failed to run the model at batch "
                                   f"{prepared.batch_size} ({err})") from None
        return _Job(index, prepared, session, run, notes)

    # --- measuring --------------------------------------------------------------------------------

    def _cpu_pass(self, job: _Job) -> Decision:
        protocol = self.protocol
        if job.target_passes:  # a requeued model: let some time pass since its last pass
            wait = protocol.retry_gap_s - (time.monotonic() - job.last_pass_end)
            if wait > 0:
                time.sleep(wait)

        def stop(targets: Sequence[float], references: Sequence[float]) -> bool:
            return pass_complete(targets, references, self.tracker.fast_with(references), protocol)

        with pinned(self.core):
            targets, references = paired_runs(job.run, self._reference_run, self._clock,
                                              warmup=protocol.pass_warmup_runs, stop=stop)
        job.last_pass_end = time.monotonic()
        self.tracker.add(references)
        job.target_passes.append(targets)
        job.reference_passes.append(references)
        if job.long is None:
            job.long = is_long(targets, protocol)
        try:
            decision = decide(job.target_passes, job.reference_passes, self.tracker.fast_ms, job.long, protocol)
        except InconsistentLabelError as err:
            raise InconsistentLabelError(f"{job.prepared.name}: {err}") from None
        if decision.remeasure:
            job.notes.append(f"measured again after pass {len(job.target_passes)}: {decision.remeasure}")
        return decision

    def _common(self, job: _Job) -> dict:
        prepared = job.prepared
        return dict(model=prepared.name, provider=self.provider,
                    execution_providers=list(job.session.get_providers()), batch_size=prepared.batch_size,
                    weights_filled=prepared.weights_filled, filled_parameters=len(prepared.filled_parameters),
                    threads=THREADS, inter_op_threads=THREADS, core=self.core, onnx_opset=prepared.opset,
                    onnx_producer=prepared.producer, cpu_model=cpu_model(), machine=machine_id(),
                    notes=list(job.notes), timestamp=utc_timestamp(), **software_versions())

    def _cpu_label(self, job: _Job, decision: Decision) -> LatencyLabel:
        runs = summarize([t for p in job.target_passes for t in p])
        gated = decision.gated
        raw = RawStats(runs.median_ms, runs.p10_ms, runs.min_ms, runs.max_ms, runs.runs, gated.kept, gated.total,
                       len(job.target_passes))
        robust = RobustStats(gated_ms=gated.label_ms, gated_ratio=gated.ratio, kept_seconds=gated.kept_seconds,
                             min_of_pass_ms=decision.min_of_pass_ms, pass_min_ms=decision.pass_min_ms,
                             reference_scale_ms=gated.scale_ms, kept_median_ms=gated.kept_median_ms)
        notes = []
        if decision.refused:
            notes.append(f"fallback: min-of-pass label, the gated label was refused after "
                         f"{len(job.target_passes)} passes: {decision.refused}")
        elif decision.fallback:
            notes.append(f"fallback: {gated.kept} of {gated.total} pairs passed the reference gate "
                         f"(needs {self.protocol.min_pairs} and {self.protocol.min_seconds} s) after "
                         f"{len(job.target_passes)} passes")
        if job.long:
            notes.append(f"long model (fastest first-pass run > {self.protocol.long_ms} ms): min-of-pass label")
        label = LatencyLabel(label_ms=decision.label_ms, estimator=decision.estimator, raw=raw, robust=robust,
                             fallback=decision.fallback, reference_version=REFERENCE_VERSION,
                             reference_fast_ms=gated.fast_ms, protocol=self.protocol.to_dict(),
                             target_runs_ms=stored_runs(job.target_passes),
                             reference_runs_ms=stored_runs(job.reference_passes), **self._common(job))
        label.notes.extend(notes)
        return label

    def _gpu_label(self, job: _Job) -> LatencyLabel:
        with pinned(self.core):
            times = timed_runs(job.run, self._clock, warmup=self.gpu_protocol.warmup_runs,
                               repeats=self.gpu_protocol.repeats)
        runs = summarize(times)
        raw = RawStats(runs.median_ms, runs.p10_ms, runs.min_ms, runs.max_ms, runs.runs)
        robust = RobustStats(min_of_pass_ms=runs.min_ms, pass_min_ms=[runs.min_ms], median_ms=runs.median_ms)
        return LatencyLabel(label_ms=runs.median_ms, estimator=MEDIAN, raw=raw, robust=robust,
                            protocol=self.gpu_protocol.to_dict(), target_runs_ms=stored_runs([times]),
                            **self._common(job))

    def _step(self, job: _Job) -> LatencyLabel | None:
        """One pass of ``job``: its label, or None when it goes back to the queue."""
        try:
            if self.provider != "cpu":
                return self._gpu_label(job)
            decision = self._cpu_pass(job)
        except NasPredictorError:
            raise
        except Exception as err:  # onnxruntime failing mid-measurement
            raise MeasurementError(f"{job.prepared.name}: measurement failed ({err})") from None
        return None if decision.action == "requeue" else self._cpu_label(job, decision)

    def measure_many(self, sources: Iterable[Source], *, batch: int | None = None,
                     data_inputs: Sequence[str] | None = None, window: int = 4) -> Iterator[Outcome]:
        """Measure every source; yield one :class:`Outcome` per source, in the order they finish.

        A source that cannot be read or run yields an Outcome with ``error`` set; the others go on.
        ``window`` models are in flight at once (their sessions loaded), and their passes interleave."""
        if batch is not None and batch < 1:
            raise MeasurementError(f"batch size must be >= 1, got {batch}")
        if window < 1:
            raise MeasurementError(f"window must be >= 1, got {window}")
        todo = enumerate(sources)
        pending: deque[_Job] = deque()
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    index, source = next(todo)
                except StopIteration:
                    exhausted = True
                    break
                try:
                    pending.append(self._prepare(index, source, batch, data_inputs))
                except NasPredictorError as err:
                    yield Outcome(index, _source_name(source), error=err)
            if not pending:
                return
            job = pending.popleft()
            try:
                label = self._step(job)
            except NasPredictorError as err:
                yield Outcome(job.index, job.prepared.name, error=err)
                continue
            if label is None:
                pending.append(job)
            else:
                yield Outcome(job.index, job.prepared.name, label=label)

    def measure(self, source: Source, *, batch: int | None = None, data_inputs: Sequence[str] | None = None,
                name: str | None = None) -> LatencyLabel:
        """The label of one model (every pass and retry done here); errors are raised."""
        outcome = next(self.measure_many([source], batch=batch, data_inputs=data_inputs, window=1))
        if outcome.error is not None:
            raise outcome.error
        if name is not None:
            outcome.label.model = name
        return outcome.label


def measure_onnx(source: Source, provider: str = "cpu", batch: int | None = None, *, core: int | None = None,
                 protocol: CpuProtocol | None = None, gpu_protocol: GpuProtocol | None = None,
                 data_inputs: Sequence[str] | None = None, name: str | None = None) -> LatencyLabel:
    """Measure one ONNX model (path, bytes or ModelProto). For many models, keep one :class:`Measurer`."""
    measurer = Measurer(provider, core=core, protocol=protocol, gpu_protocol=gpu_protocol)
    return measurer.measure(source, batch=batch, data_inputs=data_inputs, name=name)
