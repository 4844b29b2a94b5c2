"""The measurement protocol's settings and decisions (pure: no clock, no model).

A model is measured in *passes*. A pass is a run of (target run, reference run) pairs on the pinned
core, stopped by :func:`pass_complete`. After each pass :func:`decide` says whether the model is
done or goes back to the queue for another pass:

- a model whose fastest run in its first pass is under ``long_ms`` (40 ms) is *short*: its label is
  the gated ratio; when too few pairs pass the gate it is requeued (at most ``max_retries`` times,
  the pairs of every pass pooled), and after that a flagged fallback is stored;
- a *long* model gets ``long_passes`` passes and its label is the min-of-pass estimate (the gated
  ratio is stored too);
- a label that exceeds the median of its runs by more than ``tolerance`` (of its kept pairs' target
  runs or of all its target runs, see :func:`runs_medians`) is never emitted: the
  model is measured again (another pass, pooled) while it has retries left (at most ``max_retries``
  passes beyond the first possible finish: the first pass of a short model, the ``long_passes``-th of a
  long one); after that a gated label gives way to the min-of-pass estimate as a flagged fallback when
  that one agrees with the runs, and otherwise
  :class:`~nas_predictor.latency.errors.InconsistentLabelError` is raised: no label is stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from nas_predictor.latency.errors import InconsistentLabelError, MeasurementError
from nas_predictor.latency.estimators import (GatedEstimate, gated_estimate, label_contradicts_runs, min_of_pass,
                                              pass_minima)

GATED = "gated-ratio"
MIN_OF_PASS = "min-of-pass"
MEDIAN = "median"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise MeasurementError(message)


@dataclass(frozen=True)
class CpuProtocol:
    """Settings of the reference-gated protocol; the defaults are the documented protocol."""

    tolerance: float = 1.12          # keep pairs whose reference run is <= tolerance x fast-state time
    fast_percentile: float = 5.0     # the reference's fast-state time: this running percentile
    min_pairs: int = 10              # a gated label needs this many kept pairs ...
    min_seconds: float = 0.3         # ... taking this long (target + reference runs)
    max_retries: int = 3             # requeues of a short model before the flagged fallback
    long_ms: float = 40.0            # fastest first-pass run above this: a long model (min-of-pass)
    long_passes: int = 3             # passes of a long model
    warmup_runs: int = 3             # target runs after its session is created, not timed
    pass_warmup_runs: int = 1        # pairs discarded at the start of every pass
    min_pass_pairs: int = 3          # a pass never stops before this many pairs ...
    max_pass_seconds: float = 2.0    # ... and stops after this much measured time (or the gate is met)
    max_pairs: int = 400             # hard cap on the pairs of one pass
    reference_warmup_runs: int = 20  # reference runs when the measurer starts (seed the tracker)
    reference_window: int = 2000     # reference runs the fast-state percentile looks at
    retry_gap_s: float = 1.0         # least time between two passes of one model (sleep if needed)

    def __post_init__(self) -> None:
        _check(self.tolerance >= 1.0, f"tolerance must be >= 1, got {self.tolerance}")
        _check(0 <= self.fast_percentile <= 100, f"fast_percentile must be in [0, 100], got {self.fast_percentile}")
        for name in ("min_pairs", "min_pass_pairs", "max_pairs", "long_passes", "reference_window"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_seconds", "max_retries", "long_ms", "warmup_runs", "pass_warmup_runs",
                     "max_pass_seconds", "reference_warmup_runs", "retry_gap_s"):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _check(self.max_pairs >= self.min_pass_pairs,
               f"max_pairs ({self.max_pairs}) must be >= min_pass_pairs ({self.min_pass_pairs})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GpuProtocol:
    """GPU timing (onnxruntime CUDA / TensorRT, PyTorch CUDA): warm-up, then the median of repeats."""

    warmup_runs: int = 10
    repeats: int = 100

    def __post_init__(self) -> None:
        _check(self.warmup_runs >= 0, f"warmup_runs must be >= 0, got {self.warmup_runs}")
        _check(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")

    def to_dict(self) -> dict:
        return asdict(self)


def pass_complete(target_ms: Sequence[float], reference_ms: Sequence[float], fast_ms: float,
                  protocol: CpuProtocol) -> bool:
    """Whether the pass measured so far can stop: the gate is satisfied, or it hit its time / pair cap."""
    n = len(target_ms)
    if n >= protocol.max_pairs:
        return True
    if n < protocol.min_pass_pairs:
        return False
    if (sum(target_ms) + sum(reference_ms)) / 1000.0 >= protocol.max_pass_seconds:
        return True
    return gated(target_ms, reference_ms, fast_ms, protocol).ok


def gated(target_ms: Sequence[float], reference_ms: Sequence[float], fast_ms: float,
          protocol: CpuProtocol) -> GatedEstimate:
    return gated_estimate(target_ms, reference_ms, fast_ms, tolerance=protocol.tolerance,
                          min_pairs=protocol.min_pairs, min_seconds=protocol.min_seconds,
                          scale_percentile=protocol.fast_percentile)


def is_long(first_pass_target_ms: Sequence[float], protocol: CpuProtocol) -> bool:
    """A long model: even its fastest run of the first pass exceeds ``long_ms``."""
    return min(first_pass_target_ms) > protocol.long_ms


@dataclass(frozen=True)
class Decision:
    """What to do after a pass. ``action`` is "requeue" (label fields None) or "done".

    runs_median_ms: the median the label is checked against (None on a requeue): for the gated ratio
    the lower of its kept pairs' target runs' median and all its target runs' median, for min-of-pass
    all its target runs' median;
    remeasure: why an otherwise finished model was requeued (its label contradicted its runs);
    refused: why the gated label was refused for the flagged min-of-pass fallback (None otherwise)."""

    action: str
    label_ms: float | None
    estimator: str | None
    fallback: bool
    gated: GatedEstimate
    min_of_pass_ms: float | None
    pass_min_ms: list[float]
    runs_median_ms: float | None = None
    remeasure: str | None = None
    refused: str | None = None


def runs_medians(estimator: str, estimate: GatedEstimate, targets: Sequence[float]) -> dict[str, float]:
    """The medians a label of ``estimator`` may not exceed by more than the tolerance, by name.

    A gated label is made from its kept pairs' target runs, so it must agree with them (what the
    scaling by the tracker's time broke). It must also agree with *all* its target runs: the gate
    picks pairs by their reference run, and under CPU contention on the pinned core (time slices of a
    few ms) a fast reference run goes with a slowed target run, so the kept pairs can be the slowed
    ones -- measured here under load: 49 of 318 pairs kept, their targets' median 5.6 ms, all runs'
    median 1.6 ms. No host state makes a model run faster than it is, so a label above the bulk of
    its own runs is always the estimator's error."""
    every = float(np.median(targets))
    if estimator == GATED and estimate.kept_median_ms is not None:
        return {"kept pairs' target runs": estimate.kept_median_ms, "target runs": every}
    return {"target runs": every}


