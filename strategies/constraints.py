"""Latency constraints: candidates whose latency on a named device setting is over the bound are
rejected before they reach the oracle (and are never counted against the budget).

Two latency sources behind one interface:
- :class:`TableLatency`: the measured HELP latency of every NAS-Bench-201 network (27 settings: GPUs,
  CPUs, phones, an FPGA, ...), from the shared data;
- :class:`PredictedLatency`: a latency predictor (a shipped name such as ``latency-help-b1`` or a
  checkpoint) applied to each candidate's whole network, exported once and kept in the graph cache.

A predicted latency is the estimate ``nas-predictor latency`` reports (``nas_predictor.latency_domain``):
the network's output where the candidate lies in the predictor's training domain, its FLOPs/memory
fallback where it does not, with the check's verdict kept per architecture (``confidence``), so a
search can say how many of its verdicts rest on an unsure estimate.
"""

from __future__ import annotations

import abc
import os
from typing import Sequence

import numpy as np

from nas_predictor.calibration import LatencyMap, fixed_latency_map
from nas_predictor.errors import ConfigError, DataError


class LatencySource(abc.ABC):
    setting: str
    kind: str  # "measured" or "predicted"

    @abc.abstractmethod
    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        """Latency (ms) of each architecture on ``self.setting``."""

    def describe(self) -> str:
        return f"{self.kind} latency on {self.setting}"

    def confidence(self, arch: str) -> dict | None:
        """How far to trust ``latency_ms([arch])``: None for a latency that is no prediction (a
        measurement, a function of the user's), else :func:`estimate_record`'s dict."""
        return None


def estimate_record(estimate, latency_map: LatencyMap, name: str) -> dict:
    """A ``nas_predictor.latency_domain.LatencyEstimate`` with every number mapped to the user's
    device: ``latency_ms`` (the reported estimate), ``source`` ("model" or "fallback": which one was
    reported), ``in_distribution`` (True / False / None: no domain summary to check against),
    ``reasons``, ``model_ms`` and ``fallback_ms`` (None without a domain summary). A mapped number
    that is not finite (a power law can overflow) is a DataError naming ``name``: never a number a
    bound is compared with."""
    def mapped(ms: float | None) -> float | None:
        with np.errstate(over="ignore"):  # an overflow is caught below, with the number's name
            return None if ms is None else float(latency_map.apply(ms))

    record = {"latency_ms": mapped(estimate.predicted_ms), "source": estimate.source,
              "in_distribution": estimate.in_distribution, "reasons": list(estimate.reasons),
              "model_ms": mapped(estimate.model_ms), "fallback_ms": mapped(estimate.fallback_ms)}
    broken = [k for k in ("latency_ms", "model_ms", "fallback_ms") if record[k] is not None
              and not np.isfinite(record[k])]
    if broken:
        raise DataError(f"{name}: the calibrated {broken[0]} is not finite ({record[broken[0]]})")
    return record


def is_unsure(confidence: dict | None) -> bool:
    """A verdict resting on a prediction outside the predictor's training domain (judged on its
    fallback) or one that could not be checked (a predictor saved without a domain summary)."""
    return confidence is not None and confidence["in_distribution"] is not True


class TableLatency(LatencySource):
    """Measured latency of NAS-Bench-201 networks (HELP's tables)."""

    kind = "measured"

    def __init__(self, setting: str, space: str = "nasbench201", data_dir: str | None = None) -> None:
        from nas_predictor.data.latency_tables import load_help_latency

        from search_spaces.nasbench201 import NASBench201

        if space != "nasbench201":
            raise ConfigError(f"measured latencies of every architecture exist only for nasbench201, not {space!r}; "
                              "use a latency predictor (--latency-predictor)")
        table = load_help_latency(space, setting, data_dir)
        self.setting = table.setting
        self.values = table.latency_ms
        self._space = NASBench201()
        self._row = {a: i for i, a in enumerate(table.archs)}

    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        return np.array([self.values[self._row[self._space.canonical(a)]] for a in archs], dtype=np.float64)

    def all_latencies(self, arch_order: Sequence[str]) -> np.ndarray:
        return self.latency_ms(arch_order)


