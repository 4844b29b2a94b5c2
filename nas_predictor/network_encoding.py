"""Tokens for whole networks (ONNX graphs): the reference's 152-d node features and 40-d static features.

Node token = [op one-hot | attributes 80 | output shape 40] (spec 1.4):
- one-hot: the reference's 28 op codes in its order (32 slots, codes 29-32 unused) in the
  ``reference`` layout; the ``extended`` layout (our default) appends slots for ops the reference
  lacks (EXTRA_OPS: transformer and mobile ops, ...), one for ``Input`` and a last "other" slot.
  Fixes in both: ONNX ``MatMul`` takes the "Matmul" slot the reference misspelt (so it never matched),
  and ``Resize`` shares ``Upsample``'s slot (its successor op).
- attributes: 8 slots x f_PE_trans(L=5) of one scalar each; tuple attributes keep their first element
  (kernel_h, stride_h, pad_h_begin, dilation_h). Conv: kernel, stride, pad, dilation, group, bias;
  ConvTranspose: the same + output_padding; Max/AveragePool: kernel, stride, pad; Gemm: bias;
  Transpose: its perm (8 values, frequency-major). A missing slot is zeros; a value 0 is f_PE(0).
- shape: the first 4 output dims, zero-padded, each f_PE_trans(L=5).
Static features: f_PE_trans(L=5) of [batch size, FLOPs/1e9, params/1e9, memory access/1e9] (40 dims);
the ``extended`` layout appends the four values on a log scale (44 dims). Latency is close to a power
law of FLOPs and memory traffic, and their sines/cosines only encode small values near-linearly, so a
log-scale copy lets the head fit that power law directly (the GBDT baseline sees log values too).
Unknown op types go to the "other" slot (extended) or an all-zero one-hot (reference), with one
warning per type; they never stop the encoding.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from nas_predictor.encoding import GraphBatch, padded_adjacency, positional_encoding
from nas_predictor.graph import ArchGraph
# The op vocabulary lives in op_vocab (op_latency reads it too); these names stay importable here.
from nas_predictor.op_vocab import (  # noqa: F401
    ALIASES, ALIGNMENT_DIM, ALIGNMENTS, INPUT_OP, OP_GROUP_INDEX, OP_GROUP_MEMBERS, OP_GROUPS,
    channel_alignment_features, op_group_features,
)
from nas_predictor.runtime_fusion import fold_batchnorm
from nas_predictor.scalar_inputs import drop_scalar_inputs
from nas_predictor.stacked_sums import merge_stacked_sums

REFERENCE_OPS = (
    "Conv", "Relu", "Add", "Sigmoid", "Reshape", "MaxPool", "Split", "GlobalAveragePool", "Gemm", "Transpose",
    "Upsample", "BatchNormalization", "Mul", "Concat", "Flatten", "AveragePool", "Cast", "MatMul", "ReduceMean",
    "Pow", "Slice", "Div", "Sub", "Sqrt", "Clip", "Softmax", "Tanh", "ConvTranspose",
)
REFERENCE_SLOTS = 32
# Ops the reference vocabulary lacks, each with its own slot in the extended layout.
EXTRA_OPS = (
    "LayerNormalization", "Gelu", "Erf", "HardSwish", "HardSigmoid", "Pad", "Gather", "Unsqueeze", "Squeeze",
    "Expand", "Where", "Exp", "Dropout", "GlobalMaxPool", "LeakyRelu", "PRelu", "Max", "Min", "ReduceSum",
    "ReduceMax", "Neg", "Log", "Einsum", "InstanceNormalization", "GroupNormalization", "Tile", "Shape",
    "ConstantOfShape", "Range", "Equal", "Elu", "Softplus", "Mish", "Reciprocal", "Abs", "LogSoftmax",
)
OTHER = "other"
LAYOUTS = ("extended", "reference")
ATTR_SLOTS, ATTR_FREQS, SHAPE_DIMS = 8, 5, 4
PE_DIM = 2 * ATTR_FREQS
ATTRIBUTE_ORDER = {
    "Conv": ("kernel", "stride", "pad", "dilation", "group", "bias"),
    "ConvTranspose": ("kernel", "stride", "pad", "dilation", "group", "bias", "output_padding"),
    "MaxPool": ("kernel", "stride", "pad"),
    "AveragePool": ("kernel", "stride", "pad"),
    "Gemm": ("bias",),
}
STATIC_KEYS = ("batch_size", "flops", "params", "memory_access")
STATIC_SCALE = {"batch_size": 1.0, "flops": 1e-9, "params": 1e-9, "memory_access": 1e-9}
STATIC_DIM = len(STATIC_KEYS) * PE_DIM  # the reference layout
# log10(1 + raw value) / LOG_STATIC_DIVISOR[k]: about 0..1 over the networks of the latency families
LOG_STATIC_DIVISOR = {"batch_size": 3.0, "flops": 11.0, "params": 9.0, "memory_access": 10.0}

# Optional per-node cost slots (encoding.node_costs): log10(1 + the op's FLOPs and memory traffic at the
# graph's batch size) / these divisors (about 0..1 for single ops of the latency families). A node's
# cost is a product of its input/output sizes, kernel and group, which sinusoidal codes of each factor
# alone leave the model to multiply out; compute-bound GPU latency is close to a sum of these costs.
NODE_COST_KEYS = ("flops", "memory_access")
NODE_COST_DIVISOR = np.array([10.0, 9.0])
# The roofline readout (model.readout) reads a node's costs back from its token in these units:
# GFLOPs and millions of memory elements (its learnt times are per unit of these).
NODE_COST_UNITS = np.array([1e9, 1e6])

# Optional op-latency slot (encoding.op_latency): log10(1 + the node's predicted time in microseconds)
# / this divisor (about 0..1 for operators up to 100 ms). The grounded readout reads it back.
OP_US_DIVISOR = 5.0


def decode_op_latency(tokens: torch.Tensor, offset: int) -> torch.Tensor:
    """The op-latency column of ``tokens`` (..., token_dim) back in ms: (...,)."""
    column = tokens[..., offset].double()
    return ((torch.pow(10.0, column * OP_US_DIVISOR) - 1.0).clamp_min(0.0) / 1000.0).to(tokens.dtype)


def _pe(values) -> np.ndarray:
    return positional_encoding(np.asarray(values, dtype=np.float64), ATTR_FREQS, "trans")


def _first(value) -> float:
    if isinstance(value, (list, tuple)):
        return float(value[0]) if value else 0.0
    return float(value)


def node_costs(graph: ArchGraph) -> np.ndarray:
    """(num_nodes, 2): each node's FLOPs and memory traffic at the graph's batch size, as the
    node_costs token columns encode them (0 where the graph has no per-node attributes)."""
    if graph.attrs is None:
        return np.zeros((graph.num_nodes, len(NODE_COST_KEYS)), dtype=np.float64)
    return np.array([(float(a.get("flops", 0.0)), float(a.get("memory_batched", 0)) + float(a.get("memory_fixed", 0)))
                     for a in graph.attrs], dtype=np.float64).reshape(graph.num_nodes, len(NODE_COST_KEYS))


def decode_node_costs(tokens: torch.Tensor, offset: int) -> torch.Tensor:
    """The node-cost columns of ``tokens`` (..., token_dim) starting at ``offset``, back in
    NODE_COST_UNITS (GFLOPs, millions of elements): the inverse of the tokenizer's log10 scaling."""
    columns = tokens[..., offset : offset + len(NODE_COST_KEYS)].double()
    divisor = torch.as_tensor(NODE_COST_DIVISOR, dtype=columns.dtype, device=tokens.device)
    units = torch.as_tensor(NODE_COST_UNITS, dtype=columns.dtype, device=tokens.device)
    return ((torch.pow(10.0, columns * divisor) - 1.0).clamp_min(0.0) / units).to(tokens.dtype)


