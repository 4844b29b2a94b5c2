"""Checking a stored label against the runs it was made from.

The measurer refuses to emit a label above the median of its own runs by more than the protocol's
tolerance (:func:`~nas_predictor.latency.estimators.label_contradicts_runs`, applied in
:func:`~nas_predictor.latency.protocol.decide`). :func:`check_label` applies the same rule to a label
read back from a file, so a dataset can be audited:

the label is compared with the median of all its target runs and, for a gated-ratio label, with the
median of its kept pairs' target runs too (the lower of the two binds, see
:func:`~nas_predictor.latency.protocol.runs_medians`):

- a record that stores its runs (version 2) is checked exactly: the gate is re-applied with the
  record's own tracker time and tolerance;
- an older record (version 1) stores only statistics of *all* its target runs: their median is
  exact, and so is the kept runs' median where every pair was kept; otherwise the kept runs' median
  is only known to lie between two of the stored order statistics, and a label between the two
  resulting limits is reported as undetermined rather than guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from nas_predictor.latency.estimators import gate_mask, label_contradicts_runs
from nas_predictor.latency.protocol import GATED, CpuProtocol
from nas_predictor.latency.record import LatencyLabel

OK, VIOLATION, UNDETERMINED = "ok", "violation", "undetermined"
EXACT_RUNS = "stored runs"
EXACT_RAW_MEDIAN = "raw median (exact: every pair kept, or not a gated label)"
BOUNDS = "raw median and the kept runs' limits from order statistics (some pairs were gated out)"


@dataclass(frozen=True)
class RunsCheck:
    """A label against the median of the runs it was made from.

    verdict: "ok", "violation" (label > tolerance x the median, for certain) or "undetermined";
    basis: how the median was found (exactly from stored runs or statistics, or bounded);
    low_ms / high_ms: limits of the binding median (the lower of the kept runs' and all runs' for a
    gated label; equal when it is known exactly); all_runs_median_ms: median of every target run;
    runs: how many kept runs (every run for labels without a gate)."""

    verdict: str
    label_ms: float
    tolerance: float
    basis: str
    low_ms: float
    high_ms: float
    runs: int
    all_runs_median_ms: float

    @property
    def exact(self) -> bool:
        return self.low_ms == self.high_ms

    @property
    def excess_low(self) -> float:
        """label / the highest the runs' median can be: the least the label can exceed it by."""
        return self.label_ms / self.high_ms

    @property
    def excess_high(self) -> float:
        """label / the lowest the runs' median can be: the most the label can exceed it by."""
        return self.label_ms / self.low_ms


def _verdict(label_ms: float, low: float, high: float, tolerance: float) -> str:
    if label_contradicts_runs(label_ms, high, tolerance):
        return VIOLATION
    if not label_contradicts_runs(label_ms, low, tolerance):
        return OK
    return UNDETERMINED


def _kept_median_bounds(raw: Any, kept: int) -> tuple[float, float]:
    """Limits of the median of ``kept`` of the ``raw.runs`` target runs, from the stored statistics.

    The j-th smallest of a subset is at least the j-th smallest of the whole set and at most its
    (N - K + j)-th; numpy's median of K values lies between the subset's ceil(K/2)-th and
    (floor(K/2)+1)-th smallest. Only min, p10, median and max of the whole set are stored, so the
    lower limit is p10 where the subset's ceil(K/2)-th smallest is at or above p10's position, else
    the minimum; the upper limit is the maximum."""
    n = int(raw.runs)
    low_index = math.ceil(kept / 2) - 1  # 0-based index, in the whole set, of a value <= the kept median
    p10_index = math.ceil(0.1 * (n - 1))  # numpy's p10 interpolates up to this 0-based index
    low = float(raw.p10_ms) if low_index >= p10_index else float(raw.min_ms)
    return low, float(raw.max_ms)


def check_label(label: LatencyLabel | Mapping[str, Any], tolerance: float | None = None, *,
                kept_only: bool = False) -> RunsCheck:
    """The label against the median of its own runs (see the module docstring).

    ``tolerance``: the factor a label may exceed that median by (default: the label's own protocol's
    gate tolerance, or the documented protocol's for a label whose protocol has none, e.g. on a GPU);
    ``kept_only``: check a gated label against its kept pairs' runs alone (issue 26's wording), not
    also against all its runs (what the measurer enforces)."""
    if not isinstance(label, LatencyLabel):
        label = LatencyLabel.from_dict(dict(label))
    if tolerance is None:
        tolerance = float(label.protocol.get("tolerance", CpuProtocol().tolerance))
    gated = label.estimator == GATED

    def result(basis: str, kept_low: float, kept_high: float, every: float, runs: int) -> RunsCheck:
        if not gated:
            low, high = every, every
        elif kept_only:
            low, high = kept_low, kept_high
        else:
            low, high = min(kept_low, every), min(kept_high, every)
        return RunsCheck(_verdict(label.label_ms, low, high, tolerance), label.label_ms, tolerance, basis, low, high,
                         runs, every)

    if label.target_runs_ms:
        targets = np.array([t for p in label.target_runs_ms for t in p], dtype=float)
        every = float(np.median(targets))
        if not gated:
            return result(EXACT_RUNS, every, every, every, int(targets.size))
        references = np.array([r for p in label.reference_runs_ms for r in p], dtype=float)
        if references.shape != targets.shape or not label.reference_fast_ms:
            raise ValueError(f"{label.model}: a gated label needs its reference runs (one per target run) "
                             "and the tracker time the gate used")
        kept = targets[gate_mask(references, label.reference_fast_ms, tolerance)]
        if kept.size == 0:
            raise ValueError(f"{label.model}: no stored run passes the gate, yet the label is {label.estimator}")
        median = float(np.median(kept))
        return result(EXACT_RUNS, median, median, every, int(kept.size))
    raw = label.raw
    every = float(raw.median_ms)
    if not gated or raw.pairs_kept == raw.pairs_total == raw.runs:
        return result(EXACT_RAW_MEDIAN, every, every, every, int(raw.pairs_kept if gated else raw.runs))
    low, high = _kept_median_bounds(raw, int(raw.pairs_kept))
    return result(BOUNDS, low, high, every, int(raw.pairs_kept))