def decide(target_passes: Sequence[Sequence[float]], reference_passes: Sequence[Sequence[float]],
           fast_ms: float, long: bool, protocol: CpuProtocol) -> Decision:
    """Done or requeue, and the label, from every pass of a model so far (pairs pooled over passes)."""
    if len(target_passes) != len(reference_passes) or not target_passes:
        raise ValueError("decide needs the same number (>= 1) of target and reference passes")
    targets = [t for p in target_passes for t in p]
    references = [r for p in reference_passes for r in p]
    estimate = gated(targets, references, fast_ms, protocol)
    mop = min_of_pass(target_passes)
    minima = pass_minima(target_passes)
    passes = len(target_passes)

    def contradiction(label: float, estimator: str) -> tuple[str | None, float]:
        name, runs_median = min(runs_medians(estimator, estimate, targets).items(), key=lambda kv: kv[1])
        if not label_contradicts_runs(label, runs_median, protocol.tolerance):
            return None, runs_median
        return (f"its {estimator} label {label:.4g} ms exceeds the median of {'all ' * (name == 'target runs')}"
                f"its {name} ({runs_median:.4g} ms) by more than the protocol's tolerance "
                f"({protocol.tolerance:g}x)"), runs_median

    def done(label: float, estimator: str, fallback: bool = False) -> Decision:
        why, runs_median = contradiction(label, estimator)
        if why is None:
            return Decision("done", label, estimator, fallback, estimate, mop, minima, runs_median)
        # measured again later, pooled with this pass, within the model's usual budget of retries:
        # a long model whose passes mostly met a slow host gets fast passes to outvote them
        if passes < (protocol.long_passes if long else 1) + protocol.max_retries:
            return Decision("requeue", None, None, False, estimate, mop, minima, remeasure=why)
        if estimator == GATED:
            # Still contradicted: the reference runs do not track the target's (contention on the
            # measuring core makes the gate keep the slowed targets). Each pass's fastest run is one
            # no time slice interrupted, so min-of-pass stands in, flagged, where it agrees with the runs.
            mop_why, mop_median = contradiction(mop, MIN_OF_PASS)
            if mop_why is None:
                return Decision("done", mop, MIN_OF_PASS, True, estimate, mop, minima, mop_median, refused=why)
        raise InconsistentLabelError(
            f"{why} after {passes} passes, so no label is stored: the reference runs do not track the "
            f"target runs (is another process using the measuring core?); measure it again when the "
            f"machine is quieter")

    if long:
        if passes < protocol.long_passes:
            return Decision("requeue", None, None, False, estimate, mop, minima)
        return done(mop, MIN_OF_PASS)
    if estimate.ok:
        return done(estimate.label_ms, GATED)
    if passes <= protocol.max_retries:
        return Decision("requeue", None, None, False, estimate, mop, minima)
    if estimate.label_ms is not None:  # some pairs passed the gate, fewer than required
        return done(estimate.label_ms, GATED, fallback=True)
    return done(mop, MIN_OF_PASS, fallback=True)
