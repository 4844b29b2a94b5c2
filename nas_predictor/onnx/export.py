"""Torch module -> weight-free ONNX, with the export settings fixed so every graph is comparable and reproducible.

Spec 3.9 asks for the settings to be deliberate and recorded:

- legacy TorchScript exporter (``dynamo=False``): its graphs are the ones the spec's op counts
  were observed on;
- ``do_constant_folding=False``: the measured latencies are eager PyTorch runs with unfused
  BatchNorm, so BN must stay its own node (folding would fuse it into the conv);
- ``export_params=False`` by default: the predictor only needs the structure, the weights would
  make a large file, and the weights become graph inputs that ``onnx_to_graph`` recognises;
- eval mode, one input ``"input"`` and one output ``"logits"``.

A network the exporter cannot take is an ``ArchError`` naming the module that failed (its class and
where it sits), found from the exporter's traceback: an error inside a module's ``forward`` is that
module's; an operator with no ONNX form is the module whose scope the traced node carries.

It lives in the core (not with the search spaces) because the core's graph cache exports every space's
networks through it (nas_predictor.data.latency_graphs.network_graph).
"""

from __future__ import annotations

import io
import os
import warnings
from types import TracebackType
from typing import Sequence

import torch
from torch import nn

from nas_predictor.errors import ArchError
from nas_predictor.io import atomic_write_bytes

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
    except Exception as exc:
        raise ArchError(f"cannot export {type(module).__name__} to ONNX: {failure(module, exc)}") from exc
    finally:
        module.train(was_training)
    data = buffer.getvalue()
    if path is not None:
        atomic_write_bytes(data, path)
    return data


def failure(module: nn.Module, exc: BaseException) -> str:
    """One line saying which submodule of ``module`` an export error came from, and the error."""
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    where = _failed_module(module, exc.__traceback__)
    return f"module {where} failed: {message}" if where else message


def _failed_module(root: nn.Module, tb: TracebackType | None) -> str | None:
    """``Class (at path)`` of the innermost module running when the error was raised, or of the traced
    node the ONNX conversion failed on; None when the traceback shows neither."""
    names = {id(m): name for name, m in root.named_modules()}
    found = None
    while tb is not None:
        local = tb.tb_frame.f_locals
        owner = local.get("self")
        node = local.get("node", local.get("n"))
        if isinstance(owner, nn.Module) and id(owner) in names:
            found = _describe(type(owner).__name__, names[id(owner)])
        elif isinstance(node, torch._C.Node) and node.scopeName():
            # "pkg.Net::/pkg.Block::blocks/pkg.Odd::blocks.0": each module's class and its path from the root
            cls, _, path = node.scopeName().rpartition("/")[2].partition("::")
            found = _describe(cls.rpartition(".")[2], path)
        tb = tb.tb_next
    return found


def _describe(cls: str, path: str) -> str:
    return f"{cls} (at {path!r})" if path else cls
