"""One latency estimator: a latency predictor with its setting, batch and calibration resolved once, giving
each network's latency with its confidence. ``nas-predictor latency``, the search's ``PredictedLatency`` and
the NNI ``LatencyFilter`` all estimate through it.

Importing this module is cheap (no torch): the command line names its defaults from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nas_predictor.errors import ConfigError, DataError

if TYPE_CHECKING:
    from nas_predictor.calibration import LatencyMap
    from nas_predictor.graph import ArchGraph
    from nas_predictor.latency_domain import LatencyEstimate
    from nas_predictor.predictor import Predictor

#: what ``nas-predictor latency`` uses without --predictor: the shipped CPU (onnxruntime, one thread) predictor
DEFAULT_CLI_PREDICTOR = "latency-cpu-ort"
#: what a search's latency bound and the NNI ``LatencyFilter`` use: HELP's devices, the networks of NB201/FBNet/OFA
DEFAULT_SEARCH_PREDICTOR = "latency-help-b1"
#: a setting name: the predictor's setting that fits the user's timings best
NEAREST = "nearest"


@dataclass(frozen=True)
class EstimateRecord:
    """One network's estimate, every number mapped to the user's device: ``latency_ms`` (the reported
    estimate), ``source`` ("model" or "fallback": which one was reported), ``in_distribution`` (True /
    False / None: no domain summary to check against), ``reasons``, ``model_ms`` and ``fallback_ms``
    (None without a domain summary), and ``unscaled_ms``, the reported estimate before the map."""

    latency_ms: float
    source: str
    in_distribution: bool | None
    reasons: tuple[str, ...]
    model_ms: float
    fallback_ms: float | None
    unscaled_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The record as search constraints and the NNI filter keep it (their ``confidence``)."""
        return {"latency_ms": self.latency_ms, "source": self.source, "in_distribution": self.in_distribution,
                "reasons": list(self.reasons), "model_ms": self.model_ms, "fallback_ms": self.fallback_ms}


def check_calibrate(setting: str | None, calibrate: object) -> "LatencyMap | None":
    """The map ``calibrate`` names without timings (``nas_predictor.calibration.fixed_latency_map``), or None
    for a timings file; ``setting="nearest"`` without a timings file is a ConfigError."""
    from nas_predictor.calibration import fixed_latency_map

    fixed = fixed_latency_map(calibrate)
    if setting == NEAREST and fixed is not None:
        raise ConfigError("setting 'nearest' is the predictor setting that fits timings of your device best: "
                          "give calibrate a timings file (--calibrate TIMINGS)")
    return fixed


class LatencyEstimator:
    """A latency predictor on one setting, at one batch, mapped to the user's device.

    Build it with :meth:`create`, which resolves everything that can be wrong before any network is read:
    the predictor must predict latency, the setting must be one of its settings (``nearest``: the one
    that fits the timings best), a timings file is read and the map fitted. :meth:`estimate` then gives
    one :class:`EstimateRecord` per graph (``nas_predictor.latency_domain``'s check, mapped)."""

    def __init__(self, predictor: "Predictor", name: str, setting: str, batch_size: int, latency_map: "LatencyMap",
                 calibration: dict | None = None) -> None:
        self.predictor = predictor
        self.name = name
        self.setting = setting
        self.batch_size = batch_size
        self.latency_map = latency_map
        self.calibration = calibration  # what a timings file gave (the fit's record), else None

    @classmethod
    def create(cls, predictor: "str | os.PathLike | Predictor", setting: str | None = None, batch: int | None = None,
               calibrate: "str | os.PathLike | float | LatencyMap | None" = None, calibrate_fit: str = "auto",
               device: str = "auto", name: str | None = None) -> "LatencyEstimator":
        """``predictor``: a shipped name, a checkpoint or a loaded Predictor; ``setting``: default the
        predictor's own; ``batch``: the batch networks are read at (default: the batch the setting's
        latencies were measured at; also the batch of timed models whose entry names none);
        ``calibrate``: a factor, a ``LatencyMap`` or a timings file (see :func:`fit_map_to_measurements`)."""
        from nas_predictor.data.latency_tables import parse_setting
        from nas_predictor.predictor import Predictor, load_predictor

        if isinstance(predictor, Predictor):
            loaded, name = predictor, name or "predictor"
        else:
            loaded, name = load_predictor(predictor, device=device), name or str(predictor)
        if loaded.meta.get("task") != "latency":
            raise ConfigError(f"{name} is not a latency predictor (it predicts {loaded.meta.get('task')!r})")
        setting = setting or loaded.default_setting
        fixed = check_calibrate(setting, calibrate)
        if setting != NEAREST and setting not in loaded.settings:  # before any timings file is read
            raise ConfigError(f"latency predictor {name!r} has no setting {setting!r}; "
                              f"it predicts {', '.join(loaded.settings)}")
        calibration = None
        if fixed is None:  # a timings file: fitted on the numbers estimates report (outside the domain, the fallback)
            fixed, calibration = fit_map_to_measurements(calibrate, loaded, setting, batch, calibrate_fit,
                                                         reported=True)
            setting = calibration["setting"]
        return cls(loaded, name, setting, batch or parse_setting(setting)[1], fixed, calibration)

    def estimate(self, graphs: Sequence["ArchGraph"], names: Sequence[str]) -> list[EstimateRecord]:
        """Each graph's estimate (graphs read at the batch they are to be judged at); a mapped number that
        is not finite (a power law can overflow) is a DataError naming the network."""
        from nas_predictor.latency_domain import assess_latency

        return [self.record(e, n) for e, n in zip(assess_latency(self.predictor, graphs, self.setting, names), names)]

    def record(self, estimate: "LatencyEstimate", name: str) -> EstimateRecord:
        """``estimate`` with every number mapped to the user's device."""
        import numpy as np

        def mapped(ms: float | None) -> float | None:
            with np.errstate(over="ignore"):  # an overflow is caught below, with the number's name
                return None if ms is None else float(self.latency_map.apply(ms))

        values = {"latency_ms": mapped(estimate.predicted_ms), "model_ms": mapped(estimate.model_ms),
                  "fallback_ms": mapped(estimate.fallback_ms)}
        broken = [k for k, v in values.items() if v is not None and not np.isfinite(v)]
        if broken:  # never a number a bound is compared with, or one printed
            raise DataError(f"{name}: the calibrated {broken[0]} is not finite ({values[broken[0]]})")
        return EstimateRecord(values["latency_ms"], estimate.source, estimate.in_distribution,
                              tuple(estimate.reasons), values["model_ms"], values["fallback_ms"],
                              estimate.predicted_ms)

    def describe(self) -> str:
        """What a search history header records as its constraint's source (its wording is compared on resume)."""
        from nas_predictor.calibration import LatencyMap

        text = f"latency on {self.setting} predicted by {self.name}"
        if self.latency_map != LatencyMap(1.0):
            text += f", mapped {self.latency_map.describe()}"
            if self.calibration:
                text += f" (fitted to {self.calibration['num_measured']} timings in {self.calibration['file']})"
        return text


