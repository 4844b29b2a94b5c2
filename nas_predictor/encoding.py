"""Scalar position encoding f_PE and the cell tokenizer (ArchGraph -> tokens + adjacency).

f_PE(v) = [sin(a_0 v), cos(a_0 v), ..., sin(a_{L-1} v), cos(a_{L-1} v)]  (no raw copy of v).

Frequency schemes ("variants"):
  trans         a_k = 10000^(-k/L)                     (Transformer style; latency features)
  nerf          a_k = pi * (1 + k (2^(L-1) - 1)/(L-1))  evaluated in float64  (our default for cells)
  nerf_float32  the same formula evaluated in float32, as the reference implementation does.

Why "nerf" is float64 here: the reference multiplies float32 labels by frequencies up to 2^31*pi, so the
arguments are ~1e10 and float32 keeps no fractional digits: its codes are a platform-dependent hash of
the label. In float64 the arguments keep ~6 fractional digits, so every op label and position gets a
fixed, reproducible, distinct 64-d code (the property the model needs). The float32 variant is kept for
comparison with the reference code only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from nas_predictor.errors import GraphError
from nas_predictor.graph import ArchGraph
from nas_predictor.proxy_features import ProxyScaler

PE_VARIANTS = ("nerf", "nerf_float32", "trans")


def pe_frequencies(num_freqs: int, variant: str) -> np.ndarray:
    """The L angular frequencies a_k of a variant (float64)."""
    if num_freqs < 1:
        raise ValueError(f"num_freqs must be >= 1, got {num_freqs}")
    k = np.arange(num_freqs, dtype=np.float64)
    if variant == "trans":
        return 10000.0 ** (-k / num_freqs)
    if variant in ("nerf", "nerf_float32"):
        top = 2.0 ** (num_freqs - 1)
        lin = np.ones(1) if num_freqs == 1 else 1.0 + k * (top - 1.0) / (num_freqs - 1)
        return math.pi * lin
    raise ValueError(f"unknown PE variant {variant!r}; choose one of {PE_VARIANTS}")


def positional_encoding(values: np.ndarray | Sequence[float] | float, num_freqs: int, variant: str) -> np.ndarray:
    """f_PE applied element-wise: shape (..., 2L), laid out per frequency, sine first. float32 result."""
    v = np.asarray(values, dtype=np.float64)[..., None]
    freqs = pe_frequencies(num_freqs, variant)
    if variant == "nerf_float32":
        angles = v.astype(np.float32) * freqs.astype(np.float32)
    else:
        angles = v * freqs
    out = np.stack([np.sin(angles), np.cos(angles)], axis=-1)  # (..., L, 2)
    return out.reshape(*out.shape[:-2], 2 * num_freqs).astype(np.float32)


@dataclass
class GraphBatch:
    """Padded batch: tokens (B, N, F), symmetric 0/1 adjacency (B, N, N), node mask (B, N)."""

    tokens: torch.Tensor
    adj: torch.Tensor
    mask: torch.Tensor
    static: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "GraphBatch":
        return GraphBatch(
            self.tokens.to(device),
            self.adj.to(device),
            self.mask.to(device),
            None if self.static is None else self.static.to(device),
        )

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, index: torch.Tensor | np.ndarray | slice) -> "GraphBatch":
        return GraphBatch(
            self.tokens[index], self.adj[index], self.mask[index], None if self.static is None else self.static[index]
        )

    @staticmethod
    def concat(batches: Sequence["GraphBatch"]) -> "GraphBatch":
        n = max(b.tokens.shape[1] for b in batches)

        def pad(t: torch.Tensor, dims: int) -> torch.Tensor:
            return t if t.shape[1] == n else torch.nn.functional.pad(t, _pad_spec(t, n, dims))

        return GraphBatch(
            torch.cat([pad(b.tokens, 1) for b in batches]),
            torch.cat([pad(b.adj, 2) for b in batches]),
            torch.cat([pad(b.mask, 1) for b in batches]),
            None if batches[0].static is None else torch.cat([b.static for b in batches]),
        )


def _pad_spec(t: torch.Tensor, n: int, dims: int) -> list[int]:
    # F.pad lists pads from the last dim backwards; pad dims 1 (and 2) of t up to n.
    spec: list[int] = []
    for d in range(t.dim() - 1, 0, -1):
        spec += [0, n - t.shape[d]] if d <= dims else [0, 0]
    return spec


# On a CPU a batch's attention maps (batch x nodes x nodes) must stay cache-sized: 128 real networks of
# ~800 nodes padded together ran 8x slower per network than one at a time (276 real networks: 2.7 s
# with this budget, 4.6 s with 8M pairs, 23 s as one padded batch of 128). Batches of similar sizes
# are cut at this many padded node pairs (a GPU takes the whole batch_size).
CPU_PAIR_BUDGET = 1_000_000


def size_batches(order: np.ndarray, sizes: np.ndarray, batch_size: int, device: str) -> list[np.ndarray]:
    """``order`` (indices sorted by graph size) cut into batches of at most ``batch_size`` graphs and,
    on a CPU, at most CPU_PAIR_BUDGET padded node pairs."""
    parts, start = [], 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < batch_size and (
                device != "cpu" or (end + 1 - start) * int(sizes[order[end]]) ** 2 <= CPU_PAIR_BUDGET):
            end += 1
        parts.append(order[start:end])
        start = end
    return parts


def padded_adjacency(graphs: Sequence[ArchGraph], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 0/1 adjacency (B, n, n) and node mask (B, n) of graphs padded to n nodes."""
    adj = np.zeros((len(graphs), n, n), dtype=np.float32)
    mask = np.zeros((len(graphs), n), dtype=bool)
    for i, g in enumerate(graphs):
        mask[i, : g.num_nodes] = True
        if g.edges:
            src, dst = np.asarray(g.edges).T
            adj[i, src, dst] = 1.0
            adj[i, dst, src] = 1.0
    return adj, mask


