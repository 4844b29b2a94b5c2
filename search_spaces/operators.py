"""Single operators and small blocks as seeded ONNX graphs: the operator micro-benchmark set (issue 27).

``op_variant(kind, seed)`` draws one operator of ``kind`` (its attributes and input shapes) and builds
it directly with ``onnx.helper`` at opset 17, float32: no torch, a few milliseconds per graph. The
graphs look like the pieces of the project's weight-free network exports, so a per-operator latency
model learnt on them applies to the nodes of a real network:

- the activation(s) come first among the graph inputs, then the weights (Conv / Gemm / MatMul weights,
  normalisation scales, layer-scale vectors), which stay graph inputs without values; the measurer's
  ``prepare_model`` fills them at random and turns them into initializers, as for any weight-free
  export. An op whose operands are all activations (a residual Add, Concat, Q @ K^T) has only data
  inputs and no weight, so every one of them is fed as data and nothing is constant-folded;
- small shape / axes / scales / sizes tensors are initializers (and scalars of the GELU pattern are
  Constant nodes), so onnx shape inference and the encoder see their values, as in a torch export;
- patterns are the ones torch's exporter writes: GroupNorm as Reshape - InstanceNormalization -
  Reshape - Mul - Add, exact GELU as Div - Erf - Add - Mul - Mul, SiLU as Sigmoid - Mul, ReLU6 as
  Clip, channel shuffle as Reshape - Transpose - Reshape, attention as Transpose - MatMul - Mul -
  Softmax - MatMul.

Kinds (``KINDS``) and what each draws:

- ``conv``: kernel 1/3/5/7, stride 1/2, dilation 2 for some 3x3, groups 1, "same" padding, channels
  8..1024, spatial 7..112; a tenth are stems (3 input channels, 160..256 input, stride 2, kernel 3-7)
  and a tenth patchify / downsampling convs (kernel = stride 2..16, no padding);
- ``conv_grouped``: groups 2..64, 4..128 input channels per group (<= 1024 in all), kernel 1/3/5;
- ``conv_depthwise``: channels 8..1536, kernel 3..11, stride 1/2;
- ``gemm``: Gemm on (batch, 64..4096) to 10..4096 outputs (a classifier head, 1000 in a quarter);
- ``linear``: torch's Linear on tokens, MatMul + Add: (tokens, d) for projections, MLP up / down
  (ratio 2-4) and qkv (3d), d 32..1024;
- ``matmul_batched``: Q @ K^T or P @ V over heads 1..16 (x windows 1..64 of 7/8/12-square windows in
  three draws out of ten), head dim 16..128;
- ``layernorm``: LayerNormalization over the last dim on tokens, or ConvNeXt's Transpose - LN -
  Transpose on NCHW maps;
- ``groupnorm``: torch's GroupNorm pattern, groups 1..32;
- ``softmax``: attention scores (as matmul_batched) or a class vector of 10..21843;
- ``elementwise``: Add / Mul of two maps, with a per-channel activation (SE) or a weight (bias,
  layer scale) broadcast;
- ``activation``: Relu, ReLU6 (Clip), Sigmoid, HardSigmoid, HardSwish, exact GELU (Erf pattern),
  Tanh, SiLU (Sigmoid - Mul), on NCHW maps or tokens (dims up to 4096: MLP hidden layers);
- ``pooling``: MaxPool / AveragePool (k3 s1, k3 s2, k2 s2), GlobalAveragePool, ReduceMean over HW or
  tokens;
- ``resize``: nearest / linear Resize by scale 2 or to a size (2-8x or any up to 4x; <= 224);
- ``concat``: 2..8 maps of 8..512 channels along the channels, or token sequences;
- ``split``: Split into 2..4 parts or one Slice, along the channels;
- ``channel_shuffle``: Reshape - Transpose - Reshape, groups 2..8;
- ``transpose``: NCHW <-> NHWC, tokens <-> dims, tokens <-> heads, Swin's window partition (6-D);
- ``attention``: Transpose(K) - MatMul - Mul(scale) - Softmax - MatMul, shapes as matmul_batched;
- ``batchnorm``: a BatchNormalization onnxruntime cannot fold into a Conv (DenseNet's pre-activation).

Shapes are drawn log-uniformly over what CNNs and transformers at 160-256 input hold: spatial 7..112
(stems up to 256), channels 8..1024 (depthwise up to 1536), tokens 16..3137 (a square grid of side
4..56, sometimes with a class token), dims 32..1024 (MLP hidden up to 4096), heads 1..16. A draw over
``MAX_MACS`` multiply-adds or ``MAX_BYTES`` of tensors (every input, weight, intermediate and output,
float32) is rejected and drawn again from the same generator; the config records the draw number.

Reproducibility: every choice of ``op_variant(kind, seed)`` comes from
``numpy.random.default_rng([KINDS.index(kind), seed])`` in a fixed order, so ``KINDS``' order is a
contract (append, never reorder). The config records every sampled attribute and shape, plus a cost
summary from the shapes: ``macs`` (Conv / Gemm / MatMul multiply-adds, biases included, by
``nas_predictor.onnx.costs``: the encoder's own counter), ``flops`` (every op, the same counter) and
``bytes`` (float32 inputs, weights and outputs of the graph).

:func:`variant_onnx` is the dataset builder's generator function (``nas-predictor dataset build --ops``):
``(kind, seed, space=, batch=, opset=) -> (info, onnx bytes)``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import onnx

from search_spaces.operator_builders_compute import (
    _build_conv, _build_gemm, _build_groupnorm, _build_layernorm, _build_linear, _build_matmul_batched, _build_softmax,
    _sample_conv, _sample_conv_depthwise, _sample_conv_grouped, _sample_gemm, _sample_layernorm, _sample_groupnorm,
    _sample_linear, _sample_matmul_batched, _sample_softmax,
)
from search_spaces.operator_builders_memory import (
    _build_activation, _build_attention, _build_batchnorm, _build_channel_shuffle, _build_concat,
    _build_elementwise, _build_pooling, _build_resize, _build_split, _build_transpose, _sample_activation,
    _sample_attention, _sample_batchnorm, _sample_channel_shuffle, _sample_concat, _sample_elementwise, _sample_pooling,
    _sample_resize, _sample_split, _sample_transpose,
)
# re-exported: operators_torch reads ACTIVATIONS and _shape_of here, and the graph names stay where they were
from search_spaces.operator_builders_memory import ACTIVATIONS as ACTIVATIONS, _shape_of as _shape_of
from search_spaces.operator_graph import INPUT_NAME as INPUT_NAME, OUTPUT_NAME as OUTPUT_NAME, _Graph
from search_spaces.operator_kinds import KINDS  # append-only: a kind's index seeds its generator

__all__ = ["KINDS", "MAX_BYTES", "MAX_MACS", "SPACE", "op_variant", "variant_onnx"]

SPACE = "ops"  # the one variant space of operators (the dataset identity's "space")
DEFAULT_OPSET = 17
MAX_MACS = 1.5e9
MAX_BYTES = 200e6
MAX_DRAWS = 1000


_KINDS: dict[str, tuple[Callable[[np.random.Generator], dict], Callable[[_Graph, dict], None]]] = {
    "conv": (_sample_conv, _build_conv),
    "conv_grouped": (_sample_conv_grouped, _build_conv),
    "conv_depthwise": (_sample_conv_depthwise, _build_conv),
    "gemm": (_sample_gemm, _build_gemm),
    "linear": (_sample_linear, _build_linear),
    "matmul_batched": (_sample_matmul_batched, _build_matmul_batched),
    "layernorm": (_sample_layernorm, _build_layernorm),
    "groupnorm": (_sample_groupnorm, _build_groupnorm),
    "softmax": (_sample_softmax, _build_softmax),
    "elementwise": (_sample_elementwise, _build_elementwise),
    "activation": (_sample_activation, _build_activation),
    "pooling": (_sample_pooling, _build_pooling),
    "resize": (_sample_resize, _build_resize),
    "concat": (_sample_concat, _build_concat),
    "split": (_sample_split, _build_split),
    "channel_shuffle": (_sample_channel_shuffle, _build_channel_shuffle),
    "transpose": (_sample_transpose, _build_transpose),
    "attention": (_sample_attention, _build_attention),
    "batchnorm": (_sample_batchnorm, _build_batchnorm),
}
assert tuple(_KINDS) == KINDS


# --- costs ---------------------------------------------------------------------------------------------

def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    graph = model.graph
    out = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        out[value.name] = tuple(int(d.dim_value) for d in dims)
    for t in graph.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def _costs(model: onnx.ModelProto) -> dict[str, int]:
    """MACs and FLOPs by the encoder's counter (nas_predictor.onnx.costs), float32 bytes of the graph's
    inputs, weights and outputs, and of every tensor (for the size cap)."""
    from nas_predictor.onnx.attributes import canonical_attributes
    from nas_predictor.onnx.costs import node_flops, node_macs, numel

    shapes = _shapes(model)
    shape_of = shapes.get
    macs = flops = 0.0
    for node in model.graph.node:
        attrs = canonical_attributes(node, shape_of)
        attrs["flops"] = node_flops(node.op_type, list(node.input), list(node.output), attrs, shape_of)
        flops += attrs["flops"]
        macs += node_macs(node.op_type, attrs, shape_of(node.output[0]))
    io = [v.name for v in list(model.graph.input) + list(model.graph.output)]
    every = set(shapes) - {t.name for t in model.graph.initializer}
    return {"macs": int(round(macs)), "flops": int(round(flops)), "bytes": 4 * sum(numel(shapes[n]) for n in io),
            "tensor_bytes": 4 * sum(numel(shapes[n]) for n in every)}


# --- the public functions ----------------------------------------------------------------------------

def _check(kind: Any, seed: Any, batch: Any, opset: Any) -> int:
    if kind not in _KINDS:
        raise ValueError(f"unknown operator kind {kind!r}; choose one of {', '.join(KINDS)}")
    for name, value, low in (("seed", seed, 0), ("batch", batch, 1), ("opset", opset, 17)):
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        try:
            value = operator.index(value)
        except TypeError:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}") from None
        if value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value}")
    if opset > DEFAULT_OPSET:  # ReduceMean's axes and Split's sizes change form at opset 18
        raise ValueError(f"operators are built at opset {DEFAULT_OPSET}; got {opset}")
    return operator.index(seed)


def _model(kind: str, cfg: dict, batch: int, opset: int) -> onnx.ModelProto:
    g = _Graph(batch)
    _KINDS[kind][1](g, cfg)
    return g.model(kind, opset)


def op_variant(kind: str, seed: int, *, batch: int = 1, opset: int = DEFAULT_OPSET) -> tuple[dict, bytes]:
    """Operator ``seed`` of ``kind``: its config (every sampled attribute and shape, the draw number and
    the cost summary at ``batch``) and its weight-free ONNX bytes. Exactly reproducible from (kind, seed,
    batch, opset); the draw (and so the operator) does not depend on the batch: the size caps are
    judged at batch 1."""
    seed = _check(kind, seed, batch, opset)
    rng = np.random.default_rng([KINDS.index(kind), seed])
    sample = _KINDS[kind][0]
    for draw in range(MAX_DRAWS):
        cfg = sample(rng)
        model = _model(kind, cfg, 1, opset)
        costs = _costs(model)
        if costs["macs"] <= MAX_MACS and costs["tensor_bytes"] <= MAX_BYTES:
            break
    else:  # pragma: no cover - every kind's ranges accept most draws
        raise RuntimeError(f"{kind} seed {seed}: no draw under {MAX_MACS:.3g} MACs and {MAX_BYTES:.3g} bytes "
                           f"in {MAX_DRAWS} tries")
    if batch != 1:
        model = _model(kind, cfg, batch, opset)
        costs = _costs(model)
    config = {"kind": kind, **cfg, "draw": draw, "macs": costs["macs"], "flops": costs["flops"],
              "bytes": costs["bytes"]}
    return config, model.SerializeToString()


def variant_onnx(kind: str, seed: int, *, space: str = SPACE, batch: int = 1,
                 opset: int = DEFAULT_OPSET) -> tuple[dict, bytes]:
    """The dataset builder's generator (``dataset build --ops``): ``info`` = family (the kind), seed,
    config, input shape (of the first data input) and MACs, and the ONNX bytes of ``op_variant``."""
    if space != SPACE:
        raise ValueError(f"operators have one space, {SPACE!r}; got {space!r}")
    config, data = op_variant(kind, seed, batch=batch, opset=opset)
    first = onnx.load_from_string(data).graph.input[0]
    shape = [int(d.dim_value) for d in first.type.tensor_type.shape.dim]
    return {"family": kind, "seed": int(seed), "config": config, "input_shape": shape, "macs": config["macs"]}, data
