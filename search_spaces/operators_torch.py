"""The operator micro-benchmark set in PyTorch: the torch module of each ``search_spaces.operators`` draw.

``op_module(kind, config)`` builds, from the config ``operators.op_variant(kind, seed)`` sampled (every
attribute and shape), the torch computation of the same operator and example inputs, so that a
(kind, seed) means the same operator on every provider: the ONNX graph stays the one the predictor is
trained on, and with ``--provider torch-cuda`` its label is the PyTorch CUDA time of this module
(``nas-predictor dataset build --ops --provider torch-cuda``).

Each kind is written the way a plain-torch network runs it (the code the exporter turned into the
ONNX pattern): ``F.conv2d`` with the sampled stride / padding / dilation / groups, ``F.linear`` for
Gemm and Linear (MatMul + Add), ``torch.matmul`` for batched products, ``F.layer_norm`` (after a
permute for ConvNeXt's NCHW case), ``F.group_norm``, ``F.softmax``, the activations' torch functions
(exact GELU), pooling and ``F.interpolate`` with torch's defaults (nearest; bilinear without aligned
corners), ``torch.cat`` / ``torch.split`` / slicing, and the attention block as Q @ K^T * scale,
softmax, @ V. Where torch returns a view (split, slice), the view is what a torch network gets, so
that is what is timed; a transpose is made contiguous, as the reshape or the kernel after it does in
a network (a bare ``permute`` costs nothing and is never what a network pays for).

Weights (Conv / Linear weights, norm scales, running statistics) are module parameters or buffers
filled at random (values do not change the time); inputs that the ONNX graph feeds as data (a
residual's second operand, Concat's parts, Q / K / V) are example inputs. :func:`timing_module`
wraps a module so it takes only its first input, with the others held as buffers: the form the
torch-cuda timer (``nas_predictor.latency.measure_torch_cuda``, one input tensor) times.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces import operators

__all__ = ["OperatorModule", "op_module", "timing_module", "variant_torch"]


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


class OperatorModule(nn.Module):
    """One operator: ``forward(*inputs)`` runs ``fn(module, *inputs)``; its weights are registered as
    parameters (or buffers, for running statistics) so ``.to(device)`` moves them."""

    def __init__(self, kind: str, config: dict, fn: Callable[..., Any], params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.kind, self.config, self._fn = kind, config, fn
        for name, value in (params or {}).items():
            self.register_parameter(name, nn.Parameter(value, requires_grad=False))
        for name, value in (buffers or {}).items():
            self.register_buffer(name, value)

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self._fn(self, *inputs)


def _conv(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    k, cin, cout, groups = cfg["kernel"], cfg["in_channels"], cfg["out_channels"], cfg["groups"]
    params = {"weight": _rand(g, cout, cin // groups, k, k) * 0.1}
    if cfg["bias"]:
        params["bias"] = _rand(g, cout)

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, m.weight, getattr(m, "bias", None), stride=cfg["stride"], padding=cfg["pad"],
                        dilation=cfg["dilation"], groups=groups)

    return OperatorModule("conv", cfg, fn, params), [_rand(g, b, cin, cfg["size"], cfg["size"])]


def _gemm(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    params = {"weight": _rand(g, cfg["out_features"], cfg["in_features"]) * 0.05}
    if cfg["bias"]:
        params["bias"] = _rand(g, cfg["out_features"])

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, m.weight, getattr(m, "bias", None))

    return OperatorModule("gemm", cfg, fn, params), [_rand(g, b, cfg["in_features"])]


def _linear(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    module, _ = _gemm(cfg, b, g)  # nn.Linear on tokens: the same F.linear, over (batch, tokens, features)
    module.kind = "linear"
    return module, [_rand(g, b, cfg["tokens"], cfg["in_features"])]


def _matmul_batched(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    heads, t, d = cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["head_dim"]
    if cfg["product"] == "qk":
        inputs = [_rand(g, b, heads, t, d), _rand(g, b, heads, d, t)]
    else:
        inputs = [_rand(g, b, heads, t, t), _rand(g, b, heads, t, d)]
    return OperatorModule("matmul_batched", cfg, lambda m, x, y: torch.matmul(x, y)), inputs


def _layernorm(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    c, eps = cfg["channels"], cfg["epsilon"]
    params = {"weight": _rand(g, c), "bias": _rand(g, c)}
    if cfg["layout"] == "tokens":
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x, (c,), m.weight, m.bias, eps)
        x = _rand(g, b, cfg["tokens"], c)
    else:  # ConvNeXt: permute to channels-last, normalise, permute back
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x.permute(0, 2, 3, 1), (c,), m.weight, m.bias, eps).permute(0, 3, 1, 2)
        x = _rand(g, b, c, cfg["size"], cfg["size"])
    return OperatorModule("layernorm", cfg, fn, params), [x]


def _groupnorm(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    c = cfg["channels"]

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, cfg["groups"], m.weight, m.bias, cfg["epsilon"])

    return (OperatorModule("groupnorm", cfg, fn, {"weight": _rand(g, c), "bias": _rand(g, c)}),
            [_rand(g, b, c, cfg["size"], cfg["size"])])


def _softmax(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    if cfg["layout"] == "attention":
        x = _rand(g, b, cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["tokens"])
    else:
        x = _rand(g, b, cfg["features"])
    return OperatorModule("softmax", cfg, lambda m, x: F.softmax(x, dim=-1)), [x]


def _shape(cfg: dict, b: int) -> list[int]:
    return [b, *operators._shape_of(cfg)]


def _elementwise(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    c, nchw = cfg["channels"], cfg["layout"] == "nchw"
    op = torch.add if cfg["op"] == "Add" else torch.mul
    inputs = [_rand(g, *_shape(cfg, b))]
    if cfg["broadcast"] == "weight":  # a bias / layer scale: a parameter broadcast over the map
        module = OperatorModule("elementwise", cfg, lambda m, x: op(x, m.weight),
                                {"weight": _rand(g, *([c, 1, 1] if nchw else [c]))})
        return module, inputs
    if cfg["broadcast"] == "none":  # a residual: two activations of one shape
        inputs.append(_rand(g, *_shape(cfg, b)))
    else:  # SE's per-channel scale: an activation broadcast over the map
        inputs.append(_rand(g, *([b, c, 1, 1] if nchw else [b, 1, c])))
    return OperatorModule("elementwise", cfg, lambda m, x, y: op(x, y)), inputs


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu, "ReLU6": F.relu6, "Sigmoid": torch.sigmoid, "HardSigmoid": F.hardsigmoid,
    "HardSwish": F.hardswish, "GELU": F.gelu, "Tanh": torch.tanh, "SiLU": F.silu,
}
assert set(_ACTIVATIONS) == set(operators.ACTIVATIONS)


def _activation(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    act = _ACTIVATIONS[cfg["op"]]
    return OperatorModule("activation", cfg, lambda m, x: act(x)), [_rand(g, *_shape(cfg, b))]


def _pooling(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    op = cfg["op"]
    if op == "MaxPool":
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return F.max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["pad"], ceil_mode=bool(cfg["ceil_mode"]))
    elif op == "AveragePool":
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, cfg["kernel"], cfg["stride"], cfg["pad"], ceil_mode=bool(cfg["ceil_mode"]),
                                count_include_pad=False)
    elif op == "GlobalAveragePool":
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return F.adaptive_avg_pool2d(x, 1)
    elif cfg["layout"] == "nchw":
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3), keepdim=True)
    else:
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=1)
    return OperatorModule("pooling", cfg, fn), [_rand(g, *_shape(cfg, b))]


def _resize(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    mode = "nearest" if cfg["mode"] == "nearest" else "bilinear"
    extra = {} if mode == "nearest" else {"align_corners": False}
    if cfg["target"] == "scale":
        size, scale = None, float(cfg["scale"])
    else:
        size, scale = (cfg["out_size"], cfg["out_size"]), None

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=size, scale_factor=scale, mode=mode, **extra)

    return OperatorModule("resize", cfg, fn), [_rand(g, b, cfg["channels"], cfg["size"], cfg["size"])]


def _concat(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    if cfg["layout"] == "nchw":
        inputs = [_rand(g, b, c, cfg["size"], cfg["size"]) for c in cfg["channels"]]
    else:
        inputs = [_rand(g, b, t, cfg["dim"]) for t in cfg["tokens"]]
    return OperatorModule("concat", cfg, lambda m, *xs: torch.cat(xs, dim=1)), inputs


def _split(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    axis = cfg["axis"]
    if cfg["op"] == "Split":
        def fn(m: OperatorModule, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return torch.split(x, cfg["split"], dim=axis)
    else:
        def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
            return x.narrow(axis, cfg["start"], cfg["end"] - cfg["start"])
    return OperatorModule("split", cfg, fn), [_rand(g, *_shape(cfg, b))]


def _channel_shuffle(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    c, groups, s = cfg["channels"], cfg["groups"], cfg["size"]

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return x.reshape(n, groups, c // groups, s, s).transpose(1, 2).reshape(n, c, s, s)

    return OperatorModule("channel_shuffle", cfg, fn), [_rand(g, b, c, s, s)]


def _transpose(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    case = cfg["case"]
    if case in ("nchw_to_nhwc", "nhwc_to_nchw"):
        c, s = cfg["channels"], cfg["size"]
        x, perm = ((_rand(g, b, c, s, s), (0, 2, 3, 1)) if case == "nchw_to_nhwc" else
                   (_rand(g, b, s, s, c), (0, 3, 1, 2)))
    elif case == "tokens":
        x, perm = _rand(g, b, cfg["tokens"], cfg["channels"]), (0, 2, 1)
    elif case == "heads":
        x, perm = _rand(g, b, cfg["tokens"], cfg["heads"] * cfg["windows"], cfg["head_dim"]), (0, 2, 1, 3)
    else:
        n, w = cfg["windows_per_side"], cfg["window"]
        x, perm = _rand(g, b, n, w, n, w, cfg["channels"]), (0, 1, 3, 2, 4, 5)
    return OperatorModule("transpose", cfg, lambda m, x: x.permute(*perm).contiguous()), [x]


def _attention(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    heads, t, d = cfg["heads"] * cfg["windows"], cfg["tokens"], cfg["head_dim"]
    scale = d ** -0.5

    def fn(m: OperatorModule, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.matmul(F.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale, dim=-1), v)

    return OperatorModule("attention", cfg, fn), [_rand(g, b, heads, t, d) for _ in range(3)]


def _batchnorm(cfg: dict, b: int, g: torch.Generator) -> tuple[OperatorModule, list[torch.Tensor]]:
    c = cfg["channels"]

    def fn(m: OperatorModule, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=cfg["epsilon"])

    buffers = {"running_mean": _rand(g, c), "running_var": torch.rand(c, generator=g) + 0.5}
    return (OperatorModule("batchnorm", cfg, fn, {"weight": _rand(g, c), "bias": _rand(g, c)}, buffers),
            [_rand(g, b, c, cfg["size"], cfg["size"])])


_BUILDERS: dict[str, Callable[[dict, int, torch.Generator], tuple[OperatorModule, list[torch.Tensor]]]] = {
    "conv": _conv, "conv_grouped": _conv, "conv_depthwise": _conv, "gemm": _gemm, "linear": _linear,
    "matmul_batched": _matmul_batched, "layernorm": _layernorm, "groupnorm": _groupnorm, "softmax": _softmax,
    "elementwise": _elementwise, "activation": _activation, "pooling": _pooling, "resize": _resize,
    "concat": _concat, "split": _split, "channel_shuffle": _channel_shuffle, "transpose": _transpose,
    "attention": _attention, "batchnorm": _batchnorm,
}
assert tuple(_BUILDERS) == operators.KINDS  # a kind added to operators needs its torch module here


def op_module(kind: str, config: dict, *, batch: int = 1,
              seed: int = 0) -> tuple[OperatorModule, tuple[torch.Tensor, ...]]:
    """The torch module of operator ``kind`` drawn as ``config`` (``operators.op_variant``'s) and its
    example inputs at ``batch`` (float32, CPU; weights and inputs random from ``seed``). The module is
    in eval mode; ``module(*inputs)`` runs the operator."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown operator kind {kind!r}; choose one of {', '.join(operators.KINDS)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    generator = torch.Generator().manual_seed(seed)
    try:
        module, inputs = _BUILDERS[kind](config, batch, generator)
    except KeyError as err:
        raise ValueError(f"{kind} config lacks {err.args[0]!r}: not a config operators.op_variant({kind!r}, seed) "
                         "drew") from None
    return module.eval(), tuple(inputs)


class _FirstInputOnly(nn.Module):
    """``module(x, *extras)`` with the extra inputs held as buffers (moved with ``.to(device)``)."""

    def __init__(self, module: nn.Module, extras: tuple[torch.Tensor, ...]) -> None:
        super().__init__()
        self.op = module
        self.count = len(extras)
        for i, t in enumerate(extras):
            self.register_buffer(f"extra{i}", t)

    def forward(self, x: torch.Tensor) -> Any:
        return self.op(x, *(getattr(self, f"extra{i}") for i in range(self.count)))


def timing_module(kind: str, config: dict, *, batch: int = 1, seed: int = 0) -> tuple[nn.Module, list[int]]:
    """:func:`op_module` as a module of its first input only (the others are buffers) and that input's
    shape: what ``measure_torch_cuda(module, shape)`` times."""
    module, inputs = op_module(kind, config, batch=batch, seed=seed)
    return _FirstInputOnly(module, inputs[1:]).eval(), list(inputs[0].shape)


def variant_torch(kind: str, seed: int, *, space: str = operators.SPACE, batch: int = 1,
                  opset: int = operators.DEFAULT_OPSET) -> tuple[dict, nn.Module]:
    """The dataset builder's torch generator for operators (``dataset build --ops --provider torch-cuda``):
    ``operators.variant_onnx``'s info (the same config, shapes, MACs; the ONNX graph the predictor
    trains on) and the :func:`timing_module` of that config."""
    info, _ = operators.variant_onnx(kind, seed, space=space, batch=batch, opset=opset)
    module, shape = timing_module(kind, info["config"], batch=batch, seed=seed)
    if shape != info["input_shape"]:  # the label must time the graph's operator, at the graph's shape
        raise RuntimeError(f"{kind} seed {seed}: torch input {shape} differs from the graph's {info['input_shape']}")
    return info, module
