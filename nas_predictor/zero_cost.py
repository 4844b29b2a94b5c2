"""Zero-cost proxies: training-free scores of a network at initialisation (issue 31).

Each proxy reads one freshly initialised network (built from ``seed``) and, where it needs data, one
seeded batch (:class:`ProxyBatch`): standard-normal images and uniform labels, since the point is to
score architectures before any data is looked at, and the same batch serves every architecture. The
definitions are the published ones (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021; Mellor et al., "Neural Architecture Search without Training", ICML 2021), as NASLib computes
them:

- ``params``: trainable parameters; ``flops``: floating-point operations of one image's forward pass
  (``torch.utils.flop_counter``, a multiply-add counted as 2).
- ``grad_norm``: the sum over convolution and linear layers of the L2 norm of the loss gradient of their
  weights (cross-entropy on the batch).
- ``snip``: the sum over those layers of ``|w * dL/dw|`` (connection sensitivity, Lee et al. 2019).
- ``synflow``: every parameter and buffer made non-negative (``abs``), double precision, BatchNorm on its
  (initial) running statistics, an all-ones single image in; the sum of the output is differentiated and
  ``sum |w * dR/dw|`` over the layers is the score (Tanaka et al. 2020). Data-independent.
- ``jacov``: minus the sum of ``log(v + k) + 1 / (v + k)`` over the eigenvalues ``v`` of the correlation
  matrix of the per-image input Jacobians (``k = 1e-5``).
- ``naswot``: ``log |det K|`` of the kernel ``K = C C^T + (1 - C)(1 - C)^T`` of the images' binary
  ReLU activation codes ``C``.

A network whose output does not depend on its input (NAS-Bench-201 cells with no path from input to
output) has no Jacobian correlation and a singular activation kernel: ``jacov`` and ``naswot`` are then
:data:`DEGENERATE` (a finite floor below any real score), so no output is ever NaN or infinite.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_predictor.errors import ConfigError
from nas_predictor.proxy_features import FAMILIES, PROXIES  # noqa: F401  (their home is torch-free)

#: the score of jacov and naswot for a network whose output ignores its input
DEGENERATE = -1.0e9
JACOV_K = 1e-5
#: layers whose weights the gradient proxies sum over (NASLib's choice)
WEIGHTED = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class ProxyBatch:
    """The seeded data the data-dependent proxies read: ``size`` standard-normal images of
    ``input_shape`` (C, H, W) and labels drawn uniformly from ``num_classes``."""

    input_shape: tuple[int, ...]
    num_classes: int
    size: int = 64
    seed: int = 0

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn((self.size, *self.input_shape), generator=g)
        y = torch.randint(self.num_classes, (self.size,), generator=g)
        return x, y

    def identity(self) -> dict:
        """What a cached score depends on, besides the architecture and the network's seed."""
        return {"input_shape": list(self.input_shape), "num_classes": self.num_classes, "size": self.size,
                "seed": self.seed, "data": "standard normal images, uniform labels"}


def _weighted(model: nn.Module) -> Iterable[nn.Module]:
    return (m for m in model.modules() if isinstance(m, WEIGHTED) and m.weight.requires_grad)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[-1] if isinstance(out, (tuple, list)) else out  # NB201's network returns (features, logits)


def params(model: nn.Module) -> float:
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flops(model: nn.Module, input_shape: Sequence[int]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        _logits(model, torch.zeros((1, *input_shape)))
    return float(counter.get_total_flops())


def _data_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """grad_norm, snip, jacov and naswot from one forward pass of the batch (training mode, as NASLib):
    the cross-entropy's gradient to the weights gives grad_norm and snip, the summed output's gradient
    to the images (their Jacobians) gives jacov, and the ReLU inputs' signs give naswot's codes. One
    forward instead of two is the same numbers in half the time, which matters for 15,625 cells."""
    model = copy.deepcopy(model).train()
    kernel = torch.zeros((len(x), len(x)), dtype=torch.float64)

    def hook(module, inputs, output) -> None:
        codes = (inputs[0].detach().reshape(len(x), -1) > 0).float()
        # K = C C^T + (1 - C)(1 - C)^T = 2 C C^T + n - |c_i| - |c_j|: one product instead of two; the
        # entries are integer counts below 2**24, exact in float32
        ones = codes.sum(dim=1, dtype=torch.float64)
        kernel.add_(2.0 * (codes @ codes.T).double() + codes.shape[1] - ones[:, None] - ones[None, :])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    x = x.clone().requires_grad_(True)
    try:
        out = _logits(model, x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    scores = {"naswot": float(logdet) if sign > 0 and math.isfinite(float(logdet)) else DEGENERATE}
    layers = list(_weighted(model))
    if not out.requires_grad:  # no path from the images (nor from any weight) to the output
        return {**scores, "grad_norm": 0.0, "snip": 0.0, "jacov": DEGENERATE}
    weights = [m.weight for m in layers]
    grads = (torch.autograd.grad(F.cross_entropy(out, y), weights, retain_graph=True, allow_unused=True)
             if weights else ())
    scores["grad_norm"] = float(sum(g.norm().item() for g in grads if g is not None))
    scores["snip"] = float(sum((g * w).abs().sum().item() for g, w in zip(grads, weights) if g is not None))
    (image_grads,) = torch.autograd.grad(out, x, torch.ones_like(out), allow_unused=True)
    if image_grads is None:
        return {**scores, "jacov": DEGENERATE}
    jacobians = image_grads.reshape(len(x), -1).double().numpy()
    if (jacobians.std(axis=1) == 0).any():
        return {**scores, "jacov": DEGENERATE}
    v = np.linalg.eigvalsh(np.corrcoef(jacobians))
    return {**scores, "jacov": float(-np.sum(np.log(v + JACOV_K) + 1.0 / (v + JACOV_K)))}


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _data_scores(model, x, y)["grad_norm"]


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _data_scores(model, x, y)["snip"]


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    model = copy.deepcopy(model).double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    # BatchNorm on its running statistics: in training mode an all-ones image would be normalised to zero
    model.eval()
    model.zero_grad()
    _logits(model, torch.ones((1, *input_shape), dtype=torch.float64)).sum().backward()
    total = sum((m.weight.grad * m.weight).abs().sum().item() for m in _weighted(model) if m.weight.grad is not None)
    return float(total) if math.isfinite(total) else float(np.finfo(np.float64).max)


def jacov(model: nn.Module, x: torch.Tensor) -> float:
    return _data_scores(model, x, torch.zeros(len(x), dtype=torch.long))["jacov"]


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    return _data_scores(model, x, torch.zeros(len(x), dtype=torch.long))["naswot"]


def compute_proxies(model: nn.Module, batch: ProxyBatch, names: Sequence[str] = PROXIES) -> dict[str, float]:
    """The proxies ``names`` of ``model`` (left as it is: each proxy works on a copy)."""
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ConfigError(f"unknown zero-cost proxy {unknown[0]!r}; known: {', '.join(PROXIES)}")
    x, y = batch.tensors()
    out: dict[str, float] = {}
    if {"grad_norm", "snip", "jacov", "naswot"} & set(names):
        out.update(_data_scores(model, x, y))
    if "synflow" in names:
        out["synflow"] = synflow(model, batch.input_shape)
    if "params" in names:
        out["params"] = params(model)
    if "flops" in names:
        out["flops"] = flops(model, batch.input_shape)
    return {name: out[name] for name in names}
