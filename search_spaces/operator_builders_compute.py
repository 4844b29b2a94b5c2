"""Operator kinds that compute: convolutions, Gemm / Linear / batched MatMul, Layer / Group norm, Softmax."""

from __future__ import annotations

import numpy as np

from search_spaces.operator_graph import _channels, _dim, _Graph, _log_int, _pick, _spatial, _tokens


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
