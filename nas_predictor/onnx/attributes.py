"""Canonical attributes of ONNX ops (the reference's canonical forms, with its defaults).

kernel / stride / dilation: one value per spatial dim (defaults: kernel from the weight's spatial
dims, stride 1, dilation 1); pads: begins then ends (ONNX order), default 0, and ``auto_pad``
SAME_UPPER / SAME_LOWER / VALID resolved from the shapes (the reference ignores auto_pad);
group default 1; bias = the op has its optional bias input.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import onnx

ShapeOf = Callable[[str], "tuple[int, ...] | None"]


def raw_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        out[attr.name] = value
    return out


def _has_input(node: onnx.NodeProto, slot: int) -> bool:
    return len(node.input) > slot and bool(node.input[slot])


def _same_pads(in_dims: Sequence[int], out_dims: Sequence[int], kernel, stride, dilation, upper: bool) -> list[int]:
    begins, ends = [], []
    for i, o, k, s, d in zip(in_dims, out_dims, kernel, stride, dilation):
        total = max(0, (o - 1) * s + (k - 1) * d + 1 - i) if i and o else 0
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins + ends


def _window(node: onnx.NodeProto, raw: dict[str, Any], shape_of: ShapeOf, weight_slot: int | None) -> dict[str, Any]:
    """kernel, stride, pad, dilation for Conv-like and pooling ops."""
    kernel = list(raw.get("kernel_shape", []))
    if not kernel and weight_slot is not None and _has_input(node, weight_slot):
        weight = shape_of(node.input[weight_slot]) or ()
        kernel = list(weight[2:])
    rank = len(kernel) or 2
    kernel = kernel or [1] * rank
    stride = list(raw.get("strides", [1] * rank))
    dilation = list(raw.get("dilations", [1] * rank))
    pads = list(raw.get("pads", [0] * (2 * rank)))
    if len(pads) == rank == 2:  # non-standard (a, b): like the reference, begins a, ends b
        pads = [pads[0], pads[0], pads[1], pads[1]]
    auto_pad = raw.get("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        pads = [0] * (2 * rank)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        in_shape = shape_of(node.input[0]) or ()
        out_shape = shape_of(node.output[0]) or ()
        pads = _same_pads(in_shape[2:], out_shape[2:], kernel, stride, dilation, auto_pad == "SAME_UPPER")
    return {"kernel": kernel, "stride": stride, "pad": pads, "dilation": dilation}


def canonical_attributes(node: onnx.NodeProto, shape_of: ShapeOf) -> dict[str, Any]:
    """The attributes the tokenizer and the cost model read, in canonical form (numbers and lists)."""
    op = node.op_type
    raw = raw_attributes(node)
    if op in ("Conv", "ConvTranspose"):
        attrs = _window(node, raw, shape_of, weight_slot=1)
        attrs["group"] = int(raw.get("group", 1))
        attrs["bias"] = int(_has_input(node, 2))
        if op == "ConvTranspose":
            attrs["output_padding"] = list(raw.get("output_padding", [0] * len(attrs["kernel"])))
        return attrs
    if op in ("MaxPool", "AveragePool", "LpPool"):
        attrs = _window(node, raw, shape_of, weight_slot=None)
        if op == "AveragePool":
            attrs["count_include_pad"] = int(raw.get("count_include_pad", 0))
        return attrs
    if op == "Gemm":
        return {"bias": int(_has_input(node, 2)), "transA": int(raw.get("transA", 0)),
                "transB": int(raw.get("transB", 0))}
    if op == "Transpose":
        perm = raw.get("perm")
        if perm is None:  # ONNX default: reverse the dims
            rank = len(shape_of(node.input[0]) or ())
            perm = list(range(rank))[::-1]
        return {"perm": [int(p) for p in perm]}
    if op in ("Softmax", "LogSoftmax", "Concat", "Flatten", "Split", "Gather", "LayerNormalization"):
        return {"axis": int(raw["axis"])} if "axis" in raw else {}
    if op == "Einsum":  # the equation says which dims are contracted: the cost model needs it
        return {"equation": str(raw.get("equation", "")).replace(" ", "")}
    if op in ("Resize", "Upsample"):
        return {"mode": {"nearest": 0, "linear": 1, "bilinear": 1, "cubic": 2}.get(str(raw.get("mode", "nearest")), 0)}
    return {}
