"""A per-operator latency model for one device: what each node of a network costs there, from its parts.

Trained on an operator micro-benchmark (``nas-predictor dataset build --ops``: single operators and small
blocks - a Conv of some shape, a LayerNorm, an attention block - each timed whole with the device's
protocol), it predicts every node of any ONNX graph: an unseen arrangement of known operators is then
predicted from its operators (nn-Meter's idea; Zhang et al., MobiSys'21). The whole-network predictor
reads these per-node times as a token column and, with the ``grounded`` readout, scales them by learnt
per-node factors (fusion, cache reuse, the context a micro-benchmark lacks).

Model: a small MLP per node on [op-type embedding | op group | numeric features] -> three positive rates of a
roofline (ms per GFLOP, ms per million elements moved, fixed ms), times the node's work. A micro-benchmark
graph of k nodes is timed as one run, so its prediction is the sum of its nodes plus one per-run overhead
(onnxruntime's session.run cost, learnt, and not part of a node), and the loss is the squared error of log10
on that sum. Op types the micro-benchmark never had get a zero type embedding and are predicted from their
group and numeric features (their costs, shapes and attributes); Input nodes (data and weights) cost nothing.

The fitted model is a plain dict of lists (``state()``), so checkpoints holding it load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from nas_predictor.errors import DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.op_vocab import ALIASES, INPUT_OP, OP_GROUP_INDEX, OP_GROUPS, channel_alignment_features

__all__ = ["NUMERIC_FEATURES", "OpLatencyModel", "fit_op_latency", "node_op_features"]

NUMERIC_FEATURES = (
    "log_flops", "log_memory_batched", "log_memory_fixed", "log_out_numel", "log_in_numel_sum",
    "log_in_numel_max", "inputs", "log2_kernel_area", "stride", "log2_group", "log2_channels_per_group",
    "dilation", "out_rank", "log2_last_dim", "log2_channels", "log2_spatial",
)
STATE_VERSION = 2
EMBED = 16
#: the first three numeric features are the node's work (FLOPs, memory moved), which the roofline multiplies
#: by its rates: those extrapolate. The rest (shapes, input count, kernel, groups) only choose the rates, and
#: are clamped to the range the micro-benchmarks covered: a rate read past that range is a guess (DenseNet's
#: Concat of 30+ inputs, against 2-8 timed, came out 2.5x too slow in one fit)
RATE_FEATURES = slice(3, None)


def _first(value: Any, default: float = 0.0) -> float:
    if isinstance(value, (list, tuple)):
        return float(value[0]) if value else default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _attr_first(attrs: Sequence[dict], key: str, default: float) -> np.ndarray:
    return np.array([_first(a.get(key, default), default) for a in attrs], dtype=np.float64)


def node_op_features(graph: ArchGraph) -> tuple[list[str], np.ndarray]:
    """(op type of each node, (num_nodes, len(NUMERIC_FEATURES) + alignment) numeric features).

    Vectorised over the nodes: prediction tokenises thousands of networks of hundreds of nodes."""
    n = graph.num_nodes
    ops = [ALIASES.get(op, op) for op in graph.ops]
    attrs = graph.attrs if graph.attrs is not None else tuple({} for _ in range(n))
    shapes = graph.shapes if graph.shapes is not None else tuple(() for _ in range(n))
    rank = np.array([len(s) for s in shapes], dtype=np.int64)
    dims = np.ones((n, max(int(rank.max(initial=0)), 2)), dtype=np.float64)
    for i, s in enumerate(shapes):
        if s:
            dims[i, : len(s)] = s
    dims = np.maximum(dims, 1.0)
    numel = np.where(rank > 0, dims.prod(axis=1), 0.0)
    channels = np.where(rank >= 2, dims[:, 1], 0.0)
    spatial = np.where(rank > 2, dims.prod(axis=1) / (dims[:, 0] * dims[:, 1]), 1.0)
    last = dims[np.arange(n), np.maximum(rank - 1, 0)]
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    in_sum, in_max, in_count = np.zeros(n), np.zeros(n), np.zeros(n)
    if len(edges):
        src_numel = np.where(rank[edges[:, 0]] > 0, numel[edges[:, 0]], 1.0)
        np.add.at(in_sum, edges[:, 1], src_numel)
        np.maximum.at(in_max, edges[:, 1], src_numel)
        np.add.at(in_count, edges[:, 1], 1.0)
    kernel_area = np.array([float(np.prod(k)) if isinstance(k := a.get("kernel"), (list, tuple)) and k
                            else _first(k, 1.0) for a in attrs], dtype=np.float64)
    group = np.maximum(_attr_first(attrs, "group", 1.0), 1.0)
    x = np.stack([
        np.log10(1.0 + _attr_first(attrs, "flops", 0.0)),
        np.log10(1.0 + _attr_first(attrs, "memory_batched", 0.0)),
        np.log10(1.0 + _attr_first(attrs, "memory_fixed", 0.0)),
        np.log10(1.0 + numel),
        np.log10(1.0 + in_sum),
        np.log10(1.0 + in_max),
        in_count,
        np.log2(np.maximum(kernel_area, 1.0)),
        _attr_first(attrs, "stride", 1.0),
        np.log2(group),
        np.where(channels > 0, np.log2(np.maximum(channels / group, 1.0)), 0.0),
        _attr_first(attrs, "dilation", 1.0),
        rank.astype(np.float64),
        np.where(rank > 0, np.log2(last), 0.0),
        np.log2(np.maximum(channels, 1.0)),
        np.log2(np.maximum(spatial, 1.0)),
    ], axis=1)
    return ops, np.concatenate([x, channel_alignment_features(graph).astype(np.float64)], axis=1)


# A node's time is a roofline: GFLOPs x ms per GFLOP + M elements moved x ms per M elements + a fixed
# ms, with the three positive rates read from the node's type and shape. A plain MLP on log features
# must extrapolate log time to operators larger than any timed (a 9.7x error on a large conv in a
# pilot); here time keeps growing in proportion to the work. Initial rates: a one-thread CPU core.
INITIAL_RATES = (20.0, 0.5, 0.003)


class _NodeMLP(nn.Module):
    def __init__(self, num_types: int, numeric: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_types + 1, EMBED, padding_idx=0)  # row 0: an op type never benchmarked
        self.net = nn.Sequential(nn.Linear(EMBED + len(OP_GROUPS) + numeric, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(INITIAL_RATES)))
        with torch.no_grad():
            self.net[-1].weight.mul_(0.1)
            self.net[-1].bias.copy_(torch.log(torch.tensor(INITIAL_RATES)))
        self.overhead = nn.Parameter(torch.tensor(-2.0))  # log10 ms of one run's fixed cost

    def forward(self, types: torch.Tensor, groups: torch.Tensor, numeric: torch.Tensor,
                work: torch.Tensor) -> torch.Tensor:
        """log10 of each node's time in ms; ``work``: (nodes, 3) GFLOPs, M elements, 1."""
        rates = torch.exp(self.net(torch.cat([self.embed(types), groups, numeric], dim=-1)).clamp(-30.0, 15.0))
        return torch.log10((rates * work).sum(dim=-1) + 1e-9)


