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


def acc_within(truth: np.ndarray, pred: np.ndarray, delta: float) -> float:
    """Fraction of samples whose absolute percentage error is at most delta (e.g. 0.05)."""
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(np.mean(np.abs(pred - truth) / truth <= delta))


def summarize(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "kendall_tau": kendall_tau(truth, pred),
        "mape": mape(truth, pred),
        "acc_1pct": acc_within(truth, pred, 0.01),
        "acc_5pct": acc_within(truth, pred, 0.05),
        "acc_10pct": acc_within(truth, pred, 0.10),
    }
