"""Latency constraints: candidates whose latency on a named device setting is over the bound are
rejected before they reach the oracle (and are never counted against the budget).

Two latency sources behind one interface:
- :class:`TableLatency`: the measured HELP latency of every NAS-Bench-201 network (27 settings: GPUs,
  CPUs, phones, an FPGA, ...), from the shared data;
- :class:`PredictedLatency`: a latency predictor (a shipped name such as ``latency-help-b1`` or a
  checkpoint) applied to each candidate's whole network, exported once and kept in the graph cache.
"""

from __future__ import annotations

import abc
import os
from typing import Sequence

import numpy as np

from nas_predictor.calibration import LatencyMap, fixed_latency_map
from nas_predictor.errors import ConfigError


class LatencySource(abc.ABC):
    setting: str
    kind: str  # "measured" or "predicted"

    @abc.abstractmethod
    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        """Latency (ms) of each architecture on ``self.setting``."""

    def describe(self) -> str:
        return f"{self.kind} latency on {self.setting}"


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
    """A latency predictor's estimate for each architecture's whole network, at the batch of ``setting``.

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

            fixed, self.calibration = fit_map_to_measurements(calibrate, self.predictor, self.setting, None,
                                                              calibrate_fit)
            self.setting = self.calibration["setting"]
        self.latency_map = fixed
        self.batch_size = parse_setting(self.setting)[1]
        self._memo: dict[str, float] = {}
        self._graphs: dict | None = None  # the graph cache, read once per search

    def latency_ms(self, archs: Sequence[str]) -> np.ndarray:
        from nas_predictor.data.latency_graphs import export_to_cache, load_cache
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
            for arch, ms in zip(todo, self.predictor.predict_latency(graphs, self.setting)):
                self._memo[arch] = float(self.latency_map.apply(ms))
        return np.array([self._memo[a] for a in archs], dtype=np.float64)

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

    def identity(self) -> dict:
        return {"setting": self.source.setting, "max_ms": self.max_ms, "source": self.source.describe()}
