"""Monotone calibration of predictions to label units.

- Accuracy (``fit_linear_calibration``): the ranking-heavy training loss pins down differences between
  architectures more than their absolute level, so raw predictions can sit a few points off. A
  least-squares line fitted on the training cells moves them back without changing any ranking (the
  slope is kept positive).
- Latency (``fit_log_scale``): a predictor carried to networks of a family it never saw, or to a device
  close to but not the one it learnt, is mostly off by one factor (HELP's OFA networks run at half
  their 2080ti_1 latency on titan_rtx_1, NB201 ones at 0.84). A few measured networks fix that
  factor; the ranking is again unchanged.
"""

from __future__ import annotations

import numpy as np

from nas_predictor.errors import DataError


def fit_linear_calibration(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """scale, shift minimising ||scale * pred + shift - labels||^2, with scale > 0."""
    pred, labels = np.asarray(pred, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if pred.shape != labels.shape or pred.size < 2:
        raise DataError(f"calibration needs matching arrays of >= 2 values, got {pred.shape} and {labels.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(labels))):
        raise DataError("calibration values must be finite")
    var = float(np.var(pred))
    if var == 0.0:
        return {"scale": 1.0, "shift": float(np.mean(labels - pred))}
    scale = float(np.cov(pred, labels, bias=True)[0, 1] / var)
    if scale <= 0:  # a line that would reverse the ranking: only fix the level
        return {"scale": 1.0, "shift": float(np.mean(labels - pred))}
    return {"scale": scale, "shift": float(np.mean(labels) - scale * np.mean(pred))}


def apply_calibration(pred: np.ndarray, calibration: dict[str, float] | None) -> np.ndarray:
    if not calibration:
        return pred
    return pred * calibration["scale"] + calibration["shift"]


def fit_log_scale(predicted: np.ndarray, measured: np.ndarray) -> float:
    """The factor s that rescales latency predictions to measurements: exp(median(log(measured /
    predicted))). The median, not the mean: with five or ten measurements one noisy timing must not
    move the factor, and the median log ratio is the factor that leaves half the networks above and
    half below (what minimises the mean absolute log error)."""
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    measured = np.asarray(measured, dtype=np.float64).ravel()
    if predicted.shape != measured.shape or predicted.size < 1:
        raise DataError(f"a latency scale needs matching arrays of >= 1 value, got {predicted.shape} and {measured.shape}")
    for name, values in (("predicted", predicted), ("measured", measured)):
        if not np.all(np.isfinite(values) & (values > 0)):
            raise DataError(f"{name} latencies must be finite and positive, got {values[~(np.isfinite(values) & (values > 0))][:3].tolist()}")
    return float(np.exp(np.median(np.log(measured / predicted))))