def fit_map_to_measurements(path: str | Path, predictor: Any, setting: str, batch_size: int | None = None,
                            fit: str = "auto", reported: bool = False) -> "tuple[LatencyMap, dict]":
    """The map from ``predictor``'s latencies on ``setting`` to the timings in ``path`` (one factor or a
    power law, see :func:`nas_predictor.calibration.fit_latency_map`), and a record of what it was fitted
    on (its ``setting`` key names the setting used). ``setting="nearest"`` tries every setting of the
    predictor and keeps the one whose mapped latencies fit the timings best (``choose_latency_map``).
    ``batch_size`` is the batch of models whose entry names none (default: the setting's own batch). A
    bad entry is a DataError, never a silently unmapped prediction.

    A map must be applied to the same kind of number it was fitted on. ``reported=True``: it is fitted
    to the latency reported for each timed model (``LatencyEstimate.predicted_ms`` of
    ``nas_predictor.latency_domain``: the fallback line for a model outside the predictor's training
    domain), for callers that report those (the estimator); ``False``: to the network's own outputs
    (``Predictor.predict_latency``), for callers that map those. Each timed model's record says which
    it was (``source``) and whether it lay in the training domain."""
    import numpy as np

    from nas_predictor.calibration import choose_latency_map
    from nas_predictor.data.latency_tables import parse_setting
    from nas_predictor.data.timings import read_timings
    from nas_predictor.latency_domain import assess_latency
    from nas_predictor.onnx import onnx_to_graph

    measured = read_timings(path)
    settings = list(predictor.settings) if setting == NEAREST else [setting]
    graphs: dict[int, list] = {}  # the timed models at each default batch the settings need
    estimates = []
    for name in settings:
        default = batch_size or parse_setting(name)[1]
        if default not in graphs:
            graphs[default] = [onnx_to_graph(m.model, batch_size=m.batch_size or default) for m in measured]
        estimates.append(assess_latency(predictor, graphs[default], name, [str(m.model) for m in measured]))
    columns = [[e.predicted_ms if reported else e.model_ms for e in column] for column in estimates]
    index, latency_map = choose_latency_map(np.array(columns).T, [m.ms for m in measured], fit)
    chosen = settings[index]
    default = batch_size or parse_setting(chosen)[1]
    return latency_map, {"file": str(path), "setting": chosen, **latency_map.to_dict(), "num_measured": len(measured),
                         "measured": [{"model": str(m.model), "measured_ms": m.ms,
                                       "predicted_ms": e.predicted_ms if reported else e.model_ms,
                                       "source": e.source if reported else "model",
                                       "in_distribution": e.in_distribution,
                                       "batch_size": m.batch_size or default}
                                      for m, e in zip(measured, estimates[index])]}
