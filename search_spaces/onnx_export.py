"""Torch module -> weight-free ONNX, plus the params / MACs counters the latency-family spec uses.

The export settings are fixed here so every family's graphs are comparable and reproducible
(spec 3.9 asks for them to be deliberate and recorded):

- legacy TorchScript exporter (``dynamo=False``): its graphs are the ones the spec's op counts
  were observed on;
- ``do_constant_folding=False``: the measured latencies are eager PyTorch runs with unfused
  BatchNorm, so BN must stay its own node (folding would fuse it into the conv);
- ``export_params=False`` by default: the predictor only needs the structure, the weights would
  make a large file, and the weights become graph inputs that ``onnx_to_graph`` recognises;
- eval mode, one input ``"input"`` and one output ``"logits"``.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17


def export_onnx(
    module: nn.Module,
    input_shape: Sequence[int],
    path: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    *,
    export_params: bool = False,
) -> bytes:
    """Export ``module`` (traced on a zero tensor of ``input_shape``) and return the ONNX bytes.

    With ``path`` the bytes are also written there atomically (a temp file in the same folder,
    then a rename), so a reader never sees a half-written model. ``export_params=True`` keeps the
    weights (useful to check the export against torch in onnxruntime).
    """
    was_training = module.training
    module.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # the legacy exporter warns that it is deprecated, and the tracer about constant shapes
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    (torch.zeros(tuple(int(d) for d in input_shape)),),
                    buffer,
                    export_params=export_params,
                    opset_version=opset,
                    do_constant_folding=False,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamo=False,
                )
    finally:
        module.train(was_training)
    data = buffer.getvalue()
    if path is not None:
        _write_atomically(Path(path), data)
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def count_params(module: nn.Module) -> int:
    """Trainable parameters: conv / linear weights and biases and BN affine, not BN running stats."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(module: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """Multiply-accumulates of one forward pass on ``input_shape`` (the whole batch).

    The NB201 / AutoDL convention the spec's sanity numbers use: conv and linear MACs, plus one per
    output element of every layer with a bias; pooling, BN and activations count nothing. Hooks
    count every execution, so a module run twice counts twice. ``device="meta"`` counts a module built
    on the meta device (shapes only, no compute).
    """
    total = 0

    def conv_hook(layer: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
        total += output.numel() * (per_output + (layer.bias is not None))

    def linear_hook(layer: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * (layer.in_features + (layer.bias is not None))

    handles = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(tuple(int(d) for d in input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return int(total)
