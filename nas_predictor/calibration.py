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
  the predictor's device, so latency = a * prediction^b fits better than one factor. The exponent is
  bounded (``EXPONENT_RANGE``) and ``fit="auto"`` takes the power law only where the timings support
  it clearly (``fit_latency_map``): a few timings must never turn into an extrapolation by millions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_predictor.errors import ConfigError, DataError

LATENCY_FITS = ("auto", "scale", "power")
# Fewer timings than this: "auto" keeps one factor (leave-one-out needs 3 timings per power fit).
# On HELP's devices no shipped predictor has, with 5 timings, auto from 4 timings on averages 6.1 %
# MAPE on GPUs against 6.4 % for one factor (5.5 % before the exponent bound and the margin below;
# benchmarks/latency_unseen_device.py, docs/results.md "devices no predictor saw").
MIN_POWER_TIMINGS = 4
# Physically plausible exponents of latency = a * prediction^b. Between two devices the cost of a
# network grows with its work on both, only somewhat faster or slower on one (memory-bound phones,
# large batches). b = 2.77 (fitted from 5 timings in issue 26) says that a network 10x bigger takes
# 590x longer, which no device does; it extrapolated a Swin-T to 1.57 million ms. b = 1.5 already
# says 32x for 10x; b = 0.5 says 3x.
EXPONENT_RANGE = (0.5, 1.5)
# ``auto`` takes the power law only when its median leave-one-out abs log error is at least this much
# lower than one factor's: two parameters fitted on 4-10 timings always fit a little better by chance,
# and the price of a wrong exponent grows with the distance from the timed networks.
AUTO_POWER_MARGIN = 0.10


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
            bad = values[~(np.isfinite(values) & (values > 0))][:3].tolist()
            raise DataError(f"{name} latencies must be finite and positive, got {bad}")
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
    """Least squares of log measured on log predicted with the exponent bounded to ``EXPONENT_RANGE``;
    None where it cannot be fitted or would reverse the ranking (unbounded exponent <= 0).

    An exponent outside the range is clamped to the nearer bound and the scale refitted (mean log
    residual at that exponent): the objective is a convex quadratic in (log a, b), so this is the exact
    least-squares optimum under the bound, the best physically plausible power law for the timings.
    Dropping to one factor instead would ignore a real trend (timings that grow like prediction^1.8
    are still best told by b = 1.5, not 1); ``auto`` however never picks a clamped fit (see
    ``fit_latency_map``), since there the bound, not the timings, sets the exponent."""
    fit = _unbounded_exponent(predicted, measured)
    if fit is None:
        return None
    b = float(np.clip(fit, *EXPONENT_RANGE))
    log_a = float(np.mean(np.log(measured) - b * np.log(predicted)))
    return LatencyMap(float(np.exp(log_a)), b, "power")


def _unbounded_exponent(predicted: np.ndarray, measured: np.ndarray) -> float | None:
    """The least-squares exponent without bounds; None where it cannot be fitted or is <= 0."""
    x = np.log(predicted)
    if predicted.size < 3 or np.ptp(x) == 0:
        return None
    b = float(np.polyfit(x, np.log(measured), 1)[0])
    return b if b > 0 else None


def fit_latency_map(predicted, measured, fit: str = "auto") -> LatencyMap:
    """Map latency predictions to a device from a few of its timings.

    ``scale``: one factor (``fit_log_scale``). ``power``: scale * predicted^exponent, least squares
    in log space with the exponent clamped to ``EXPONENT_RANGE`` (one factor where no power law can be
    fitted). ``auto``: the power law only when all of these hold, else one factor:
    at least ``MIN_POWER_TIMINGS`` timings; the unbounded least-squares exponent lies in
    ``EXPONENT_RANGE`` (the timings themselves support a plausible law); and its median absolute log
    error over leave-one-out fits is at least ``AUTO_POWER_MARGIN`` (10 %) lower than one factor's."""
    if fit not in LATENCY_FITS:
        raise ConfigError(f"unknown latency fit {fit!r}; choose from {', '.join(LATENCY_FITS)}")
    predicted, measured = _positive_pair(predicted, measured)
    scale = LatencyMap(fit_log_scale(predicted, measured))
    if fit == "scale":
        return scale
    power = _power(predicted, measured)
    if power is None or fit == "power":
        return power or scale
    exponent = _unbounded_exponent(predicted, measured)
    low, high = EXPONENT_RANGE
    # A law exactly at a bound can come out of the fit just beyond it: float32 predictions move in the
    # 6th digit with the batch they are computed in, which over timed networks of similar size moves
    # the fitted exponent in the 4th-5th. Such a law is still plausible (and is then fitted at the bound).
    if predicted.size < MIN_POWER_TIMINGS or exponent is None or not low - 1e-3 <= exponent <= high + 1e-3:
        return scale
    errors = {"scale": [], "power": []}
    for i in range(predicted.size):
        rest = np.arange(predicted.size) != i
        fits = {"scale": LatencyMap(fit_log_scale(predicted[rest], measured[rest])),
                "power": _power(predicted[rest], measured[rest])}
        for name, m in fits.items():
            m = m or fits["scale"]
            errors[name].append(abs(float(np.log(measured[i] / m.apply(predicted[i])))))
    better = np.median(errors["power"]) <= (1.0 - AUTO_POWER_MARGIN) * np.median(errors["scale"])
    return power if better else scale