class NetworkTokenizer:
    """ArchGraph of a whole network (from ONNX) -> padded tokens, adjacency and static features."""

    def __init__(self, layout: str = "extended", node_costs: bool = False, channel_alignment: bool = False,
                 op_groups: bool = False, known_ops: Sequence[str] | None = None,
                 op_latency: bool | dict | None = None, fold_batchnorm: bool = False,
                 merge_stacked_sums: bool = False, drop_scalar_inputs: bool = False) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown network token layout {layout!r}; choose one of {LAYOUTS}")
        if (node_costs or channel_alignment or op_groups or op_latency) and layout != "extended":
            raise ValueError("node_costs, channel_alignment and op_groups extend the 'extended' layout; the "
                             "'reference' layout stays the reference's")
        if known_ops is not None and not op_groups:
            raise ValueError("known_ops needs op_groups: an op outside the vocabulary is encoded by its group")
        self.layout = layout
        self.node_costs = bool(node_costs)
        self.channel_alignment = bool(channel_alignment)
        self.op_groups = bool(op_groups)
        # fold_batchnorm: tokenise the graph onnxruntime runs (Conv+BN as one Conv; runtime_fusion.py), so
        # a network looks the same whether its exporter folded BN or not
        self.fold_batchnorm = bool(fold_batchnorm)
        # merge_stacked_sums: torch.stack(xs).sum(0) read as one n-ary Add (stacked_sums.py): structure for
        # the online accuracy surrogate, half the nodes of a stacked-sum cell network; off for latency
        self.merge_stacked_sums = bool(merge_stacked_sums)
        # drop_scalar_inputs: the source node of a scalar constant operand (x * 0, x + 3) left out, as its
        # token holds no value (scalar_inputs.py): structure for the online surrogate; off for latency
        self.drop_scalar_inputs = bool(drop_scalar_inputs)
        # op_latency: one more column, each node's time from a per-operator latency model of the device
        # (nas_predictor.op_latency); True sizes the tokens before the model is fitted (attach_op_model),
        # a dict is a fitted model's state (as a checkpoint stores it)
        self.op_latency = bool(op_latency)
        self.op_model = None
        if isinstance(op_latency, dict):
            from nas_predictor.op_latency import OpLatencyModel

            self.op_model = OpLatencyModel.from_state(op_latency)
        self.known_ops: frozenset[str] | None = None
        if known_ops is not None:
            self.known_ops = frozenset(ALIASES.get(op, op) for op in known_ops)
        slots = {op: i for i, op in enumerate(REFERENCE_OPS)}
        if layout == "extended":
            for op in (*EXTRA_OPS, INPUT_OP, OTHER):
                slots[op] = REFERENCE_SLOTS + len(slots) - len(REFERENCE_OPS)
            self.num_slots = REFERENCE_SLOTS + len(EXTRA_OPS) + 2
        else:
            self.num_slots = REFERENCE_SLOTS
        self._slot = slots
        self._warned: set[str] = set()

    @property
    def token_dim(self) -> int:
        return (self.num_slots + ATTR_SLOTS * PE_DIM + SHAPE_DIMS * PE_DIM + (len(NODE_COST_KEYS) if self.node_costs else 0)
                + (ALIGNMENT_DIM if self.channel_alignment else 0) + (len(OP_GROUPS) if self.op_groups else 0)
                + (1 if self.op_latency else 0))

    def attach_op_model(self, model) -> None:
        """Use ``model`` (an OpLatencyModel) for the op-latency column."""
        if not self.op_latency:
            raise ValueError("this tokenizer has no op-latency column (encoding.op_latency is off)")
        self.op_model = model

    @property
    def op_latency_offset(self) -> int:
        """Column of the op-latency slot: the last one."""
        if not self.op_latency:
            raise ValueError("this tokenizer has no op-latency column (encoding.op_latency is off)")
        return self.token_dim - 1

    def config(self) -> dict:
        config: dict = {"kind": "network", "layout": self.layout, "node_costs": self.node_costs}
        # absent = off, so checkpoints saved before these options still load
        if self.channel_alignment:
            config["channel_alignment"] = True
        if self.op_groups:
            config["op_groups"] = True
        if self.fold_batchnorm:
            config["fold_batchnorm"] = True
        if self.merge_stacked_sums:
            config["merge_stacked_sums"] = True
        if self.drop_scalar_inputs:
            config["drop_scalar_inputs"] = True
        if self.known_ops is not None:
            config["known_ops"] = sorted(self.known_ops)
        if self.op_latency:
            if self.op_model is None:
                raise ValueError("the op-latency column has no per-operator model yet (attach_op_model)")
            config["op_latency"] = self.op_model.state()
        return config

    def learn_vocabulary(self, graphs: Sequence[ArchGraph]) -> None:
        """Remember the op types of the training networks (known_ops); an op type outside them is then
        encoded by its group alone (op_groups only: without groups such a node would say nothing of its kind)."""
        if not self.op_groups:
            raise ValueError("learn_vocabulary needs op_groups")
        self.known_ops = frozenset(ALIASES.get(op, op) for g in graphs for op in g.ops)

    def slot(self, op: str) -> int | None:
        """One-hot position of an op type (None: all-zero one-hot, as the reference does for Input, and
        as an op outside a learnt vocabulary gets)."""
        op = ALIASES.get(op, op)
        if self.known_ops is not None and op not in self.known_ops:
            if op not in self._warned:
                self._warned.add(op)
                group = OP_GROUPS[OP_GROUP_INDEX[op]] if op in OP_GROUP_INDEX else "none"
                warnings.warn(f"op type {op!r} never appeared in this predictor's training networks; encoded "
                              f"by its group ({group}) only", stacklevel=4)
            return None
        if op in self._slot:
            return self._slot[op]
        if op == INPUT_OP:
            return None
        if op not in self._warned:
            self._warned.add(op)
            where = "the 'other' slot" if self.layout == "extended" else "an all-zero one-hot (reference layout)"
            warnings.warn(f"op type {op!r} is not in the latency vocabulary; encoded as {where}", stacklevel=4)
        return self._slot.get(OTHER)

    def runtime_graph(self, graph: ArchGraph) -> ArchGraph:
        """The graph as this tokenizer reads it: BN folded into its Conv when fold_batchnorm is on, stacked
        sums merged when merge_stacked_sums is, scalar constant operands left out when drop_scalar_inputs is."""
        if self.fold_batchnorm:
            graph = fold_batchnorm(graph)
        if self.merge_stacked_sums:
            graph = merge_stacked_sums(graph)
        return drop_scalar_inputs(graph) if self.drop_scalar_inputs else graph

    def node_features(self, graph: ArchGraph) -> np.ndarray:
        return self._node_features(self.runtime_graph(graph))

    def _node_features(self, graph: ArchGraph) -> np.ndarray:
        """node_features of a graph already in runtime form."""
        # Python only gathers raw values (slots once per op type, attributes only for the few op types that
        # have them, shapes); the encodings are then computed for all nodes at once (per-node f_PE calls
        # made batches several times slower).
        n = graph.num_nodes
        onehot = np.zeros((n, self.num_slots), dtype=np.float32)
        values = np.zeros((n, ATTR_SLOTS), dtype=np.float64)
        filled = np.zeros(n, dtype=np.int64)  # attribute slots in use (the rest stay all-zero)
        transposed = np.zeros(n, dtype=bool)  # Transpose perms are laid out frequency-major
        shapes = np.zeros((n, SHAPE_DIMS), dtype=np.float64)
        slots = {op: self.slot(op) for op in dict.fromkeys(graph.ops)}  # once per op type, not per node
        rows = [i for i, op in enumerate(graph.ops) if slots[op] is not None]
        onehot[rows, [slots[graph.ops[i]] for i in rows]] = 1.0
        if graph.attrs is not None:  # only a few op types have attribute slots: visit just those nodes
            for i, op in enumerate(graph.ops):
                if op == "Transpose" and "perm" in graph.attrs[i]:
                    values[i] = (list(graph.attrs[i]["perm"]) + [0] * ATTR_SLOTS)[:ATTR_SLOTS]
                    filled[i] = ATTR_SLOTS
                    transposed[i] = True
                elif op in ATTRIBUTE_ORDER:
                    names = ATTRIBUTE_ORDER[op]
                    values[i, : len(names)] = [_first(graph.attrs[i].get(name, 0)) for name in names]
                    filled[i] = len(names)
        else:
            filled[:] = [len(ATTRIBUTE_ORDER.get(op, ())) for op in graph.ops]
        if graph.shapes is not None:
            for i, shape in enumerate(graph.shapes):
                if shape:
                    dims = shape[:SHAPE_DIMS]
                    shapes[i, : len(dims)] = dims
        pe = _pe(values)  # (n, slots, PE_DIM)
        pe *= (np.arange(ATTR_SLOTS)[None, :] < filled[:, None])[..., None]
        attrs = pe.reshape(n, -1)
        if transposed.any():  # (value, freq, sin/cos) -> (freq, sin/cos, value)
            rows = pe[transposed].reshape(-1, ATTR_SLOTS, ATTR_FREQS, 2)
            attrs[transposed] = rows.transpose(0, 2, 3, 1).reshape(len(rows), -1)
        parts = [onehot, attrs, _pe(shapes).reshape(n, -1)]
        if self.node_costs:
            parts.append(np.log10(1.0 + node_costs(graph)) / NODE_COST_DIVISOR)
        if self.channel_alignment:
            parts.append(channel_alignment_features(graph))
        if self.op_groups:
            parts.append(op_group_features(graph))
        if self.op_latency:
            if self.op_model is None:
                raise ValueError("the op-latency column has no per-operator model yet (attach_op_model)")
            parts.append((np.log10(1.0 + 1000.0 * self.op_model.node_ms(graph)) / OP_US_DIVISOR)[:, None])
        return np.concatenate(parts, axis=1)

    @property
    def cost_offset(self) -> int:
        """Column of the first node-cost slot in a token (node_costs only)."""
        if not self.node_costs:
            raise ValueError("this tokenizer has no node-cost columns (encoding.node_costs is off)")
        return self.num_slots + ATTR_SLOTS * PE_DIM + SHAPE_DIMS * PE_DIM

    @property
    def static_dim(self) -> int:
        return STATIC_DIM + (len(STATIC_KEYS) if self.layout == "extended" else 0)

    def static_features(self, graph: ArchGraph) -> np.ndarray:
        return self._static_features(self.runtime_graph(graph))

    def _static_features(self, graph: ArchGraph) -> np.ndarray:
        raw = [max(0.0, float(graph.scalars.get(k, 1.0 if k == "batch_size" else 0.0))) for k in STATIC_KEYS]
        pe = _pe([v * STATIC_SCALE[k] for k, v in zip(STATIC_KEYS, raw)]).reshape(-1)
        if self.layout != "extended":
            return pe
        logs = [np.log10(1.0 + v) / LOG_STATIC_DIVISOR[k] for k, v in zip(STATIC_KEYS, raw)]
        return np.concatenate([pe, np.asarray(logs, dtype=np.float32)])

    def runtime_features(self, graph: ArchGraph) -> tuple[ArchGraph, tuple[np.ndarray, np.ndarray]]:
        """(the runtime graph, its (node, static) features): what ``encode`` takes as ``features``, with the
        graph put into runtime form once (node_features and static_features each do it again)."""
        runtime = self.runtime_graph(graph)
        return runtime, (self._node_features(runtime), self._static_features(runtime))

    def encode(
        self, graphs: Sequence[ArchGraph], features: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> GraphBatch:
        """Padded batch of ``graphs``; ``features`` = their (node, static) features when already computed
        (then the graphs must already be in runtime form, as LazyGraphBatch keeps them)."""
        if not graphs:
            raise ValueError("cannot encode an empty list of graphs")
        if features is None:
            graphs = [self.runtime_graph(g) for g in graphs]  # once here; the features below read these
            features = [(self._node_features(g), self._static_features(g)) for g in graphs]
        n = max(g.num_nodes for g in graphs)
        tokens = np.zeros((len(graphs), n, self.token_dim), dtype=np.float32)
        for i, (g, (nodes, _)) in enumerate(zip(graphs, features)):
            tokens[i, : g.num_nodes] = nodes
        adj, mask = padded_adjacency(graphs, n)
        static = np.stack([st for _, st in features]).astype(np.float32)
        return GraphBatch(torch.from_numpy(tokens), torch.from_numpy(adj), torch.from_numpy(mask), torch.from_numpy(static))


class LazyGraphBatch:
    """Graphs that are tokenised when a batch is taken (``select``), not all at once.

    Whole networks have hundreds of nodes, so thousands of them padded to one size would take
    gigabytes; training and prediction only ever need one batch at a time. Stands in for a
    GraphBatch wherever batches are drawn with ``select`` (train_member, _predict). With
    ``cache_features`` each graph's unpadded node features are kept after their first use (training
    draws every graph once per epoch; ~200 KB per network).
    """

    def __init__(self, tokenizer: NetworkTokenizer, graphs: Sequence[ArchGraph], cache_features: bool = False) -> None:
        self.tokenizer = tokenizer
        # folded once here (not per batch), so sizes, cost totals and op totals see the tokenised graph
        self.graphs = [tokenizer.runtime_graph(g) for g in graphs]
        self.sizes = np.array([g.num_nodes for g in self.graphs], dtype=np.int64)
        self._features: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache_features else None

    def __len__(self) -> int:
        return len(self.graphs)

    def cost_totals(self) -> np.ndarray:
        """(num_graphs, 2): each network's summed node costs in NODE_COST_UNITS (the roofline readout's init)."""
        return np.stack([node_costs(g).sum(axis=0) / NODE_COST_UNITS for g in self.graphs])

    def op_totals(self) -> np.ndarray:
        """(num_graphs,): each network's summed per-operator times in ms (the grounded readout's init)."""
        model = self.tokenizer.op_model
        if model is None:
            raise ValueError("the tokenizer has no per-operator latency model")
        return model.predict_ms(self.graphs)

    def used_columns(self) -> list[int]:
        """The token columns that are non-zero in at least one node of these graphs (ascending)."""
        used = np.zeros(self.tokenizer.token_dim, dtype=bool)
        for i in range(len(self.graphs)):
            used |= (self._node_features(i) != 0).any(axis=0)
        return np.flatnonzero(used).tolist()

    def _node_features(self, i: int) -> np.ndarray:
        if self._features is None:
            return self.tokenizer._node_features(self.graphs[i])
        self._cache(i)
        return self._features[i][0]

    def _cache(self, i: int) -> None:
        if i not in self._features:
            g = self.graphs[i]
            self._features[i] = (self.tokenizer._node_features(g), self.tokenizer._static_features(g))  # folded at init

    def select(self, index) -> GraphBatch:
        if isinstance(index, slice):
            index = range(*index.indices(len(self.graphs)))
        chosen = [int(i) for i in np.asarray(index).reshape(-1)]
        if self._features is None:
            return self.tokenizer.encode([self.graphs[i] for i in chosen])
        for i in chosen:
            self._cache(i)
        return self.tokenizer.encode([self.graphs[i] for i in chosen], [self._features[i] for i in chosen])
