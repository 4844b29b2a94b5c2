"""Operator kinds that move data: elementwise, activations, pooling, resize, concat / split, shuffles, transposes,
attention and an unfoldable BatchNorm."""

from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces.operator_builders_compute import _heads
from search_spaces.operator_graph import INPUT_NAME, _channels, _dim, _Graph, _log_int, _pick, _spatial, _tokens


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