class OpLatencyModel:
    """Per-node latency (ms) of ONNX graphs on one device; build with :func:`fit_op_latency` or
    :meth:`from_state`."""

    def __init__(self, op_types: Sequence[str], mean: np.ndarray, std: np.ndarray, hidden: int,
                 weights: dict[str, torch.Tensor] | None = None, info: dict[str, Any] | None = None,
                 feature_range: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.op_types = tuple(op_types)
        # (low, high) of every numeric feature over the micro-benchmarks' nodes; None (a model fitted before
        # the clamp existed) predicts as it always did
        self.feature_range = None if feature_range is None else (np.asarray(feature_range[0], dtype=np.float64),
                                                                 np.asarray(feature_range[1], dtype=np.float64))
        self._type_index = {op: k + 1 for k, op in enumerate(self.op_types)}
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.hidden = int(hidden)
        self.info = dict(info or {})
        self.net = _NodeMLP(len(self.op_types), len(self.mean), self.hidden)
        if weights is not None:
            self.net.load_state_dict(weights)
        self.net.eval()

    # --- features ----------------------------------------------------------------------------------
    def _inputs(self, graphs: Sequence[ArchGraph]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                            np.ndarray, np.ndarray]:
        ops, numeric, owner = [], [], []
        for g, graph in enumerate(graphs):
            graph_ops, x = node_op_features(graph)
            ops += graph_ops
            numeric.append(x)
            owner.append(np.full(len(graph_ops), g))
        types = [self._type_index.get(op, 0) for op in ops]
        group = np.array([OP_GROUP_INDEX.get(op, -1) for op in ops])
        groups = np.zeros((len(ops), len(OP_GROUPS)), dtype=np.float32)
        groups[np.flatnonzero(group >= 0), group[group >= 0]] = 1.0
        x = np.concatenate(numeric)
        if self.feature_range is not None:
            x = x.copy()
            x[:, RATE_FEATURES] = np.clip(x[:, RATE_FEATURES], self.feature_range[0][RATE_FEATURES],
                                          self.feature_range[1][RATE_FEATURES])
        z = (x - self.mean) / self.std
        # back from the log features: GFLOPs and millions of elements moved (batched + fixed)
        work = np.stack([(10.0 ** x[:, 0] - 1.0) / 1e9, (10.0 ** x[:, 1] + 10.0 ** x[:, 2] - 2.0) / 1e6,
                         np.ones(len(x))], axis=1)
        return (torch.as_tensor(types, dtype=torch.long), torch.from_numpy(groups),
                torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(work, dtype=torch.float32),
                np.concatenate(owner), np.array([op == INPUT_OP for op in ops]))

    # --- prediction --------------------------------------------------------------------------------
    def node_ms(self, graph: ArchGraph) -> np.ndarray:
        """Predicted time of every node in ms (0 for Input nodes)."""
        return self.nodes_ms([graph])[0]

    def nodes_ms(self, graphs: Sequence[ArchGraph]) -> list[np.ndarray]:
        if not graphs:
            return []
        types, groups, numeric, work, owner, is_input = self._inputs(graphs)
        with torch.no_grad():
            log_ms = self.net(types, groups, numeric, work).double().numpy()
        ms = np.where(is_input, 0.0, np.power(10.0, np.clip(log_ms, -6.0, 6.0)))
        return [ms[owner == g] for g in range(len(graphs))]

    def predict_ms(self, graphs: Sequence[ArchGraph], overhead: bool = False) -> np.ndarray:
        """The sum of each graph's node predictions (plus one run's overhead when ``overhead``): the
        nn-Meter estimate of the whole graph."""
        extra = float(10.0 ** self.net.overhead.item()) if overhead else 0.0
        return np.array([float(ms.sum()) + extra for ms in self.nodes_ms(graphs)])

    # --- persistence -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain lists and numbers only (a checkpoint holding it loads with weights_only=True)."""
        state = {"version": STATE_VERSION, "op_types": list(self.op_types), "mean": self.mean.tolist(),
                 "std": self.std.tolist(), "hidden": self.hidden, "info": self.info,
                 "weights": {k: v.detach().cpu().tolist() for k, v in self.net.state_dict().items()}}
        if self.feature_range is not None:
            state["feature_range"] = [self.feature_range[0].tolist(), self.feature_range[1].tolist()]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "OpLatencyModel":
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise DataError(f"per-operator latency model of version {found!r} in the checkpoint; this code reads "
                            f"version {STATE_VERSION} (train the predictor again)")
        try:
            weights = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in state["weights"].items()}
            low_high = state.get("feature_range")
            return cls(state["op_types"], np.asarray(state["mean"]), np.asarray(state["std"]), state["hidden"],
                       weights, state.get("info"), None if low_high is None else tuple(low_high))
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise DataError(f"corrupt per-operator latency model in the checkpoint ({type(err).__name__}: {err})") from None


