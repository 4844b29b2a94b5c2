"""Checking a stored label against the runs it was made from.

The measurer refuses to emit a label above the median of its own runs by more than the protocol's
tolerance (:func:`~nas_predictor.latency.estimators.label_contradicts_runs`, applied in
:func:`~nas_predictor.latency.protocol.decide`). :func:`check_label` applies the same rule to a label
read back from a file, so a dataset can be audited:

- a record that stores its runs (version 2) is checked exactly: the gate is re-applied with the
  record's own tracker time and tolerance, and the label compared with the median of the kept pairs'
  target runs (every target run for min-of-pass and median labels);
- an older record (version 1) stores only statistics of *all* its target runs. Where every pair was
  kept, or the label is min-of-pass or a median, that is exactly the runs it was made from; otherwise
  the kept runs' median is only known to lie between two of the stored order statistics, and a label
  between the two limits is reported as undetermined rather than guessed.
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
EXACT_RAW_MEDIAN = "raw median (the label's runs are every run)"
BOUNDS = "order statistics of every run (some pairs were gated out)"


@dataclass(frozen=True)
class RunsCheck:
    """A label against the median of the runs it was made from.

    verdict: "ok", "violation" (label > tolerance x the median, for certain) or "undetermined";
    basis: how the median was found (exactly from stored runs or statistics, or bounded);
    low_ms / high_ms: limits of that median (equal when it is known exactly); runs: how many runs."""

    verdict: str
    label_ms: float
    tolerance: float
    basis: str
    low_ms: float
    high_ms: float
    runs: int

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


def check_label(label: LatencyLabel | Mapping[str, Any], tolerance: float | None = None) -> RunsCheck:
    """The label against the median of its own runs (see the module docstring).

    ``tolerance``: the factor a label may exceed that median by (default: the label's own protocol's
    gate tolerance, or the documented protocol's for a label whose protocol has none, e.g. on a GPU)."""
    if not isinstance(label, LatencyLabel):
        label = LatencyLabel.from_dict(dict(label))
    if tolerance is None:
        tolerance = float(label.protocol.get("tolerance", CpuProtocol().tolerance))
    gated = label.estimator == GATED
    if label.target_runs_ms:
        targets = np.array([t for p in label.target_runs_ms for t in p], dtype=float)
        if gated:
            references = np.array([r for p in label.reference_runs_ms for r in p], dtype=float)
            if references.shape != targets.shape or not label.reference_fast_ms:
                raise ValueError(f"{label.model}: a gated label needs its reference runs (one per target run) "
                                 "and the tracker time the gate used")
            targets = targets[gate_mask(references, label.reference_fast_ms, tolerance)]
        if targets.size == 0:
            raise ValueError(f"{label.model}: no stored run passes the gate, yet the label is {label.estimator}")
        median = float(np.median(targets))
        return RunsCheck(_verdict(label.label_ms, median, median, tolerance), label.label_ms, tolerance,
                         EXACT_RUNS, median, median, int(targets.size))
    raw = label.raw
    if not gated or raw.pairs_kept == raw.pairs_total == raw.runs:
        median = float(raw.median_ms)
        return RunsCheck(_verdict(label.label_ms, median, median, tolerance), label.label_ms, tolerance,
                         EXACT_RAW_MEDIAN, median, median, int(raw.runs))
    low, high = _kept_median_bounds(raw, int(raw.pairs_kept))
    return RunsCheck(_verdict(label.label_ms, low, high, tolerance), label.label_ms, tolerance, BOUNDS, low, high,
                     int(raw.pairs_kept))
