"""The op vocabulary the network encoder and the per-operator latency model share: op aliases, op
groups, and the channel-alignment and op-group node features (numpy only).

Its own module so that network_encoding (which can carry an OpLatencyModel) and op_latency (which
reads these features) both build on it without importing each other.
"""

from __future__ import annotations

import numpy as np

from nas_predictor.graph import ArchGraph

ALIASES = {"Resize": "Upsample"}
INPUT_OP = "Input"

# Optional channel-alignment slots (encoding.channel_alignment): whether the node's output channels, and
# the channels of every node feeding it, are multiples of 4, 8 and 16 (0 when unknown or not). CPU
# kernels run convolutions in channel-blocked layouts (onnxruntime's MLAS: NCHWc, blocks of 8 or 16)
# and fall back to slower code for channel counts off the block. Measured here with onnxruntime 1.32
# on one EPYC core: a 7x7 depthwise conv at 112x112 costs 8-10 us per channel at 32, 48 or 64
# channels, 67-68 us at 33 or 38 (benchmarks/depthwise_alignment.py). Sinusoidal codes of the channel
# count cannot express divisibility, and the depthwise families' latencies, which MACs explain worst, turn on it.
ALIGNMENTS = (4, 8, 16)
ALIGNMENT_DIM = 2 * len(ALIGNMENTS)

# Optional op-group slots (encoding.op_groups): a coarse kind per op type. A network family that
# introduces an op type no training network had (MobileNetV3's HardSwish, a NB201 cell's AveragePool)
# gives a one-hot column whose weights never trained; the group tells the model what such an op is
# like (an elementwise activation, a pooling) and costs about. With a tokenizer that knows its
# training vocabulary (known_ops), an op outside it is encoded by its group alone, which the model
# learns to read under model.op_dropout.
OP_GROUP_MEMBERS = {
    "conv": ("Conv", "ConvTranspose"),
    "dense": ("Gemm", "MatMul", "Einsum"),
    "activation": ("Relu", "Sigmoid", "Tanh", "Clip", "HardSwish", "HardSigmoid", "Gelu", "Erf", "LeakyRelu",
                   "PRelu", "Elu", "Softplus", "Mish", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal"),
    "binary": ("Add", "Mul", "Sub", "Div", "Pow", "Max", "Min", "Where", "Equal"),
    "normalization": ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization"),
    "pooling": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"),
    "reduction": ("ReduceMean", "ReduceSum", "ReduceMax", "Softmax", "LogSoftmax"),
    "layout": ("Reshape", "Flatten", "Transpose", "Concat", "Split", "Slice", "Gather", "Pad", "Squeeze",
               "Unsqueeze", "Expand", "Tile", "Upsample", "Cast", "Shape", "ConstantOfShape", "Range", "Dropout"),
    "input": ("Input",),
}
OP_GROUPS = tuple(OP_GROUP_MEMBERS)
OP_GROUP_INDEX = {op: i for i, ops in enumerate(OP_GROUP_MEMBERS.values()) for op in ops}



def channel_alignment_features(graph: ArchGraph) -> np.ndarray:
    """(num_nodes, ALIGNMENT_DIM): [output channels % a == 0 for a in ALIGNMENTS, the same for the
    inputs (all of the node's predecessors)]; a node with no known channel count (no shape, rank < 2,
    a dimension <= 0) gets zeros, as do the input slots of a node without predecessors."""
    n = graph.num_nodes
    channels = np.zeros(n, dtype=np.int64)  # 0 = unknown
    if graph.shapes is not None:
        channels[:] = [max(int(shape[1]), 0) if len(shape) >= 2 else 0 for shape in graph.shapes]
    aligned = np.stack([(channels > 0) & (channels % a == 0) for a in ALIGNMENTS], axis=1)  # (n, A)
    inputs = np.ones((n, len(ALIGNMENTS)), dtype=bool)
    has_input = np.zeros(n, dtype=bool)
    if graph.edges:
        src, dst = np.asarray(graph.edges, dtype=np.int64).T
        np.logical_and.at(inputs, dst, aligned[src])  # every predecessor aligned
        has_input[dst] = True
    inputs &= has_input[:, None]
    return np.concatenate([aligned, inputs], axis=1).astype(np.float32)


def op_group_features(graph: ArchGraph) -> np.ndarray:
    """(num_nodes, len(OP_GROUPS)) one-hot of each node's op group (all zeros for an op in none)."""
    out = np.zeros((graph.num_nodes, len(OP_GROUPS)), dtype=np.float32)
    groups = np.array([OP_GROUP_INDEX.get(ALIASES.get(op, op), -1) for op in graph.ops], dtype=np.int64)
    known = np.flatnonzero(groups >= 0)
    out[known, groups[known]] = 1.0
    return out
