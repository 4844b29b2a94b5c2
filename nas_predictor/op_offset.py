"""Isolated operator times carry a fixed cost per operator that a whole network does not pay: fit it.

A micro-benchmark times one operator per run. Even with the run's own overhead learnt apart
(``nas_predictor.op_latency``), an operator timed alone costs a roughly fixed amount more than the same
operator inside a network (its output allocated per run, a cold cache, the executor's setup of one node).
Summed over a network, that error grows with the node count: on the one-thread onnxruntime CPU data the
plain sum over-predicted networks of many small nodes several times over and networks of few large ones
hardly at all. One offset per node, taken off each node's time (never below ``FLOOR`` of it), and one
scale, both fitted on the training networks with every family weighted alike, remove most of that:
see docs/latency.md ("leave one family out").

:class:`OpGroupScales` goes one step further: one scale per operator kind (``node_groups``: the op groups
of ``nas_predictor.op_vocab`` with grouped/depthwise convolutions apart from dense ones), pulled towards
their common mean by a ridge, because the micro-benchmarks misjudge kinds differently (a depthwise conv
timed alone is relatively slower than a dense one) and a family's mix of kinds is what a single scale
cannot follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from nas_predictor.errors import DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.op_vocab import ALIASES, OP_GROUP_INDEX, OP_GROUPS

FLOOR = 0.1  # a node keeps at least this share of its isolated time (an offset never makes work free)
MAX_OFFSET_MS = 1.0
GRID = 201  # offsets tried every 5 us before refining
#: the kinds OpGroupScales scales apart: the op groups, grouped (depthwise) convs, anything else
GROUP_NAMES = (*OP_GROUPS, "grouped_conv", "other")
#: how strongly the kinds' log scales are pulled to their mean: fixed before any held-out result was
#: seen (0.1 and 1 moved the leave-one-family-out average by about one point either way)
RIDGE = 0.3
GROUP_OFFSETS = np.arange(0.0, 0.161, 0.02)  # per-node offsets tried for OpGroupScales (ms)


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


def _checked(nodes_ms: Sequence[np.ndarray], latency_ms: Sequence[float],
             groups: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """The labels, checked, and each network's weight (1 / its group's size)."""
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(nodes_ms) != len(y) or len(y) < 2:
        raise DataError(f"an operator offset needs at least 2 timed networks with node times, got {len(y)} "
                        f"labels for {len(nodes_ms)} networks")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise DataError("network latency labels must be finite and positive")
    groups = np.asarray(groups if groups is not None else ["all"] * len(y))
    counts = {g: int(np.sum(groups == g)) for g in set(groups.tolist())}
    return y, np.array([1.0 / counts[g] for g in groups])


def fit_op_offset(nodes_ms: Sequence[np.ndarray], latency_ms: Sequence[float],
                  groups: Sequence[str] | None = None) -> OpOffset:
    """The offset and scale that best turn per-node times into measured network times, by squared log
    error with each group (network family) weighted alike, so a family with more networks does not
    decide the fit alone."""
    y, weights = _checked(nodes_ms, latency_ms, groups)

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


def node_groups(graph: ArchGraph) -> np.ndarray:
    """Each node's index in ``GROUP_NAMES``: a Conv with ``group > 1`` is a grouped conv, an op type in
    no op group is "other"."""
    other, grouped = GROUP_NAMES.index("other"), GROUP_NAMES.index("grouped_conv")
    attrs = graph.attrs if graph.attrs is not None else ({},) * graph.num_nodes
    out = np.empty(graph.num_nodes, dtype=np.int64)
    for i, (op, a) in enumerate(zip(graph.ops, attrs)):
        op = ALIASES.get(op, op)
        group = a.get("group", 1)
        many = (group[0] if isinstance(group, (list, tuple)) and group else group) not in (1, None, [], ())
        out[i] = grouped if op in ("Conv", "ConvTranspose") and many else OP_GROUP_INDEX.get(op, other)
    return out


@dataclass(frozen=True)
class OpGroupScales:
    """``sum(scale[kind] * max(t - offset_ms, FLOOR * t))`` over a network's nodes (``node_groups``)."""

    offset_ms: float
    scales: tuple[float, ...]  # one per GROUP_NAMES

    def predict_ms(self, nodes_ms: Sequence[np.ndarray], groups: Sequence[np.ndarray]) -> np.ndarray:
        scales = np.asarray(self.scales)
        return np.array([float((np.maximum(t - self.offset_ms, FLOOR * t) * scales[g]).sum())
                         for t, g in zip(nodes_ms, groups)])

    def as_dict(self) -> dict[str, float]:
        return {"offset_ms": self.offset_ms, **{f"scale_{k}": s for k, s in zip(GROUP_NAMES, self.scales)}}


def fit_op_groups(nodes_ms: Sequence[np.ndarray], node_kinds: Sequence[np.ndarray], latency_ms: Sequence[float],
                  groups: Sequence[str] | None = None, ridge: float = RIDGE) -> OpGroupScales:
    """Per-kind scales and one per-node offset (the best of ``GROUP_OFFSETS``) by squared log error, every
    family (``groups``) weighted alike; kinds no training network has keep the mean scale."""
    y, weights = _checked(nodes_ms, latency_ms, groups)
    if len(node_kinds) != len(y):
        raise DataError(f"{len(node_kinds)} node-kind arrays for {len(y)} networks")
    rows = np.concatenate([np.full(len(t), j) for j, t in enumerate(nodes_ms)])
    times, kinds = np.concatenate(nodes_ms), np.concatenate(node_kinds)
    k = len(GROUP_NAMES)

    def fit(offset: float) -> tuple[float, np.ndarray]:
        work = np.maximum(times - offset, FLOOR * times)
        # (networks, kinds): each network's deducted time per kind, so a fit step is one matrix product
        per_kind = np.zeros((len(y), k))
        np.add.at(per_kind, (rows, kinds), work)

        def residuals(log_s: np.ndarray) -> np.ndarray:
            pred = np.maximum(per_kind @ np.exp(log_s), 1e-12)
            return np.concatenate([np.sqrt(weights) * np.log(pred / y), ridge * (log_s - log_s.mean())])

        result = least_squares(residuals, np.zeros(k))
        return float(np.sum(result.fun[: len(y)] ** 2)), result.x

    (_, log_s), offset = min(((fit(c), float(c)) for c in GROUP_OFFSETS), key=lambda z: z[0][0])
    present = np.zeros(k, dtype=bool)
    present[np.unique(kinds)] = True
    log_s = np.where(present, log_s, log_s[present].mean())
    return OpGroupScales(offset, tuple(float(v) for v in np.exp(log_s)))
