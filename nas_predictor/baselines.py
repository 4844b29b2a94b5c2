"""Latency baselines, compared with NAR-Former V2 on the same splits:

- ``CostLinearRegression``: latency ~ a + b·FLOPs (+ c·memory access), least squares (NumPy).
- ``CostGBDT``: gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor) on the static
  features [batch, FLOPs, params, memory access], fitted to log latency so errors are relative.
- ``NNLPGNN``: NNLQP's design, written here: GraphSAGE-like layers over the same node tokens
  (h' = ReLU(W_self·h + W_neigh·mean of neighbours)), 2 layers, sum readout, the static-feature
  embedding, and the same head and output (``model.output``) as our latency model. Trained by the same loop
  (``model.architecture: nnlp_gnn``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_predictor.encoding import GraphBatch
from nas_predictor.graph import ArchGraph
from nas_predictor.model import drop_op_identity, init_output_bias, positive_output
from nas_predictor.model_config import ModelConfig

COST_KEYS = ("batch_size", "flops", "params", "memory_access")


def cost_features(graphs: Sequence[ArchGraph], keys: Sequence[str] = COST_KEYS) -> np.ndarray:
    return np.array([[float(g.scalars.get(k, 0.0)) for k in keys] for g in graphs], dtype=np.float64)


class CostLinearRegression:
    def __init__(self, keys: Sequence[str] = ("flops",)) -> None:
        self.keys = tuple(keys)
        self.coef: np.ndarray | None = None

    def fit(self, graphs: Sequence[ArchGraph], latency_ms: np.ndarray) -> "CostLinearRegression":
        x = np.column_stack([np.ones(len(graphs)), cost_features(graphs, self.keys) / 1e9])
        self.coef = np.linalg.lstsq(x, np.asarray(latency_ms, dtype=np.float64), rcond=None)[0]
        return self

    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("fit the baseline first")
        x = np.column_stack([np.ones(len(graphs)), cost_features(graphs, self.keys) / 1e9])
        # a linear fit can go negative for tiny networks; latencies cannot
        return np.maximum(x @ self.coef, 1e-6)


class CostGBDT:
    def __init__(self, seed: int = 0, max_iter: int = 300) -> None:
        try:
            from sklearn.ensemble import HistGradientBoostingRegressor
        except ImportError as err:  # an optional dependency of the benchmarks
            raise ImportError("the GBDT baseline needs scikit-learn: pip install 'nas-predictor[bench]'") from err
        self.model = HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=0.05, random_state=seed)

    def fit(self, graphs: Sequence[ArchGraph], latency_ms: np.ndarray) -> "CostGBDT":
        self.model.fit(np.log1p(cost_features(graphs)), np.log(np.asarray(latency_ms, dtype=np.float64)))
        return self

    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        return np.exp(self.model.predict(np.log1p(cost_features(graphs))))


class SAGELayer(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.self_linear = nn.Linear(in_dim, out_dim)
        self.neigh_linear = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, deg: torch.Tensor) -> torch.Tensor:
        neighbours = (adj @ x) / deg.clamp_min(1.0)
        return F.relu(self.self_linear(x) + self.neigh_linear(neighbours))


class NNLPGNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.task != "latency":
            raise ValueError("the NNLP GNN baseline predicts latency (model.task: latency)")
        self.cfg = cfg
        dims = [cfg.input_dim] + [cfg.hidden] * cfg.num_blocks
        self.layers = nn.ModuleList(SAGELayer(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.static_embed = nn.Linear(cfg.static_dim, cfg.hidden)
        self.head = nn.Sequential(nn.Linear(2 * cfg.hidden, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, cfg.num_outputs))

    def init_output(self, target_mean: float | Sequence[float], mean_nodes: float | None = None) -> None:
        init_output_bias(self.head[-1], target_mean, self.cfg.output)  # one graph-level output: no node split

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        x, adj = drop_op_identity(batch.tokens, self.cfg, self.training), batch.adj
        deg = adj.sum(dim=-1, keepdim=True)
        maskf = batch.mask.to(x.dtype)[..., None]
        for layer in self.layers:
            x = layer(x, adj, deg) * maskf
        if batch.static is None:
            raise ValueError("the latency model needs static (global scalar) features in the batch")
        static = F.relu(F.dropout(self.static_embed(batch.static), self.cfg.dropout, self.training))
        return positive_output(self.head(torch.cat([x.sum(dim=1), static], dim=-1)), self.cfg.output)