class PredictedLatency(LatencySource):
    """A latency predictor's estimate for each architecture's whole network, at the batch of ``setting``:
    the number ``nas-predictor latency`` reports (the network's output in its training domain, the
    FLOPs/memory fallback outside it); :meth:`confidence` says which, and why.

    ``calibrate`` maps every estimate to the user's device: a number (one factor), a
    ``nas_predictor.calibration.LatencyMap``, or a file of a few networks timed on that device (the
    ``nas-predictor latency --calibrate`` format, see nas_predictor.data.latency_measurements) from
    which the map is fitted (``calibrate_fit``: "auto", "scale" or "power"); with a timings file,
    ``setting="nearest"`` uses the predictor's setting that fits them best. That is how a predictor
    trained on other devices, or on other network families, is carried to the user's device.
    """

    kind = "predicted"

    def __init__(self, predictor: str, space: str, setting: str | None = None, device: str = "cpu",
                 cache: str | None = None, calibrate: str | os.PathLike | float | LatencyMap | None = None,
                 calibrate_fit: str = "auto") -> None:
        from nas_predictor.data.latency_measurements import NEAREST
        from nas_predictor.data.latency_tables import parse_setting
        from nas_predictor.predictor import load_predictor

        self.predictor = load_predictor(predictor, device=device)
        self.name = predictor
        self.space = space
        self.setting = setting or self.predictor.default_setting
        fixed = fixed_latency_map(calibrate)
        if self.setting == NEAREST and fixed is not None:
            raise ConfigError("setting 'nearest' is chosen from timings of your device: give calibrate a timings file")
        if self.setting != NEAREST and self.setting not in self.predictor.settings:
            raise ConfigError(f"latency predictor {predictor!r} has no setting {self.setting!r}; "
                              f"it predicts {', '.join(self.predictor.settings)}")
        self.cache = cache
        self.calibration: dict | None = None
        if fixed is None:  # a timings file
            from nas_predictor.data.latency_measurements import fit_map_to_measurements

            # fitted on the numbers this source maps: the reported estimates (as the latency command)
            fixed, self.calibration = fit_map_to_measurements(calibrate, self.predictor, self.setting, None,
                                                              calibrate_fit, reported=True)
            self.setting = self.calibration["setting"]
        self.latency_map = fixed
        self.batch_size = parse_setting(self.setting)[1]
        self._memo: dict[str, dict] = {}  # arch -> estimate_record
        self._graphs: dict | None = None  # the graph cache, read once per search

    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        from nas_predictor.data.latency_graphs import export_to_cache, load_cache
        from nas_predictor.latency_domain import assess_latency
        from nas_predictor.onnx.rebatch import rebatch

        todo = list(dict.fromkeys(a for a in archs if a not in self._memo))
        if todo:
            if self._graphs is None:
                self._graphs = load_cache(self.space, self.cache)
            missing = [a for a in todo if a not in self._graphs]
            if missing:
                self._graphs.update(export_to_cache(self.space, missing, self.cache, progress=len(missing) > 20))
            # the cache holds batch-1 exports; a batch-32 setting is predicted on batch-32 graphs
            graphs = [self._graphs[a] if self.batch_size == 1 else rebatch(self._graphs[a], self.batch_size)
                      for a in todo]
            for arch, estimate in zip(todo, assess_latency(self.predictor, graphs, self.setting, todo)):
                self._memo[arch] = estimate_record(estimate, self.latency_map, arch)
        return np.array([self._memo[a]["latency_ms"] for a in archs], dtype=np.float64)

    def confidence(self, arch: str) -> dict:
        """:func:`estimate_record` of ``arch`` (predicted first if it has not been)."""
        if arch not in self._memo:
            self.latency_ms([arch])
        record = self._memo[arch]
        return {**record, "reasons": list(record["reasons"])}

    def describe(self) -> str:
        text = f"latency on {self.setting} predicted by {self.name}"
        if self.latency_map != LatencyMap(1.0):
            text += f", mapped {self.latency_map.describe()}"
            if self.calibration:
                text += f" (fitted to {self.calibration['num_measured']} timings in {self.calibration['file']})"
        return text

    @property
    def scale(self) -> float:
        return self.latency_map.scale


class FunctionLatency(LatencySource):
    """Any function ``list[arch] -> ms`` (a lookup table of your own, a measurement)."""

    kind = "user"

    def __init__(self, fn, setting: str = "custom") -> None:
        self.fn = fn
        self.setting = setting

    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        return np.asarray(self.fn(list(archs)), dtype=np.float64)


class LatencyConstraint:
    """latency(arch) <= max_ms, with every answer remembered (searches revisit architectures)."""

    def __init__(self, source: LatencySource, max_ms: float) -> None:
        if not max_ms > 0:
            raise ConfigError(f"the latency bound must be a positive number of ms, got {max_ms}")
        self.source = source
        self.max_ms = float(max_ms)
        self._memo: dict[str, float] = {}

    def latency(self, archs: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(a for a in archs if a not in self._memo))
        if todo:
            self._memo.update(zip(todo, map(float, self.source.latency_ms(todo))))
        return np.array([self._memo[a] for a in archs], dtype=np.float64)

    def feasible(self, archs: Sequence[str]) -> np.ndarray:
        return self.latency(archs) <= self.max_ms

    def confidence(self, arch: str) -> dict | None:
        """The source's confidence in ``arch``'s latency (None for a measured or user latency)."""
        return self.source.confidence(arch)

    def unsure(self) -> list[str]:
        """The architectures checked so far whose verdict rests on an unsure estimate (``is_unsure``):
        what a search summary counts next to the ones rejected."""
        return [a for a in self._memo if is_unsure(self.source.confidence(a))]

    def identity(self) -> dict:
        return {"setting": self.source.setting, "max_ms": self.max_ms, "source": self.source.describe()}
