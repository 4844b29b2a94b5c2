"""Evaluation metrics: Kendall tau (SciPy tau-b), MAPE and Acc(delta)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def kendall_tau(truth: np.ndarray, pred: np.ndarray) -> float:
    tau = stats.kendalltau(np.asarray(truth), np.asarray(pred)).statistic
    return float(tau)


def mape(truth: np.ndarray, pred: np.ndarray) -> float:
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(np.mean(np.abs(pred - truth) / truth))


def column_mape(truth: np.ndarray, pred: np.ndarray) -> float:
    """MAPE of 1-D labels, or the mean over columns of each column's MAPE on its known (non-NaN)
    labels: the model-selection score of a multi-device latency predictor."""
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if truth.ndim == 1:
        return mape(truth, pred)
    known = ~np.isnan(truth)
    return float(np.mean([mape(truth[known[:, k], k], pred[known[:, k], k]) for k in range(truth.shape[1])]))


def acc_within(truth: np.ndarray, pred: np.ndarray, delta: float) -> float:
    """Fraction of samples whose absolute percentage error is at most delta (e.g. 0.05)."""
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(np.mean(np.abs(pred - truth) / truth <= delta))


def defined_tau(truth: np.ndarray, pred: np.ndarray) -> float | None:
    """Kendall tau for a results file: None where it is undefined (a constant side, fewer than two
    values), since strict JSON has no NaN."""
    if len(truth) < 2:
        return None
    tau = kendall_tau(truth, pred)
    return tau if np.isfinite(tau) else None


def summarize(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "kendall_tau": kendall_tau(truth, pred),
        "mape": mape(truth, pred),
        "acc_1pct": acc_within(truth, pred, 0.01),
        "acc_5pct": acc_within(truth, pred, 0.05),
        "acc_10pct": acc_within(truth, pred, 0.10),
    }
