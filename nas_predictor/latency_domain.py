"""The training domain of a latency predictor: what it was trained on, whether a network lies inside
it, and what to report when it does not.

A latency predictor learns from a few network families (HELP's NAS-Bench-201, FBNet and OFA
MobileNetV3 for the shipped ones). Outside them it is not merely less accurate: asked for a
5,400-node graph of tiny layers it answered 11 million ms (issue 26). So every prediction carries an
in-distribution check against a summary of the training graphs, stored with the predictor
(``meta["latency_domain"]``, one entry per device setting, over the graphs that had a label on it):

- op types the training graphs never contained;
- node count, depth (nodes on the longest path), FLOPs, parameters, memory access and the predicted
  latency itself far outside the training range: below min / ``FAR`` or above max * ``FAR``;
- a batch size the setting was never trained at;
- members of an ensemble that disagree by more than ``MEMBER_SPREAD`` (where there are several).

And a fallback estimate from a line fitted per setting on the same training labels (``FallbackLine``):
ms = c0 + c1 * GFLOPs + c2 * M elements of memory access + c3 * nodes, every coefficient >= 0. It is
crude (its MAPE on its own training labels is stored with it: 8-46 % for the shipped settings) but
bounded: with every coefficient >= 0 a network with 10x the work of another costs at most 10x, never
millions of ms.

What is reported (``LatencyEstimate.predicted_ms``): the predictor's own output when the network is in
distribution; the fallback when it is not (the network's output beyond its data is an extrapolation
with no bound, the line's is linear in the work). Both numbers are always kept (``model_ms``,
``fallback_ms``). A predictor saved without a domain summary (an older checkpoint) reports its own
output with ``in_distribution`` None and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from nas_predictor.errors import CheckpointError, DataError
from nas_predictor.graph import ArchGraph

DOMAIN_KEY = "latency_domain"  # in Predictor.meta
DOMAIN_VERSION = 1
# How far outside the training range a network may lie: below min / FAR or above max * FAR is "far".
# Measured on the shipped batch-1 predictors with N stacked Conv-BN-ReLU blocks (16 channels, 32x32),
# against the line a + b N fitted over the training depths of each setting: inside the range they stay
# within 1.6-12.7 % of it; at 1.1x the deepest training network within 1.4-7.9 %, at 1.25x within
# 2.0-16.3 %, at 1.5x up to 33 % (titanxp_1) and at 2x 12-83 % (gold_6226 even predicts less for more
# blocks). So 1.25: the largest margin at which every setting still scales within 20 % of linear.
FAR = 1.25
# Members of one ensemble trained on the same data with different seeds agree to a few per cent on
# what they learnt (the shipped predictors' test MAPE is 1-4 %); a 25 % disagreement means they
# extrapolate, each its own way.
MEMBER_SPREAD = math.log(1.25)
# (feature, how a reason names it, factor to its display unit)
FEATURES: tuple[tuple[str, str, float], ...] = (
    ("nodes", "nodes", 1.0),
    ("depth", "depth", 1.0),
    ("flops", "GFLOPs", 1e-9),
    ("params", "M params", 1e-6),
    ("memory_access", "M elements memory access", 1e-6),
)
NO_DOMAIN_REASON = ("the predictor carries no training-domain summary (saved before issue 26); "
                    "no in-distribution check or fallback is possible")


def graph_depth(graph: ArchGraph) -> int:
    """Nodes on the longest path of the graph (1 for a single node)."""
    n = graph.num_nodes
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for s, d in graph.edges:
        succ[s].append(d)
        indeg[d] += 1
    depth = [1] * n
    ready = [i for i in range(n) if indeg[i] == 0]
    while ready:  # Kahn's order: a node is final once all its inputs are (ArchGraph has no cycles)
        node = ready.pop()
        for nxt in succ[node]:
            depth[nxt] = max(depth[nxt], depth[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    return max(depth)


def graph_features(graph: ArchGraph) -> dict[str, float]:
    """The sizes the domain check compares: nodes, depth, flops, params, memory_access (whole batch)."""
    scalars = graph.scalars
    missing = [k for k in ("flops", "params", "memory_access") if k not in scalars]
    if missing:
        raise DataError(f"graph has no {', '.join(missing)}: the latency domain check needs a whole-network "
                        "graph (nas_predictor.onnx.onnx_to_graph)")
    return {"nodes": float(graph.num_nodes), "depth": float(graph_depth(graph)),
            "flops": float(scalars["flops"]), "params": float(scalars["params"]),
            "memory_access": float(scalars["memory_access"])}


# -- the fallback line -------------------------------------------------------------------------------
LINE_TERMS = (("gflops", "flops", 1e-9), ("m_memory", "memory_access", 1e-6), ("nodes", "nodes", 1.0))


@dataclass(frozen=True)
class FallbackLine:
    """ms = intercept + sum of coefficient * term (GFLOPs, M elements of memory access, nodes), all >= 0.

    Non-negative and linear rather than a least-squares line in log space: a log-space fit
    (ms = a * flops^p * memory^q) is as good inside the training data but, with p + q != 1, grows
    faster or slower than the work beyond it, exactly where the fallback is used; a linear model in
    FLOPs, bytes moved and operator count is the roofline-plus-dispatch cost of running a network,
    doubles when the network is stacked twice, and with coefficients >= 0 is never negative nor
    decreasing in the work. It is fitted to relative errors (rows weighted by 1 / label), so the
    small networks count as much as the big ones."""

    intercept: float
    coefficients: tuple[float, ...]  # in LINE_TERMS order

    def predict(self, features: Mapping[str, float]) -> float:
        return float(self.intercept + sum(c * features[key] * unit
                                          for c, (_, key, unit) in zip(self.coefficients, LINE_TERMS)))

    def to_dict(self) -> dict[str, float]:
        return {"intercept_ms": self.intercept,
                **{f"ms_per_{name}": c for c, (name, _, _) in zip(self.coefficients, LINE_TERMS)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FallbackLine":
        try:
            line = cls(float(data["intercept_ms"]), tuple(float(data[f"ms_per_{n}"]) for n, _, _ in LINE_TERMS))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"malformed latency fallback line ({type(err).__name__}: {err})") from None
        if not all(math.isfinite(v) and v >= 0 for v in (line.intercept, *line.coefficients)):
            raise CheckpointError(f"latency fallback line has a negative or non-finite coefficient: {data}")
        return line


def fit_fallback_line(features: Sequence[Mapping[str, float]], latency_ms: Sequence[float]) -> FallbackLine:
    """Non-negative least squares of relative errors: min sum ((line(x_i) - y_i) / y_i)^2, line >= 0."""
    from scipy.optimize import nnls

    y = np.asarray(latency_ms, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(features) or len(y) < 2:
        raise DataError(f"a fallback line needs >= 2 graphs with one latency each, got {len(features)} and {y.shape}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise DataError("fallback line: training latencies must be finite and positive")
    x = np.array([[1.0] + [f[key] * unit for _, key, unit in LINE_TERMS] for f in features])
    # Columns brought to a common size first: NNLS' active-set steps are not scale-free.
    norm = np.maximum(np.median(np.abs(x), axis=0), 1e-12)
    coef, _ = nnls(x / norm / y[:, None], np.ones(len(y)))
    coef = coef / norm
    return FallbackLine(float(coef[0]), tuple(float(c) for c in coef[1:]))


# -- building a domain summary -----------------------------------------------------------------------
def build_latency_domain(graphs: Sequence[ArchGraph], latency_ms: np.ndarray, settings: Sequence[str],
                         source: str) -> dict[str, Any]:
    """The domain summary of a latency predictor trained on ``graphs`` (its TRAINING split) with
    ``latency_ms`` (graphs x settings, NaN where a graph has no label on a setting). ``source`` says
    what the graphs were (kept with the summary). Store it as ``predictor.meta[DOMAIN_KEY]``."""
    lat = np.asarray(latency_ms, dtype=np.float64).reshape(len(graphs), -1)
    if lat.shape[1] != len(settings):
        raise DataError(f"{lat.shape[1]} latency columns for {len(settings)} settings")
    feats = [graph_features(g) for g in graphs]
    out: dict[str, Any] = {"version": DOMAIN_VERSION, "source": source, "settings": {}}
    for k, setting in enumerate(settings):
        known = np.flatnonzero(np.isfinite(lat[:, k]))
        if len(known) < 2:
            raise DataError(f"setting {setting}: {len(known)} training graphs with a label; a domain needs >= 2")
        chosen = [feats[i] for i in known]
        labels = lat[known, k]
        line = fit_fallback_line(chosen, labels)
        out["settings"][setting] = {
            "num_graphs": int(len(known)),
            "op_types": sorted({op for i in known for op in graphs[i].ops}),
            "batch_sizes": sorted({int(graphs[i].scalars.get("batch_size", 1)) for i in known}),
            "ranges": {key: [min(f[key] for f in chosen), max(f[key] for f in chosen)] for key, _, _ in FEATURES},
            "latency_ms": [float(labels.min()), float(labels.max())],
            "fallback": line.to_dict(),
            # how crude the fallback is where it can be checked: its MAPE on its own training labels
            "fallback_train_mape": float(np.mean(np.abs(np.array([line.predict(f) for f in chosen]) / labels - 1))),
        }
    return out


# -- checking a prediction ---------------------------------------------------------------------------
@dataclass
class LatencyEstimate:
    """One network's latency on one setting, with how far to trust it (see the module doc)."""

    model_ms: float
    fallback_ms: float | None
    in_distribution: bool | None  # None: the predictor has no domain summary to check against
    reasons: list[str] = field(default_factory=list)

    @property
    def predicted_ms(self) -> float:
        """What to report: the fallback for a network outside the training domain, else the model's."""
        return self.fallback_ms if self.in_distribution is False and self.fallback_ms is not None else self.model_ms

    @property
    def source(self) -> str:
        return "fallback" if self.in_distribution is False and self.fallback_ms is not None else "model"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _setting_domain(meta: Mapping[str, Any], setting: str) -> dict[str, Any] | None:
    domain = meta.get(DOMAIN_KEY)
    if domain is None:
        return None
    if not isinstance(domain, Mapping) or domain.get("version") != DOMAIN_VERSION:
        raise CheckpointError(f"unreadable latency domain summary (version {getattr(domain, 'get', dict)('version')!r}, "
                              f"expected {DOMAIN_VERSION})")
    entry = domain.get("settings", {}).get(setting)
    if entry is None:
        raise CheckpointError(f"the latency domain summary has no setting {setting!r} (it has "
                              f"{', '.join(domain.get('settings', {}))})")
    return entry


