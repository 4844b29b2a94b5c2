"""Isolated operator times carry a fixed cost per operator that a whole network does not pay: fit it.

A micro-benchmark times one operator per run. Even with the run's own overhead learnt apart
(``nas_predictor.op_latency``), an operator timed alone costs a roughly fixed amount more than the same
operator inside a network (its output allocated per run, a cold cache, the executor's setup of one node).
Summed over a network, that error grows with the node count: on the one-thread onnxruntime CPU data the
plain sum over-predicted networks of many small nodes several times over and networks of few large ones
hardly at all. One offset per node, taken off each node's time (never below ``FLOOR`` of it), and one
scale, both fitted on the training networks with every family weighted alike, remove most of that:
see docs/latency.md ("leave one family out").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from nas_predictor.errors import DataError

FLOOR = 0.1  # a node keeps at least this share of its isolated time (an offset never makes work free)
MAX_OFFSET_MS = 1.0
GRID = 201  # offsets tried every 5 us before refining


def deducted_sum(nodes_ms: Sequence[np.ndarray], offset_ms: float) -> np.ndarray:
    """Each network's sum of node times less ``offset_ms`` per node (each node kept >= FLOOR of its time)."""
    return np.array([float(np.maximum(n - offset_ms, FLOOR * n).sum()) for n in nodes_ms])


@dataclass(frozen=True)
class OpOffset:
    """``scale * sum(max(t - offset_ms, FLOOR * t))`` over a network's per-node times ``t`` (ms)."""

    offset_ms: float
    scale: float

    def predict_ms(self, nodes_ms: Sequence[np.ndarray]) -> np.ndarray:
        return self.scale * deducted_sum(nodes_ms, self.offset_ms)


def fit_op_offset(nodes_ms: Sequence[np.ndarray], latency_ms: Sequence[float],
                  groups: Sequence[str] | None = None) -> OpOffset:
    """The offset and scale that best turn per-node times into measured network times, by squared log
    error with each group (network family) weighted alike, so a family with more networks does not
    decide the fit alone."""
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(nodes_ms) != len(y) or len(y) < 2:
        raise DataError(f"an operator offset needs at least 2 timed networks with node times, got {len(y)} "
                        f"labels for {len(nodes_ms)} networks")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise DataError("network latency labels must be finite and positive")
    groups = np.asarray(groups if groups is not None else ["all"] * len(y))
    counts = {g: int(np.sum(groups == g)) for g in set(groups.tolist())}
    weights = np.array([1.0 / counts[g] for g in groups])

    def fit(offset: float) -> tuple[float, float]:
        residual = np.log(y / np.maximum(deducted_sum(nodes_ms, offset), 1e-12))
        log_scale = float(np.average(residual, weights=weights))
        return float(np.average((residual - log_scale) ** 2, weights=weights)), log_scale

    # the error is not unimodal in the offset (past the nodes' sizes every node sits on its floor, a plain
    # rescale of the sum), so a grid finds the basin and a bounded search refines it
    grid = np.linspace(0.0, MAX_OFFSET_MS, GRID)
    start = int(np.argmin([fit(c)[0] for c in grid]))
    lo, hi = grid[max(start - 1, 0)], grid[min(start + 1, GRID - 1)]
    offset = float(minimize_scalar(lambda c: fit(c)[0], bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-6}).x)
    if fit(grid[start])[0] < fit(offset)[0]:
        offset = float(grid[start])
    return OpOffset(offset, float(np.exp(fit(offset)[1])))
