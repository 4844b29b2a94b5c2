"""NAR-Former V2: graph-aided attention blocks, grouped FFN, readouts and the prediction head.

Shapes: tokens X (B, N, F), symmetric 0/1 adjacency A (B, N, N) with zero diagonal, node mask (B, N).
Padding rows have X = 0 and A = 0, so they never send anything to real nodes; readouts exclude them.
Numbers in comments refer to ../shared/docs/narformer2-spec.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_predictor.encoding import GraphBatch
# ModelConfig and ROOFLINE_READOUTS live in model_config (torch-free); importers of this module keep them.
from nas_predictor.model_config import ROOFLINE_READOUTS, ModelConfig  # noqa: F401
from nas_predictor.network_encoding import decode_node_costs, decode_op_latency


# The roofline readout's terms, in the head's output order (each times num_outputs).
ROOFLINE_TERMS = ("per_gflop", "per_million_elements", "fixed")
# The grounded readout's extra term: the node's per-operator time (ms) times a learnt factor.
GROUNDED_TERMS = (*ROOFLINE_TERMS, "per_op_ms")
GROUNDED_SHARE = 0.85  # of the initial prediction from the per-operator term


def _thomas_init(linear: nn.Linear) -> None:
    # Reference init for head / static / fusion linears (spec 2.5): bias bound uses fan_out.
    bound_w = 1.0 / math.sqrt(linear.in_features)
    bound_b = 1.0 / math.sqrt(linear.out_features)
    nn.init.uniform_(linear.weight, -bound_w, bound_w)
    if linear.bias is not None:
        nn.init.uniform_(linear.bias, -bound_b, bound_b)


class GroupLinear(nn.Module):
    """G separate linear maps on G contiguous feature chunks, then one LayerNorm shared by the chunks.

    Works in grouped layout (G, M, in/G) -> (G, M, out/G) so that two of them can be chained without
    transposing the large hidden activations back and forth.
    """

    def __init__(self, in_features: int, out_features: int, groups: int) -> None:
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(f"GroupLinear {in_features}->{out_features} not divisible into {groups} groups")
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(groups, out_features // groups))
        self.norm = nn.LayerNorm(out_features // groups)
        # Xavier with PyTorch's 3-D fan rule gives ~7x smaller weights than per-group Xavier (spec 2.5).
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.baddbmm(self.bias[:, None, :], x, self.weight))


class GroupedFFN(nn.Module):
    def __init__(self, dim: int, ratio: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.groups = groups
        self.up = GroupLinear(dim, dim * ratio, groups)
        self.down = GroupLinear(dim * ratio, dim, groups)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, dim = x.shape[:-1], x.shape[-1]
        g = x.reshape(-1, self.groups, dim // self.groups).transpose(0, 1)  # (G, M, D/G)
        g = self.dropout(self.down(self.dropout(F.relu(self.up(g), inplace=True))))
        return g.transpose(0, 1).reshape(*lead, dim)


class GraphAidedBlock(nn.Module):
    """Type-aware enhancement -> graph-masked sigmoid attention -> W_r residual, L2 -> ReLU -> GFFN."""

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.degree_gate = nn.Linear(1, in_dim)
        self.query = nn.Linear(in_dim, in_dim)
        self.aggregate = nn.Linear(in_dim, cfg.hidden)
        self.residual = nn.Linear(in_dim, cfg.hidden, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.ffn_norm = nn.LayerNorm(cfg.hidden)
        self.ffn = GroupedFFN(cfg.hidden, cfg.ffn_ratio, cfg.groups, cfg.dropout)
        self.layer_scale = nn.Parameter(torch.full((cfg.hidden,), cfg.layer_scale_init))
        self.scale = 1.0 / math.sqrt(in_dim)

    def forward(
        self, x: torch.Tensor, adj: torch.Tensor, deg: torch.Tensor, edges: EdgeList | None = None,
    ) -> torch.Tensor:
        x = torch.sigmoid(self.degree_gate(deg)) * x
        q = torch.sigmoid(self.query(x))
        if edges is None:
            scores = torch.matmul(q, q.transpose(-1, -2)) * self.scale * adj
            # Row-normalised by the sum (no softmax); isolated/padded rows stay all-zero.
            probs = scores / (scores.sum(dim=-1, keepdim=True) + 1e-6)
            h = self.aggregate(torch.matmul(probs, x))
        else:
            h = self.aggregate(self._sparse_attention(q, x, edges))
        # h += W_r x, accumulated inside the GEMM: one pass over h less than a separate add.
        h.view(-1, h.shape[-1]).addmm_(x.reshape(-1, x.shape[-1]), self.residual.weight.t())
        h = self.dropout(F.relu(F.normalize(h, p=2.0, dim=-1, eps=1e-12)))
        return h + self.layer_scale * self.ffn(self.ffn_norm(h))


    def _sparse_attention(self, q: torch.Tensor, x: torch.Tensor, edges: EdgeList) -> torch.Tensor:
        """The same masked, row-normalised attention computed on the edges only: O(E·d) instead of
        O(N²·d). A whole network has hundreds of nodes but about one edge per node, so the dense
        form spends almost all of its time multiplying zeros."""
        b, n, d = x.shape
        qf, xf = q.reshape(b * n, d), x.reshape(b * n, d)
        # index_select, not qf[rows]: its backward is an index_add, while advanced indexing's is an
        # accumulating index_put that took ~18 % of a CPU training step.
        scores = (qf.index_select(0, edges.row) * qf.index_select(0, edges.col)).sum(dim=-1) * (self.scale * edges.weight)
        denom = scores.new_zeros(b * n).index_add_(0, edges.row, scores) + 1e-6
        probs = scores / denom.index_select(0, edges.row)
        out = xf.new_zeros(b * n, d).index_add_(0, edges.row, probs[:, None] * xf.index_select(0, edges.col))
        return out.view(b, n, d)


class EdgeList(NamedTuple):
    """Non-zero adjacency entries of a padded batch, as flat indices into its B·N nodes."""

    row: torch.Tensor
    col: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def from_adjacency(cls, adj: torch.Tensor, packed: torch.Tensor | None = None) -> "EdgeList":
        """The edges of ``adj`` (B, N, N) as flat indices into its B·N nodes or, with ``packed`` (the flat
        indices of the real nodes, ascending), into those real nodes (edges join real nodes only)."""
        b, i, j = adj.nonzero(as_tuple=True)
        n = adj.shape[-1]
        row, col = b * n + i, b * n + j
        if packed is not None:
            position = torch.searchsorted(packed, row), torch.searchsorted(packed, col)
            row, col = position
        return cls(row, col, adj[b, i, j])


# Graphs with more nodes than this use the edge-list attention (whole networks); NAS cells (8 nodes)
# keep the dense form, which is faster there. Both compute the same numbers.
SPARSE_MIN_NODES = 32


class HierarchicalFusion(nn.Module):
    """Mean-pool every block output and mix them with per-sample sigmoid weights (spec 2.3)."""

    def __init__(self, hidden: int, num_blocks: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden * num_blocks, hidden * num_blocks // 4)
        self.fc2 = nn.Linear(hidden * num_blocks // 4, num_blocks)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # pooled: (B, K, D)
        weights = torch.sigmoid(self.fc2(F.relu(self.fc1(pooled.flatten(1)))))
        return (weights[..., None] * pooled).sum(dim=1)


def drop_op_identity(x: torch.Tensor, cfg: ModelConfig, training: bool) -> torch.Tensor:
    """Tokens with each node's op one-hot (columns :op_slots) zeroed with probability cfg.op_dropout
    while training; unchanged otherwise."""
    if not training or cfg.op_dropout <= 0:
        return x
    keep = (torch.rand(x.shape[:-1] + (1,), device=x.device) >= cfg.op_dropout).to(x.dtype)
    return torch.cat([x[..., : cfg.op_slots] * keep, x[..., cfg.op_slots :]], dim=-1)


# exp(z) is clamped here: e^±30 covers 1e-13..1e13 ms, and an early step cannot overflow to inf.
EXP_OUTPUT_LIMIT = 30.0


def positive_output(z: torch.Tensor, kind: str = "softplus") -> torch.Tensor:
    """softplus(-z) (= -logsigmoid(z), the reference's output) or exp(z); (B,) for one output, else (B, K)."""
    z = z.squeeze(-1) if z.shape[-1] == 1 else z
    if kind == "exp":
        return torch.exp(z.clamp(-EXP_OUTPUT_LIMIT, EXP_OUTPUT_LIMIT))
    return F.softplus(-z)


@torch.no_grad()
def init_output_bias(last: nn.Linear, target_mean: float | Sequence[float], kind: str = "softplus") -> None:
    """Set the last bias so that the output at z = b equals the (per-output) mean training label."""
    means = torch.as_tensor(target_mean, dtype=torch.float64).reshape(-1).expand(last.out_features)
    if not bool((means > 0).all()):
        raise ValueError(f"target mean must be positive, got {target_mean}")
    bias = torch.log(means) if kind == "exp" else -torch.log(torch.expm1(means))
    last.bias.copy_(bias.to(last.bias.dtype))


class NARFormerV2(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.terms = GROUNDED_TERMS if cfg.readout == "grounded" else ROOFLINE_TERMS
        first = len(cfg.input_columns) if cfg.input_columns is not None else cfg.input_dim
        dims = [first] + [cfg.hidden] * (cfg.num_blocks - 1)
        # not saved with the weights: ModelConfig holds the columns, and older checkpoints have no such entry
        self.register_buffer("input_columns", torch.tensor(cfg.input_columns, dtype=torch.long)
                             if cfg.input_columns is not None else None, persistent=False)
        self.blocks = nn.ModuleList(GraphAidedBlock(d, cfg) for d in dims)
        head_in = cfg.hidden
        if cfg.task == "accuracy":
            self.fusion = HierarchicalFusion(cfg.hidden, cfg.num_blocks)
            if cfg.proxy_dim:  # zero-cost proxies: embedded, then read by the head beside the graph vector
                self.proxy_embed = nn.Linear(cfg.proxy_dim, cfg.hidden)
                head_in = 2 * cfg.hidden
        elif cfg.readout in ("sum", "node_sum", "roofline_sum"):
            self.static_embed = nn.Linear(cfg.static_dim, cfg.hidden)
            if cfg.readout != "roofline_sum":  # roofline_sum's head reads nodes; its graph_head the statics
                head_in = 2 * cfg.hidden
        # roofline: three positive terms (time per GFLOP, per million elements, fixed) per output
        outputs = cfg.num_outputs * (len(self.terms) if cfg.readout in ROOFLINE_READOUTS else 1)
        self.head = _mlp_head(head_in, cfg.hidden, outputs, cfg.dropout)
        # roofline_sum: the network-level term's head, on the summed embeddings and the static features
        self.graph_head = _mlp_head(2 * cfg.hidden, cfg.hidden, cfg.num_outputs, cfg.dropout) \
            if cfg.readout == "roofline_sum" else None
        # The attention blocks keep torch's default init; head, fusion and static linears use the reference's.
        for part in (self.head, self.graph_head, getattr(self, "fusion", None), getattr(self, "static_embed", None),
                     getattr(self, "proxy_embed", None)):
            for linear in part.modules() if part is not None else ():
                if isinstance(linear, nn.Linear):
                    _thomas_init(linear)

    def init_output(self, target_mean: float | Sequence[float], mean_nodes: float | None = None,
                    mean_costs: Sequence[float] | None = None) -> None:
        """Start predictions near the mean training label (one mean per output).

        With the reference init the first predictions are several times the labels, and many early
        steps go into pulling the output level down instead of learning the ranking. With the
        node_sum and op_sum readouts each node starts at the mean label divided by the mean node count.
        With roofline, each of its three terms starts at a third of the mean label: the times per unit
        are the mean label over three times the mean network's GFLOPs (``mean_costs[0]``), its
        millions of memory elements (``mean_costs[1]``) and its node count. roofline_sum splits the
        mean label in four: the three terms and the network-level one.
        """
        if self.cfg.readout in ROOFLINE_READOUTS:
            if not mean_nodes or mean_costs is None:
                raise ValueError("the roofline readout's init needs the mean node count and mean network costs")
            means = torch.as_tensor(target_mean, dtype=torch.float64).reshape(-1).expand(self.cfg.num_outputs)
            costs = [max(float(c), 1e-9) for c in mean_costs]
            if self.cfg.readout == "grounded":
                # mean_costs: GFLOPs, M elements, then the summed per-operator ms. The prediction starts
                # as that sum rescaled to the labels (GROUNDED_SHARE of the mean), the roofline terms
                # share the rest: the micro-benchmarks lead, and the correction is learnt.
                if len(costs) != len(GROUNDED_TERMS) - 1:
                    raise ValueError("the grounded readout's init needs the mean summed per-operator time")
                per_term = torch.as_tensor(costs[:2] + [float(mean_nodes), costs[2]], dtype=torch.float64)
                share = torch.tensor([(1 - GROUNDED_SHARE) / 3] * 3 + [GROUNDED_SHARE], dtype=torch.float64)
                target = means[None, :] * share[:, None] / per_term[:, None]
                init_output_bias(self.head[-1], target.reshape(-1), self.cfg.output)
                return
            parts = len(ROOFLINE_TERMS) + (self.graph_head is not None)
            per_term = torch.as_tensor(costs + [float(mean_nodes)], dtype=torch.float64)
            target = means[None, :] / (parts * per_term[:, None])  # (terms, outputs)
            init_output_bias(self.head[-1], target.reshape(-1), self.cfg.output)
            if self.graph_head is not None:
                init_output_bias(self.graph_head[-1], means / parts, self.cfg.output)
            return
        if self.cfg.readout in ("node_sum", "op_sum") and mean_nodes:
            target_mean = torch.as_tensor(target_mean, dtype=torch.float64) / float(mean_nodes)
        init_output_bias(self.head[-1], target_mean, self.cfg.output)

    def _static(self, batch: GraphBatch) -> torch.Tensor:
        """The embedded static (whole-network scalar) features, (B, hidden)."""
        if batch.static is None:
            raise ValueError("the latency model needs static (global scalar) features in the batch")
        return F.relu(F.dropout(self.static_embed(batch.static), self.cfg.dropout, self.training))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """Predictions, shape (B,) (or (B, num_outputs)), strictly positive (softplus(-z) or exp(z))."""
        x, adj, mask = batch.tokens, batch.adj, batch.mask
        x = drop_op_identity(x, self.cfg, self.training)
        if self.input_columns is not None:
            x = x.index_select(-1, self.input_columns)
        deg = adj.sum(dim=-1, keepdim=True)
        maskf = mask.to(x.dtype)[..., None]
        edges = packed = None
        if adj.shape[-1] > SPARSE_MIN_NODES:
            # Whole networks: the blocks run on the real nodes only, packed into one row (1, P, F). Every
            # step of a block is per node or along an edge, so padding rows never reach a real node, but
            # networks of 100 to 200 nodes batched together left a sixth of every GEMM on padding.
            packed = mask.reshape(-1).nonzero().squeeze(1)
            edges = EdgeList.from_adjacency(adj, packed)
            x = x.reshape(-1, x.shape[-1]).index_select(0, packed)[None]
            deg = deg.reshape(-1, 1).index_select(0, packed)[None]
        pooled = []
        for block in self.blocks:
            x = block(x, adj, deg, edges)
            if self.cfg.task == "accuracy":
                padded = _unpack(x, packed, mask) if packed is not None else x
                pooled.append((padded * maskf).sum(dim=1) / maskf.sum(dim=1).clamp_min(1.0))
        if packed is not None:
            x = _unpack(x, packed, mask)
        if self.cfg.task == "accuracy":
            graph_vec = self.fusion(torch.stack(pooled, dim=1))
            if self.cfg.proxy_dim:
                if batch.static is None or batch.static.shape[-1] != self.cfg.proxy_dim:
                    raise ValueError(f"this accuracy model reads {self.cfg.proxy_dim} zero-cost proxies per cell; the "
                                     "batch has " + ("none" if batch.static is None else str(batch.static.shape[-1])))
                proxies = F.relu(F.dropout(self.proxy_embed(batch.static), self.cfg.dropout, self.training))
                graph_vec = torch.cat([graph_vec, proxies], dim=-1)
        elif self.cfg.readout == "op_sum":
            out = positive_output(self.head(x), self.cfg.output)  # (B, N) or (B, N, K)
            return (out * (maskf if out.dim() == 3 else maskf[..., 0])).sum(dim=1)
        elif self.cfg.readout in ROOFLINE_READOUTS:
            # (B, N, 3K) -> (B, N, 3, K); 3K > 1, so positive_output squeezes nothing
            rates = positive_output(self.head(x), self.cfg.output).unflatten(-1, (len(self.terms), self.cfg.num_outputs))
            costs = decode_node_costs(batch.tokens, self.cfg.cost_offset)  # (B, N, 2), before op dropout
            parts = [costs, torch.ones_like(costs[..., :1])]  # GFLOPs, M elements, 1
            if self.cfg.readout == "grounded":
                parts.append(decode_op_latency(batch.tokens, self.cfg.op_latency_offset)[..., None])  # ms
            work = torch.cat(parts, dim=-1)  # (B, N, terms)
            out = ((rates * work[..., None]).sum(dim=2) * maskf).sum(dim=1)  # (B, K)
            if self.graph_head is not None:
                graph_vec = torch.cat([(x * maskf).sum(dim=1), self._static(batch)], dim=-1)
                network = self.graph_head(graph_vec)  # (B, K): positive_output would squeeze K = 1
                out = out + positive_output(network, self.cfg.output).reshape(out.shape)
            return out.squeeze(-1) if self.cfg.num_outputs == 1 else out
        else:
            static = self._static(batch)
            if self.cfg.readout == "node_sum":
                per_node = torch.cat([x, static[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
                out = positive_output(self.head(per_node), self.cfg.output)  # (B, N) or (B, N, K)
                return (out * (maskf if out.dim() == 3 else maskf[..., 0])).sum(dim=1)
            graph_vec = torch.cat([(x * maskf).sum(dim=1), static], dim=-1)
        return positive_output(self.head(graph_vec), self.cfg.output)


def _unpack(x: torch.Tensor, packed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Packed node rows (1, P, D) back in the padded layout of ``mask`` (B, N), zeros on padding."""
    b, n = mask.shape
    return x.new_zeros(b * n, x.shape[-1]).index_copy(0, packed, x[0]).view(b, n, -1)


def _mlp_head(inputs: int, hidden: int, outputs: int, dropout: float) -> nn.Sequential:
    """The prediction head: two hidden ReLU layers (the reference's), then a linear output."""
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, outputs),
    )