def domain_reasons(entry: Mapping[str, Any], graph: ArchGraph, features: Mapping[str, float],
                   model_ms: float) -> list[str]:
    """The failed checks of one graph against one setting's domain entry, one short string each."""
    reasons = []
    seen = set(entry["op_types"])
    unseen: dict[str, int] = {}
    for op in graph.ops:
        if op not in seen:
            unseen[op] = unseen.get(op, 0) + 1
    if unseen:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(unseen.items(), key=lambda kv: -kv[1])[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        reasons.append(f"op types never seen in training: {listed}{more}")
    batch = int(graph.scalars.get("batch_size", 1))
    if batch not in entry["batch_sizes"]:
        reasons.append(f"batch {batch} never trained at (trained: {', '.join(map(str, entry['batch_sizes']))})")
    checks = [(key, label, unit, features[key], entry["ranges"][key]) for key, label, unit in FEATURES]
    checks.append(("latency", "predicted ms", 1.0, model_ms, entry["latency_ms"]))
    for _, label, unit, value, (low, high) in checks:
        if not low / FAR <= value <= high * FAR:
            reasons.append(f"{label} {_fmt(value * unit)} far outside training range "
                           f"{_fmt(low * unit)}-{_fmt(high * unit)}")
    return reasons


def assess_latency(predictor: Any, graphs: Sequence[ArchGraph], setting: str | None = None,
                   names: Sequence[str] | None = None) -> list[LatencyEstimate]:
    """Each graph's latency on ``setting`` (default: the predictor's) with its in-distribution check
    and fallback. The predictor's own output must be finite (``Predictor.predict_latency``); a
    fallback that comes out non-finite or <= 0 is a DataError (a graph with broken costs)."""
    setting = setting or predictor.default_setting
    model = np.asarray(predictor.predict_latency(graphs, setting), dtype=np.float64)
    label = (lambda i: names[i]) if names is not None else (lambda i: f"graph {i}")
    bad = np.flatnonzero(~np.isfinite(model))
    if bad.size:  # never a number to print: a non-finite latency is an error
        raise DataError(f"{label(int(bad[0]))}: the predicted latency is {model[bad[0]]} (not finite)")
    entry = _setting_domain(predictor.meta, setting)
    if entry is None:
        return [LatencyEstimate(float(ms), None, None, [NO_DOMAIN_REASON]) for ms in model]
    line = FallbackLine.from_dict(entry["fallback"])
    spreads = _member_spreads(predictor, graphs, setting)
    # the domain and the fallback line were built on the graphs as the predictor reads them (BN folded
    # into its Conv where the predictor folds): compare and fall back on the same form
    runtime = getattr(getattr(predictor, "tokenizer", None), "runtime_graph", lambda g: g)
    out = []
    for i, graph in enumerate(graphs):
        graph = runtime(graph)
        features = graph_features(graph)
        fallback = line.predict(features)
        if not (math.isfinite(fallback) and fallback > 0):
            raise DataError(f"{label(i)}: the FLOPs/memory fallback latency is {fallback} (costs "
                            f"{features}); the graph's costs are broken")
        reasons = domain_reasons(entry, graph, features, float(model[i]))
        if spreads is not None and spreads[i] > MEMBER_SPREAD:
            by = f"{100 * (math.exp(spreads[i]) - 1):.0f} %" if math.isfinite(spreads[i]) else "sign"
            reasons.append(f"ensemble members disagree by {by} (limit {100 * (math.exp(MEMBER_SPREAD) - 1):.0f} %)")
        out.append(LatencyEstimate(float(model[i]), fallback, not reasons, reasons))
    return out


def _member_spreads(predictor: Any, graphs: Sequence[ArchGraph], setting: str) -> np.ndarray | None:
    """log(max / min) of the ensemble members' latencies per graph; None for a single model."""
    models = getattr(predictor, "models", [])
    if len(models) < 2 or not len(graphs):
        return None
    import torch

    from nas_predictor.calibration import apply_calibration

    column = predictor.settings.index(setting)
    outs: list[list[np.ndarray]] = [[] for _ in models]
    step = 256  # graphs per forward pass: a search may ask for thousands at once
    with torch.inference_mode():
        for start in range(0, len(graphs), step):
            part = list(graphs[start:start + step])
            batch = predictor.tokenizer.encode(part).to(predictor.device)
            for out, m in zip(outs, models):
                out.append(m(batch).float().cpu().numpy().reshape(len(part), -1)[:, column])
    outs = [np.concatenate(o) for o in outs]
    calibration = predictor.meta.get("calibration")
    members = np.stack([apply_calibration(o / predictor.label_scale, calibration) for o in outs])
    if not np.all(np.isfinite(members) & (members > 0)):
        return np.full(len(graphs), np.inf)  # a member with a non-positive latency disagrees without bound
    return np.log(members.max(axis=0) / members.min(axis=0))
