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

import math
import operator
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from search_spaces.operator_kinds import KINDS  # append-only: a kind's index seeds its generator

__all__ = ["KINDS", "MAX_BYTES", "MAX_MACS", "SPACE", "op_variant", "variant_onnx"]

SPACE = "ops"  # the one variant space of operators (the dataset identity's "space")
DEFAULT_OPSET = 17
MAX_MACS = 1.5e9
MAX_BYTES = 200e6
MAX_DRAWS = 1000
INPUT_NAME = "input"
OUTPUT_NAME = "output"


# --- drawing -------------------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
    """One of ``options`` as the plain Python value (JSON-serialisable)."""
    index = int(rng.choice(len(options), p=p)) if p is not None else int(rng.integers(len(options)))
    value = options[index]
    return value.item() if isinstance(value, np.generic) else value


def _log_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer drawn log-uniformly from [low, high]."""
    return int(min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high)))))))


def _channels(rng: np.random.Generator, low: int = 8, high: int = 1024) -> int:
    """Channels, log-uniform; most networks use multiples of 8, scaled ones (nn-Meter's) need not."""
    c = _log_int(rng, low, high)
    if c >= 16 and rng.random() < 0.75:
        c = min(high, max(low, 8 * round(c / 8)))
    return c


def _spatial(rng: np.random.Generator, low: int = 7, high: int = 112) -> int:
    return _log_int(rng, low, high)


def _tokens(rng: np.random.Generator) -> int:
    """A token count: a square grid of side 4..56 (16..3136 tokens), a class token in a quarter of draws."""
    side = _log_int(rng, 4, 56)
    return side * side + int(rng.random() < 0.25)


def _dim(rng: np.random.Generator, low: int = 32, high: int = 1024) -> int:
    return _channels(rng, low, high)


# --- building ------------------------------------------------------------------------------------------

class _Graph:
    """Collects one operator's graph: data inputs first, then weight inputs, constants as initializers."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.data: list[onnx.ValueInfoProto] = []
        self.weights: list[onnx.ValueInfoProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self.outputs: list[str] = []
        self._names: dict[str, int] = {}

    def _name(self, stem: str) -> str:
        n = self._names.get(stem, 0)
        self._names[stem] = n + 1
        return stem if n == 0 else f"{stem}_{n}"

    def input(self, shape: Sequence[int], name: str = INPUT_NAME) -> str:
        """A data input; ``shape`` without the batch dimension."""
        name = self._name(name)
        self.data.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [self.batch, *shape]))
        return name

    def weight(self, name: str, shape: Sequence[int]) -> str:
        """A weight-free parameter (a graph input named like torch's parameters: ``<layer>.weight``)."""
        name = self._name(name)
        self.weights.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        name = self._name(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def scalar(self, value: float) -> str:
        """A float scalar as a Constant node (how the exporter writes the GELU pattern's numbers)."""
        name = self._name("const")
        self.nodes.append(helper.make_node("Constant", [], [name], name=name,
                                           value=numpy_helper.from_array(np.array(value, dtype=np.float32))))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> Any:
        stem = self._name(op.lower())
        names = [f"{stem}_out" if outputs == 1 else f"{stem}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=stem, **attrs))
        return names[0] if outputs == 1 else names

    def output(self, *names: str) -> None:
        self.outputs.extend(names)

    def model(self, kind: str, opset: int) -> onnx.ModelProto:
        outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in self.outputs]
        graph = helper.make_graph(self.nodes, kind, self.data + self.weights, outputs, self.initializers)
        model = helper.make_model(graph, producer_name="nas-predictor search_spaces.operators",
                                  opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8  # onnxruntime 1.14+ reads IR 8 (opset 17's)
        # declared output shapes and intermediate value_info, as an exporter writes them; strict: a
        # graph whose shapes do not agree fails here, not in the measurer
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)


def _same_pad(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) // 2


def _conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _conv_node(g: _Graph, x: str, cfg: dict) -> str:
    k, cin, cout, groups = cfg["kernel"], cfg["in_channels"], cfg["out_channels"], cfg["groups"]
    inputs = [x, g.weight("conv.weight", [cout, cin // groups, k, k])]
    if cfg["bias"]:
        inputs.append(g.weight("conv.bias", [cout]))
    return g.node("Conv", inputs, kernel_shape=[k, k], strides=[cfg["stride"]] * 2, pads=[cfg["pad"]] * 4,
                  dilations=[cfg["dilation"]] * 2, group=groups)


def _sample_conv(rng: np.random.Generator) -> dict:
    mode = _pick(rng, ["same", "stem", "patch"], p=[0.8, 0.1, 0.1])
    dilation = 1
    if mode == "same":  # a body conv: "same" padding
        kernel = _pick(rng, [1, 3, 5, 7], p=[0.35, 0.45, 0.1, 0.1])
        stride = _pick(rng, [1, 2], p=[0.75, 0.25])
        if kernel == 3 and rng.random() < 0.15:
            dilation = 2
        cin, cout, size = _channels(rng), _channels(rng), _spatial(rng)
        pad = _same_pad(kernel, dilation)
    elif mode == "stem":  # the first conv of a CNN, on the image
        kernel, stride = _pick(rng, [3, 5, 7]), 2
        cin, cout, size = 3, _channels(rng, 8, 128), _pick(rng, list(range(160, 257, 16)))
        pad = _same_pad(kernel)
    else:  # patchify / downsampling conv (ViT, Swin, ConvNeXt): kernel = stride, no padding
        kernel = _pick(rng, [2, 4, 8, 14, 16], p=[0.4, 0.3, 0.1, 0.1, 0.1])
        stride, pad = kernel, 0
        if kernel >= 8 or rng.random() < 0.3:
            cin, size = 3, _pick(rng, list(range(160, 257, 16)))
        else:
            cin, size = _channels(rng), _spatial(rng, 14, 112)
        cout = _channels(rng, 32, 1024)
    return {"mode": mode, "in_channels": cin, "out_channels": cout, "size": size, "kernel": kernel, "stride": stride,
            "dilation": dilation, "pad": pad, "groups": 1, "bias": bool(rng.random() < 0.5)}


def _sample_conv_grouped(rng: np.random.Generator) -> dict:
    groups = _pick(rng, [2, 4, 8, 16, 32, 64])
    width = _log_int(rng, 4, 128)  # input channels per group (RegNet's group width, ResNeXt's 4..)
    cin = groups * width
    while cin > 1024 and width > 1:  # keep channels in range without losing the group count
        width //= 2
        cin = groups * width
    cout = groups * max(1, round(width * _pick(rng, [0.5, 1.0, 1.0, 2.0])))
    if cout > 1024:  # channels stay within 8..1024 like the other convs
        cout = cin
    kernel = _pick(rng, [1, 3, 5], p=[0.3, 0.6, 0.1])
    stride = _pick(rng, [1, 2], p=[0.75, 0.25])
    return {"mode": "same", "in_channels": cin, "out_channels": cout, "size": _spatial(rng), "kernel": kernel,
            "stride": stride, "dilation": 1, "pad": _same_pad(kernel), "groups": groups,
            "bias": bool(rng.random() < 0.5)}


def _sample_conv_depthwise(rng: np.random.Generator) -> dict:
    c = _channels(rng, 8, 1536)
    kernel = _pick(rng, [3, 5, 7, 9, 11], p=[0.4, 0.25, 0.2, 0.05, 0.1])
    stride = _pick(rng, [1, 2], p=[0.75, 0.25])
    return {"mode": "same", "in_channels": c, "out_channels": c, "size": _spatial(rng), "kernel": kernel,
            "stride": stride, "dilation": 1, "pad": _same_pad(kernel), "groups": c, "bias": bool(rng.random() < 0.5)}


def _build_conv(g: _Graph, cfg: dict) -> None:
    x = g.input([cfg["in_channels"], cfg["size"], cfg["size"]])
    g.output(_conv_node(g, x, cfg))


def _sample_gemm(rng: np.random.Generator) -> dict:
    # a classifier head or an MLP on pooled features: one row per sample
    n = 1000 if rng.random() < 0.25 else _log_int(rng, 10, 4096)
    return {"in_features": _channels(rng, 64, 4096), "out_features": n, "bias": bool(rng.random() < 0.85)}


def _build_gemm(g: _Graph, cfg: dict) -> None:
    x = g.input([cfg["in_features"]])
    inputs = [x, g.weight("fc.weight", [cfg["out_features"], cfg["in_features"]])]
    if cfg["bias"]:
        inputs.append(g.weight("fc.bias", [cfg["out_features"]]))
    g.output(g.node("Gemm", inputs, alpha=1.0, beta=1.0, transB=1))


def _sample_linear(rng: np.random.Generator) -> dict:
    # torch's nn.Linear on (batch, tokens, dim): MatMul with the transposed weight, then Add of the bias
    role = _pick(rng, ["proj", "mlp_up", "mlp_down", "qkv"])
    d = _dim(rng)
    ratio = _pick(rng, [2, 3, 4], p=[0.15, 0.15, 0.7])
    k, n = {"proj": (d, d), "mlp_up": (d, d * ratio), "mlp_down": (d * ratio, d), "qkv": (d, 3 * d)}[role]
    return {"role": role, "tokens": _tokens(rng), "in_features": k, "out_features": n,
            "bias": bool(rng.random() < 0.9)}


def _build_linear(g: _Graph, cfg: dict) -> None:
    x = g.input([cfg["tokens"], cfg["in_features"]])
    y = g.node("MatMul", [x, g.weight("linear.weight", [cfg["in_features"], cfg["out_features"]])])
    if cfg["bias"]:
        y = g.node("Add", [y, g.weight("linear.bias", [cfg["out_features"]])])
    g.output(y)


def _heads(rng: np.random.Generator) -> dict:
    """Heads, tokens and head dim of an attention; a windowed one (Swin) folds its windows into the heads."""
    heads = _log_int(rng, 1, 16)
    head_dim = _pick(rng, [16, 32, 48, 64, 96, 128], p=[0.1, 0.3, 0.1, 0.35, 0.05, 0.1])
    if rng.random() < 0.3:
        window = _pick(rng, [7, 8, 12])
        windows = _log_int(rng, 1, 64)
        tokens = window * window
    else:
        windows, tokens = 1, _tokens(rng)
    return {"heads": heads, "windows": windows, "tokens": tokens, "head_dim": head_dim}


def _sample_matmul_batched(rng: np.random.Generator) -> dict:
    return {"product": _pick(rng, ["qk", "av"]), **_heads(rng)}


def _build_matmul_batched(g: _Graph, cfg: dict) -> None:
    b, t, d = cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["head_dim"]
    if cfg["product"] == "qk":  # scores = Q @ K^T, K given transposed
        a, other = g.input([b, t, d]), g.input([b, d, t], "input_b")
    else:  # out = softmax(scores) @ V
        a, other = g.input([b, t, t]), g.input([b, t, d], "input_b")
    g.output(g.node("MatMul", [a, other]))


def _sample_layernorm(rng: np.random.Generator) -> dict:
    layout = _pick(rng, ["tokens", "nchw"], p=[0.7, 0.3])  # nchw: ConvNeXt's permute - LayerNorm - permute
    cfg = {"layout": layout, "channels": _dim(rng, 32, 1024), "epsilon": _pick(rng, [1e-5, 1e-6])}
    if layout == "tokens":
        cfg["tokens"] = _tokens(rng)
    else:
        cfg["size"] = _spatial(rng, 7, 56)
    return cfg


def _build_layernorm(g: _Graph, cfg: dict) -> None:
    c = cfg["channels"]
    if cfg["layout"] == "tokens":
        x = g.input([cfg["tokens"], c])
    else:
        x = g.node("Transpose", [g.input([c, cfg["size"], cfg["size"]])], perm=[0, 2, 3, 1])
    y = g.node("LayerNormalization", [x, g.weight("norm.weight", [c]), g.weight("norm.bias", [c])], axis=-1,
               epsilon=cfg["epsilon"])
    if cfg["layout"] == "nchw":
        y = g.node("Transpose", [y], perm=[0, 3, 1, 2])
    g.output(y)


def _sample_groupnorm(rng: np.random.Generator) -> dict:
    groups = _pick(rng, [1, 4, 8, 16, 32], p=[0.35, 0.1, 0.15, 0.1, 0.3])  # 1: PoolFormer's GroupNorm(1, C)
    c = groups * max(1, round(_channels(rng, 16, 1024) / groups))
    return {"channels": c, "groups": groups, "size": _spatial(rng, 7, 112), "epsilon": 1e-5}


def _build_groupnorm(g: _Graph, cfg: dict) -> None:
    # torch's GroupNorm export: normalise (N, G, C/G*H*W) with InstanceNormalization (unit scale, zero
    # shift, constants), reshape back, then the per-channel affine (weights broadcast as (C, 1, 1))
    c, groups, s = cfg["channels"], cfg["groups"], cfg["size"]
    x = g.input([c, s, s])
    grouped = g.node("Reshape", [x, g.const("group_shape", [g.batch, groups, -1])])
    norm = g.node("InstanceNormalization", [grouped, g.const("ones", np.ones(groups), np.float32),
                                            g.const("zeros", np.zeros(groups), np.float32)], epsilon=cfg["epsilon"])
    y = g.node("Reshape", [norm, g.const("shape", [g.batch, c, s, s])])
    y = g.node("Mul", [y, g.weight("norm.weight", [c, 1, 1])])
    g.output(g.node("Add", [y, g.weight("norm.bias", [c, 1, 1])]))


def _sample_softmax(rng: np.random.Generator) -> dict:
    if rng.random() < 0.85:
        return {"layout": "attention", **_heads(rng)}  # (batch, heads x windows, tokens, tokens) scores
    return {"layout": "vector", "features": _log_int(rng, 10, 21843)}  # classifier probabilities


def _build_softmax(g: _Graph, cfg: dict) -> None:
    if cfg["layout"] == "attention":
        x = g.input([cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["tokens"]])
    else:
        x = g.input([cfg["features"]])
    g.output(g.node("Softmax", [x], axis=-1))


def _activation_shape(rng: np.random.Generator) -> dict:
    """An activation tensor: NCHW feature map or (tokens, dim)."""
    if rng.random() < 0.6:
        return {"layout": "nchw", "channels": _channels(rng, 8, 1024), "size": _spatial(rng)}
    return {"layout": "tokens", "channels": _dim(rng, 32, 4096), "tokens": _tokens(rng)}


def _shape_of(cfg: dict) -> list[int]:
    if cfg["layout"] == "nchw":
        return [cfg["channels"], cfg["size"], cfg["size"]]
    return [cfg["tokens"], cfg["channels"]]


def _sample_elementwise(rng: np.random.Generator) -> dict:
    # none: a residual (two activations); channel: SE's per-channel scale (an activation);
    # weight: a bias / layer scale (a parameter)
    return {"op": _pick(rng, ["Add", "Mul"]), "broadcast": _pick(rng, ["none", "channel", "weight"], p=[0.5, 0.25, 0.25]),
            **_activation_shape(rng)}


def _build_elementwise(g: _Graph, cfg: dict) -> None:
    shape, c = _shape_of(cfg), cfg["channels"]
    x = g.input(shape)
    nchw = cfg["layout"] == "nchw"
    if cfg["broadcast"] == "none":
        other = g.input(shape, "input_b")
    elif cfg["broadcast"] == "channel":
        other = g.input([c, 1, 1] if nchw else [1, c], "input_b")
    else:
        other = g.weight("scale.weight", [c, 1, 1] if nchw else [c])
    g.output(g.node(cfg["op"], [x, other]))


ACTIVATIONS = ("Relu", "ReLU6", "Sigmoid", "HardSigmoid", "HardSwish", "GELU", "Tanh", "SiLU")


def _sample_activation(rng: np.random.Generator) -> dict:
    return {"op": _pick(rng, ACTIVATIONS), **_activation_shape(rng)}


def _build_activation(g: _Graph, cfg: dict) -> None:
    x = g.input(_shape_of(cfg))
    op = cfg["op"]
    if op == "ReLU6":
        y = g.node("Clip", [x, g.const("min", 0.0, np.float32), g.const("max", 6.0, np.float32)])
    elif op == "HardSigmoid":
        y = g.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    elif op == "GELU":  # exact GELU: x * 0.5 * (1 + erf(x / sqrt 2))
        erf = g.node("Erf", [g.node("Div", [x, g.scalar(1.4142135381698608)])])
        y = g.node("Mul", [g.node("Mul", [x, g.node("Add", [erf, g.scalar(1.0)])]), g.scalar(0.5)])
    elif op == "SiLU":
        y = g.node("Mul", [x, g.node("Sigmoid", [x])])
    else:
        y = g.node(op, [x])
    g.output(y)


def _sample_pooling(rng: np.random.Generator) -> dict:
    op = _pick(rng, ["MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"], p=[0.35, 0.25, 0.2, 0.2])
    cfg: dict[str, Any] = {"op": op}
    if op in ("MaxPool", "AveragePool"):
        kernel, stride = _pick(rng, [(3, 1), (3, 2), (2, 2)], p=[0.3, 0.4, 0.3])
        cfg.update(kernel=kernel, stride=stride, pad=1 if kernel == 3 else 0, ceil_mode=int(rng.random() < 0.2))
    if op == "ReduceMean" and rng.random() < 0.4:  # mean over tokens (ViT / Mixer head)
        cfg.update(layout="tokens", channels=_dim(rng), tokens=_tokens(rng))
    else:
        cfg.update(layout="nchw", channels=_channels(rng), size=_spatial(rng))
    return cfg


def _build_pooling(g: _Graph, cfg: dict) -> None:
    x = g.input(_shape_of(cfg))
    op = cfg["op"]
    if op in ("MaxPool", "AveragePool"):
        k, s, p = cfg["kernel"], cfg["stride"], cfg["pad"]
        extra = {"count_include_pad": 0} if op == "AveragePool" else {}
        y = g.node(op, [x], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=cfg["ceil_mode"], **extra)
    elif op == "GlobalAveragePool":
        y = g.node(op, [x])
    elif cfg["layout"] == "nchw":  # opset <= 17: ReduceMean's axes are an attribute
        y = g.node("ReduceMean", [x], axes=[2, 3], keepdims=1)
    else:
        y = g.node("ReduceMean", [x], axes=[1], keepdims=0)
    g.output(y)


def _sample_resize(rng: np.random.Generator) -> dict:
    mode = _pick(rng, ["nearest", "linear"])
    size = _spatial(rng, 7, 56)
    cfg = {"mode": mode, "target": _pick(rng, ["scale", "size"]), "channels": _channels(rng, 8, 512), "size": size}
    if cfg["target"] == "scale":
        cfg["scale"] = 2
    else:  # to another branch's size (HRNet, FPN): 2-8x, or any size up to 4x
        cfg["out_size"] = size * _pick(rng, [2, 4, 8]) if rng.random() < 0.6 else _log_int(rng, size + 1, 4 * size)
        cfg["out_size"] = min(cfg["out_size"], 224)
    return cfg


def _build_resize(g: _Graph, cfg: dict) -> None:
    c, s = cfg["channels"], cfg["size"]
    x = g.input([c, s, s])
    # torch's F.interpolate: nearest -> asymmetric / floor, bilinear (align_corners=False) -> pytorch_half_pixel
    attrs = ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
             if cfg["mode"] == "nearest" else {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"})
    if cfg["target"] == "scale":
        inputs = [x, "", g.const("scales", [1.0, 1.0, cfg["scale"], cfg["scale"]], np.float32)]
    else:
        inputs = [x, "", "", g.const("sizes", [g.batch, c, cfg["out_size"], cfg["out_size"]])]
    g.output(g.node("Resize", inputs, **attrs))


def _sample_concat(rng: np.random.Generator) -> dict:
    n = _pick(rng, [2, 3, 4, 5, 6, 7, 8], p=[0.4, 0.15, 0.15, 0.1, 0.1, 0.05, 0.05])
    if rng.random() < 0.85:  # channel concat: DenseNet, Inception, HRNet fusion, ghost modules
        return {"layout": "nchw", "inputs": n, "channels": [_channels(rng, 8, 512) for _ in range(n)],
                "size": _spatial(rng)}
    # token concat along the sequence (class token, pooled tokens): same dim, own lengths
    return {"layout": "tokens", "inputs": n, "tokens": [_log_int(rng, 1, 3136) for _ in range(n)], "dim": _dim(rng)}


def _build_concat(g: _Graph, cfg: dict) -> None:
    if cfg["layout"] == "nchw":
        xs = [g.input([c, cfg["size"], cfg["size"]], INPUT_NAME) for c in cfg["channels"]]
    else:
        xs = [g.input([t, cfg["dim"]], INPUT_NAME) for t in cfg["tokens"]]
    g.output(g.node("Concat", xs, axis=1))


def _sample_split(rng: np.random.Generator) -> dict:
    op = _pick(rng, ["Split", "Slice"])
    cfg: dict[str, Any] = {"op": op, **_activation_shape(rng)}
    c = cfg["channels"]
    axis = 1 if cfg["layout"] == "nchw" else 2
    if op == "Split":  # torch.chunk / split: ShuffleNetV2's halves, qkv's thirds, GhostNet's parts
        parts = _pick(rng, [2, 3, 4], p=[0.6, 0.25, 0.15])
        parts = min(parts, c)
        sizes = [c // parts] * parts
        sizes[-1] += c - sum(sizes)
        cfg.update(axis=axis, split=sizes)
    else:  # x[:, a:b]: one slice of the channels
        start = int(rng.integers(0, c))
        cfg.update(axis=axis, start=start, end=int(rng.integers(start + 1, c + 1)))
    return cfg


def _build_split(g: _Graph, cfg: dict) -> None:
    x = g.input(_shape_of(cfg))
    if cfg["op"] == "Split":
        outs = g.node("Split", [x, g.const("split", cfg["split"])], outputs=len(cfg["split"]), axis=cfg["axis"])
        g.output(*([outs] if isinstance(outs, str) else outs))
    else:
        g.output(g.node("Slice", [x, g.const("starts", [cfg["start"]]), g.const("ends", [cfg["end"]]),
                                  g.const("axes", [cfg["axis"]])]))


def _sample_channel_shuffle(rng: np.random.Generator) -> dict:
    groups = _pick(rng, [2, 3, 4, 8], p=[0.6, 0.15, 0.15, 0.1])
    c = groups * max(1, round(_channels(rng, 16, 1024) / groups))
    return {"groups": groups, "channels": c, "size": _spatial(rng)}


def _build_channel_shuffle(g: _Graph, cfg: dict) -> None:
    c, groups, s = cfg["channels"], cfg["groups"], cfg["size"]
    x = g.input([c, s, s])
    y = g.node("Reshape", [x, g.const("grouped", [g.batch, groups, c // groups, s, s])])
    y = g.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
    g.output(g.node("Reshape", [y, g.const("shape", [g.batch, c, s, s])]))


def _sample_transpose(rng: np.random.Generator) -> dict:
    case = _pick(rng, ["nchw_to_nhwc", "nhwc_to_nchw", "tokens", "heads", "windows"])
    cfg: dict[str, Any] = {"case": case}
    if case in ("nchw_to_nhwc", "nhwc_to_nchw"):
        cfg.update(channels=_channels(rng), size=_spatial(rng))
    elif case == "tokens":  # (tokens, dim) <-> (dim, tokens): Mixer's token mixing, ViT's flatten
        cfg.update(tokens=_tokens(rng), channels=_dim(rng))
    elif case == "heads":  # (tokens, heads, head dim) -> (heads, tokens, head dim)
        cfg.update(_heads(rng))
    else:  # Swin's window partition: (H/w, w, W/w, w, C) -> (H/w, W/w, w, w, C)
        window = _pick(rng, [7, 8, 12])
        cfg.update(window=window, windows_per_side=_log_int(rng, 1, 8), channels=_dim(rng, 32, 768))
    return cfg


def _build_transpose(g: _Graph, cfg: dict) -> None:
    case = cfg["case"]
    if case in ("nchw_to_nhwc", "nhwc_to_nchw"):
        c, s = cfg["channels"], cfg["size"]
        x, perm = (g.input([c, s, s]), [0, 2, 3, 1]) if case == "nchw_to_nhwc" else (g.input([s, s, c]), [0, 3, 1, 2])
    elif case == "tokens":
        x, perm = g.input([cfg["tokens"], cfg["channels"]]), [0, 2, 1]
    elif case == "heads":
        x, perm = g.input([cfg["tokens"], cfg["heads"] * cfg["windows"], cfg["head_dim"]]), [0, 2, 1, 3]
    else:
        n, w = cfg["windows_per_side"], cfg["window"]
        x, perm = g.input([n, w, n, w, cfg["channels"]]), [0, 1, 3, 2, 4, 5]
    g.output(g.node("Transpose", [x], perm=perm))


def _sample_attention(rng: np.random.Generator) -> dict:
    return _heads(rng)


def _build_attention(g: _Graph, cfg: dict) -> None:
    b, t, d = cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["head_dim"]
    q, k, v = (g.input([b, t, d], name) for name in ("query", "key", "value"))
    scores = g.node("MatMul", [q, g.node("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.node("Mul", [scores, g.scalar(float(np.float32(d ** -0.5)))])
    g.output(g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v]))


def _sample_batchnorm(rng: np.random.Generator) -> dict:
    # a BatchNormalization onnxruntime cannot fold into a preceding Conv: DenseNet's and pre-activation
    # ResNets' BN on concatenated or summed features
    return {"channels": _channels(rng, 8, 1024), "size": _spatial(rng), "epsilon": 1e-5}


def _build_batchnorm(g: _Graph, cfg: dict) -> None:
    c = cfg["channels"]
    x = g.input([c, cfg["size"], cfg["size"]])
    stats = [g.weight(f"bn.{name}", [c]) for name in ("weight", "bias", "running_mean", "running_var")]
    g.output(g.node("BatchNormalization", [x, *stats], epsilon=cfg["epsilon"]))


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