def fit_op_latency(graphs: Sequence[ArchGraph], latency_ms: Sequence[float], *, hidden: int = 96, epochs: int = 1500,
                   lr: float = 3e-3, seed: int = 0, valid_fraction: float = 0.1,
                   info: dict[str, Any] | None = None) -> OpLatencyModel:
    """Fit the per-node model so each micro-benchmark graph's node sum plus one run's overhead matches its
    measured time (squared error of log10). Full-batch Adam with a cosine schedule; the epoch with the
    lowest error on a held-out ``valid_fraction`` of the graphs is kept (its scores go to ``info``)."""
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(graphs) != len(y):
        raise DataError(f"{len(graphs)} operator graphs but {len(y)} labels")
    if len(y) < 10:
        raise DataError(f"a per-operator latency model needs at least 10 timed operators, got {len(y)}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise DataError("operator latency labels must be finite and positive")
    all_ops = [node_op_features(g) for g in graphs]
    op_types = sorted({op for ops, _ in all_ops for op in ops} - {INPUT_OP})
    x = np.concatenate([f for _, f in all_ops])
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    timed = x[np.concatenate([[op != INPUT_OP for op in ops] for ops, _ in all_ops])]
    model = OpLatencyModel(op_types, mean, std, hidden, info=info, feature_range=(timed.min(axis=0), timed.max(axis=0)))
    torch.manual_seed(seed)
    model.net = _NodeMLP(len(op_types), len(mean), hidden)
    types, groups, numeric, work, owner, is_input = model._inputs(graphs)
    owner_t = torch.as_tensor(owner, dtype=torch.long)
    keep = torch.as_tensor(~is_input)
    target = torch.as_tensor(np.log10(y), dtype=torch.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_valid = max(1, int(round(valid_fraction * len(y))))
    valid = torch.zeros(len(y), dtype=torch.bool)
    valid[torch.as_tensor(order[:n_valid])] = True
    opt = torch.optim.Adam(model.net.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    best = (math.inf, None, -1)
    model.net.train()
    for epoch in range(epochs):
        log_ms = model.net(types, groups, numeric, work)
        node = torch.where(keep, torch.pow(10.0, log_ms.clamp(-6, 6)), torch.zeros_like(log_ms))
        total = torch.zeros(len(y)).index_add(0, owner_t, node) + torch.pow(10.0, model.net.overhead)
        err = torch.log10(total) - target
        loss = (err[~valid] ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            v = float((err[valid] ** 2).mean())
        if v < best[0]:
            best = (v, {k: t.detach().clone() for k, t in model.net.state_dict().items()}, epoch)
    model.net.load_state_dict(best[1])
    model.net.eval()
    with torch.no_grad():
        pred = np.asarray(model.predict_ms(graphs, overhead=True))
    rel = np.abs(pred / y - 1.0)
    v = valid.numpy()
    model.info.update({"operators": int(len(y)), "op_types": len(op_types), "best_epoch": best[2], "epochs": epochs,
                       "train_mape": float(rel[~v].mean()), "valid_mape": float(rel[v].mean()),
                       "run_overhead_ms": float(10.0 ** model.net.overhead.item()), "seed": seed})
    return model


_FITTED: dict[tuple, OpLatencyModel] = {}


def fit_from_dataset(folder: str, *, cache_dir: str | None = None, workers: int = 1, progress: bool = True,
                     seed: int = 0, exclude_fallbacks: bool = True, epochs: int = 1500) -> OpLatencyModel:
    """The per-operator model of the device an operator micro-benchmark folder was measured on.

    Graphs come through the dataset's graph cache (regenerated once per machine); flagged fallback
    labels (a gate that never passed) are left out. Fitted once per process for a given folder state
    and seed (leave-one-family-out runs share it: the operators are not a network family)."""
    from nas_predictor.data.latency_dataset import LatencyDataset, dataset_graphs

    ds = LatencyDataset(folder)
    if ds.identity is None or ds.identity.get("generator") != "operators":
        raise DataError(f"{folder}: not an operator micro-benchmark folder (build one with `nas-predictor dataset "
                        f"build --ops --out {folder}`)")
    records = [r for r in ds.records() if not (exclude_fallbacks and r.fallback)]
    key = (str(ds.root.resolve()), len(records), sum(r.latency_ms for r in records), seed, epochs)
    if key not in _FITTED:
        graphs = dataset_graphs(ds, records, cache_dir, workers, progress)
        machines = sorted({str(r.label.get("machine")) for r in records})
        info = {"dataset": str(folder), "cpu_model": records[0].label.get("cpu_model") if records else None,
                "machines": machines, "reference_fast_ms": _median_reference(records),
                "kinds": sorted({r.family for r in records})}
        _FITTED[key] = fit_op_latency(graphs, [r.latency_ms for r in records], seed=seed, epochs=epochs, info=info)
    return _FITTED[key]


def _median_reference(records) -> float | None:
    refs = [r.label.get("reference_fast_ms") for r in records if r.label.get("reference_fast_ms")]
    return float(np.median(refs)) if refs else None