class CellTokenizer:
    """NAS-Bench cell tokens: token_i = [f_PE(op_code_i), f_PE(i)] (2 x 2L dims), A = adj + adj^T."""

    def __init__(self, op_vocab: Sequence[str], num_freqs: int = 32, variant: str = "nerf",
                 proxies: Mapping[str, Any] | None = None) -> None:
        if len(set(op_vocab)) != len(op_vocab) or not op_vocab:
            raise ValueError(f"op_vocab must be non-empty and unique, got {list(op_vocab)}")
        self.op_vocab = tuple(op_vocab)
        self.num_freqs = num_freqs
        self.variant = variant
        # zero-cost proxies as the batch's static features (nas_predictor/proxy_features.py), or none
        self.proxies = ProxyScaler.from_config(proxies) if proxies else None
        self._code = {op: i for i, op in enumerate(self.op_vocab)}
        self._op_table = torch.from_numpy(positional_encoding(np.arange(len(op_vocab)), num_freqs, variant))
        self._pos_table = torch.zeros(0, 2 * num_freqs)

    @property
    def token_dim(self) -> int:
        return 4 * self.num_freqs

    def config(self) -> dict:
        config = {"op_vocab": list(self.op_vocab), "num_freqs": self.num_freqs, "variant": self.variant}
        if self.proxies is not None:
            config["proxies"] = self.proxies.config()
        return config

    def _positions(self, n: int) -> torch.Tensor:
        if self._pos_table.shape[0] < n:
            self._pos_table = torch.from_numpy(positional_encoding(np.arange(n), self.num_freqs, self.variant))
        return self._pos_table[:n]

    def op_codes(self, graph: ArchGraph) -> list[int]:
        try:
            return [self._code[op] for op in graph.ops]
        except KeyError as err:
            raise GraphError(f"unknown op {err.args[0]!r}; this tokenizer knows {list(self.op_vocab)}") from None

    def encode(self, graphs: Sequence[ArchGraph]) -> GraphBatch:
        """Tokenise and pad a list of graphs into one batch (no per-graph tensors are built)."""
        if not graphs:
            raise GraphError("cannot encode an empty list of graphs")
        b = len(graphs)
        n = max(g.num_nodes for g in graphs)
        codes = np.zeros((b, n), dtype=np.int64)
        for i, g in enumerate(graphs):
            codes[i, : g.num_nodes] = self.op_codes(g)
        adj, mask = padded_adjacency(graphs, n)
        mask_t = torch.from_numpy(mask)
        tokens = torch.cat(
            [self._op_table[torch.from_numpy(codes)], self._positions(n).expand(b, n, -1)], dim=-1
        ) * mask_t[..., None]
        static = None if self.proxies is None else torch.from_numpy(self.proxies.features(graphs))
        return GraphBatch(tokens=tokens, adj=torch.from_numpy(adj), mask=mask_t, static=static)
