"""Training losses of NAR-Former V2 (spec section 3)."""

from __future__ import annotations

import torch


def _relative_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred / target - 1 on the known labels: NaN targets are missing labels (a multi-device latency
    model, a device a family was never measured on) and are left out."""
    known = ~torch.isnan(target)
    if bool(known.all()):
        return pred / target - 1.0
    return pred[known] / target[known] - 1.0


def relative_squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean((pred / target - 1)^2): what the reference calls "MSE"; it matches MAPE-style metrics."""
    return (_relative_errors(pred, target) ** 2).mean()


def relative_absolute_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(|pred / target - 1|): the MAPE itself, for predictors judged on MAPE and Acc(x %).

    The squared form's gradient grows with the error, so a few badly predicted (often noisily
    measured) networks steer training; MAPE weighs every network's relative error alike.
    """
    return _relative_errors(pred, target).abs().mean()


#: below this a prediction counts as this (softplus can underflow to 0; log 0 would be -inf)
LOG_FLOOR = 1e-12


def log_absolute_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(|log pred - log target|): the relative error measured symmetrically, in log space.

    Where labels span orders of magnitude (whole CNNs on a CPU: 0.7 ms to 1.6 s), the MAPE as loss has
    a trivial way out: predicting ~0 costs exactly 1 per network, while an overshoot on a small
    network costs 100x; a model that starts at the mean label collapses towards 0 (MAPE 0.84-0.91 after
    30 epochs on the measured CPU dataset). In log space an overshoot and an undershoot by the same
    factor cost the same, and for small errors |log(1 + e)| ~ |e|, so it still targets the MAPE.
    """
    known = ~torch.isnan(target)
    if not bool(known.all()):
        pred, target = pred[known], target[known]
    return (torch.log(pred.clamp_min(LOG_FLOOR)) - torch.log(target)).abs().mean()


VALUE_LOSSES = {"relative_squared": relative_squared_error, "relative_absolute": relative_absolute_error,
                "log_absolute": log_absolute_error}


def sequence_ranking_loss(pred: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SR loss: L1 between predicted and true differences against a random re-ordering of the batch."""
    perm = torch.randperm(pred.shape[0], generator=generator, device="cpu").to(pred.device)
    return ((pred - pred[perm]) - (target - target[perm])).abs().mean()


def all_pairs_ranking_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SR loss over every pair in the batch instead of one random pairing (B^2 cheap differences)."""
    diff = (pred[:, None] - pred[None, :]) - (target[:, None] - target[None, :])
    n = pred.shape[0]
    return diff.abs().sum() / max(1, n * (n - 1))


def architecture_consistency_loss(pred_orig: torch.Tensor, pred_aug: torch.Tensor) -> torch.Tensor:
    """AC loss: L1 between predictions for a cell and for an isomorphic relabelling of it."""
    return (pred_aug - pred_orig).abs().mean()


def accuracy_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    lambda_sr: float,
    lambda_ac: float,
    generator: torch.Generator | None = None,
    sr_mode: str = "permutation",
    value_loss: str = "relative_squared",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss (value term + ranking terms). With lambda_ac > 0 the batch is [originals; augmented
    copies] (2B items)."""
    loss = VALUE_LOSSES[value_loss](pred, target)
    parts = {value_loss: float(loss.detach())}
    if lambda_sr > 0:
        if sr_mode == "all_pairs":
            sr = all_pairs_ranking_loss(pred, target)
        else:
            sr = sequence_ranking_loss(pred, target, generator)
        loss = loss + lambda_sr * sr
        parts["sr"] = float(sr.detach())
    if lambda_ac > 0:
        half = pred.shape[0] // 2
        ac = architecture_consistency_loss(pred[:half], pred[half:])
        loss = loss + lambda_ac * ac
        parts["ac"] = float(ac.detach())
    return loss, parts
