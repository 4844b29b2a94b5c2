"""Monotone calibration of predictions to label units.

- Accuracy (``fit_linear_calibration``): the ranking-heavy training loss pins down differences between
  architectures more than their absolute level, so raw predictions can sit a few points off. A
  least-squares line fitted on the training cells moves them back without changing any ranking (the
  slope is kept positive).
- Latency (``fit_log_scale``): a predictor carried to networks of a family it never saw, or to a device
  close to but not the one it learnt, is mostly off by one factor (HELP's OFA networks run at half
  their 2080ti_1 latency on titan_rtx_1, NB201 ones at 0.84). A few measured networks fix that
  factor; the ranking is again unchanged.
- Latency on a device of another kind (``fit_latency_map``): a phone, a server CPU, or a GPU at
  batch 256 does not just run slower or faster; big networks cost it relatively more or less than on
  the predictor's device, so latency = a * prediction^b fits better than one factor. With enough
  timings, ``fit="auto"`` picks whichever of the two predicts left-out timings better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_predictor.errors import ConfigError, DataError

LATENCY_FITS = ("auto", "scale", "power")
# Fewer timings than this: "auto" keeps one factor (leave-one-out needs 3 timings per power fit).
# On HELP's devices no shipped predictor has, with 5 timings, auto from 4 timings on averaged 5.5 %
# MAPE on GPUs against 6.4 % for one factor, and never lost more than a point where one factor won
# (benchmarks/latency_unseen_device.py; README "devices no predictor saw").
MIN_POWER_TIMINGS = 4


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


def _positive_pair(predicted, measured) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    measured = np.asarray(measured, dtype=np.float64).ravel()
    if predicted.shape != measured.shape or predicted.size < 1:
        raise DataError(f"a latency scale needs matching arrays of >= 1 value, got {predicted.shape} and {measured.shape}")
    for name, values in (("predicted", predicted), ("measured", measured)):
        if not np.all(np.isfinite(values) & (values > 0)):
            raise DataError(f"{name} latencies must be finite and positive, got {values[~(np.isfinite(values) & (values > 0))][:3].tolist()}")
    return predicted, measured


def fit_log_scale(predicted: np.ndarray, measured: np.ndarray) -> float:
    """The factor s that rescales latency predictions to measurements: exp(median(log(measured /
    predicted))). The median, not the mean: with five or ten measurements one noisy timing must not
    move the factor, and the median log ratio is the factor that leaves half the networks above and
    half below (what minimises the mean absolute log error)."""
    predicted, measured = _positive_pair(predicted, measured)
    return float(np.exp(np.median(np.log(measured / predicted))))


@dataclass(frozen=True)
class LatencyMap:
    """measured ~ scale * predicted ** exponent (exponent 1: one factor)."""

    scale: float
    exponent: float = 1.0
    fit: str = "scale"

    def apply(self, predicted) -> np.ndarray:
        return self.scale * np.power(np.asarray(predicted, dtype=np.float64), self.exponent)

    def describe(self) -> str:
        if self.exponent == 1.0:
            return f"x{self.scale:.3f}"
        return f"{self.scale:.3f} * predicted^{self.exponent:.3f}"

    def to_dict(self) -> dict:
        return {"scale": self.scale, "exponent": self.exponent, "fit": self.fit}


def choose_latency_map(candidates, measured, fit: str = "auto") -> tuple[int, LatencyMap]:
    """Of several predictions of the same timed networks (columns of ``candidates``: a multi-device
    predictor's outputs), the one that, mapped by ``fit_latency_map``, fits ``measured`` best (median
    absolute log error on the timings), with its map. For a device the predictor never saw: its
    nearest setting is the one whose latencies, rescaled, already look like the timings."""
    candidates = np.asarray(candidates, dtype=np.float64)
    if candidates.ndim != 2 or candidates.shape[1] < 1:
        raise DataError(f"candidates must be a (networks, settings) array, got shape {candidates.shape}")
    best: tuple[float, int, LatencyMap] | None = None
    for j in range(candidates.shape[1]):
        latency_map = fit_latency_map(candidates[:, j], measured, fit)
        err = float(np.median(np.abs(np.log(np.asarray(measured, dtype=np.float64) / latency_map.apply(candidates[:, j])))))
        if best is None or err < best[0]:
            best = (err, j, latency_map)
    return best[1], best[2]


def fixed_latency_map(calibrate: object) -> LatencyMap | None:
    """The map a ``calibrate=`` argument names without any timings: identity for None, one factor for
    a positive number, a ``LatencyMap`` as given; None for anything else (a timings file, fitted by
    the caller). A bool or a non-positive number is a ConfigError."""
    if calibrate is None:
        return LatencyMap(1.0)
    if isinstance(calibrate, LatencyMap):
        return calibrate
    if isinstance(calibrate, bool) or isinstance(calibrate, (int, float)) and not (
            np.isfinite(calibrate) and calibrate > 0):
        raise ConfigError(f"calibrate must be a positive finite factor or a timings file, got {calibrate!r}")
    if isinstance(calibrate, (int, float)):
        return LatencyMap(float(calibrate))
    return None


def _power(predicted: np.ndarray, measured: np.ndarray) -> LatencyMap | None:
    """Least squares of log measured on log predicted; None where it cannot be fitted or would reverse
    the ranking (exponent <= 0)."""
    x = np.log(predicted)
    if predicted.size < 3 or np.ptp(x) == 0:
        return None
    b, log_a = np.polyfit(x, np.log(measured), 1)
    return LatencyMap(float(np.exp(log_a)), float(b), "power") if b > 0 else None


def fit_latency_map(predicted, measured, fit: str = "auto") -> LatencyMap:
    """Map latency predictions to a device from a few of its timings.

    ``scale``: one factor (``fit_log_scale``). ``power``: scale * predicted^exponent, least squares
    in log space (one factor where that cannot be fitted). ``auto``: one factor below
    ``MIN_POWER_TIMINGS`` timings; from there, whichever of the two has the lower median absolute log
    error over leave-one-out fits of the timings."""
    if fit not in LATENCY_FITS:
        raise ConfigError(f"unknown latency fit {fit!r}; choose from {', '.join(LATENCY_FITS)}")
    predicted, measured = _positive_pair(predicted, measured)
    scale = LatencyMap(fit_log_scale(predicted, measured))
    if fit == "scale":
        return scale
    power = _power(predicted, measured)
    if power is None or fit == "power":
        return power or scale
    if predicted.size < MIN_POWER_TIMINGS:
        return scale
    errors = {"scale": [], "power": []}
    for i in range(predicted.size):
        rest = np.arange(predicted.size) != i
        fits = {"scale": LatencyMap(fit_log_scale(predicted[rest], measured[rest])),
                "power": _power(predicted[rest], measured[rest])}
        for name, m in fits.items():
            m = m or fits["scale"]
            errors[name].append(abs(float(np.log(measured[i] / m.apply(predicted[i])))))
    return power if np.median(errors["power"]) < np.median(errors["scale"]) else scale
