"""Monotone (positive linear) calibration of predictions to label units.

The ranking-heavy training loss pins down differences between architectures more than their absolute
level, so raw predictions can sit a few points off. A least-squares line fitted on the training cells
moves them back without changing any ranking (the slope is kept positive).
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
