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
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_predictor.errors import ConfigError

if TYPE_CHECKING:
    from nas_predictor.calibration import LatencyMap
    from nas_predictor.latency_estimator import LatencyEstimator


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
        measurement, a function of the user's), else ``EstimateRecord.as_dict()``
        (nas_predictor.latency_estimator)."""
        return None


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

    ``predictor``: a shipped name, a checkpoint, or a ``nas_predictor.latency_estimator.LatencyEstimator``
    already resolved (then ``setting``, ``device`` and ``calibrate`` are its own). ``calibrate`` maps every
    estimate to the user's device: a number (one factor), a ``nas_predictor.calibration.LatencyMap``, or a
    file of a few networks timed on that device (the ``nas-predictor latency --calibrate`` format, see
    nas_predictor.data.timings) from which the map is fitted (``calibrate_fit``: "auto", "scale" or
    "power"); with a timings file, ``setting="nearest"`` uses the predictor's setting that fits them best.
    That is how a predictor trained on other devices, or on other network families, is carried to the
    user's device.
    """

    kind = "predicted"

    def __init__(self, predictor: "str | LatencyEstimator", space: str, setting: str | None = None,
                 device: str = "cpu", cache: str | None = None,
                 calibrate: str | os.PathLike | float | LatencyMap | None = None, calibrate_fit: str = "auto") -> None:
        from nas_predictor.data.latency_tables import parse_setting
        from nas_predictor.latency_estimator import LatencyEstimator

        self.estimator = predictor if isinstance(predictor, LatencyEstimator) else LatencyEstimator.create(
            predictor, setting, calibrate=calibrate, calibrate_fit=calibrate_fit, device=device)
        self.predictor = self.estimator.predictor
        self.name = self.estimator.name
        self.space = space
        self.setting = self.estimator.setting
        self.cache = cache
        self.calibration: dict | None = self.estimator.calibration
        self.latency_map = self.estimator.latency_map
        # the batch the setting was measured at (an estimator made for exported models may hold another)
        self.batch_size = parse_setting(self.setting)[1]
        self._memo: dict[str, dict] = {}  # arch -> EstimateRecord.as_dict()
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
            for arch, record in zip(todo, self.estimator.estimate(graphs, todo)):
                self._memo[arch] = record.as_dict()
        return np.array([self._memo[a]["latency_ms"] for a in archs], dtype=np.float64)

    def confidence(self, arch: str) -> dict:
        """``EstimateRecord.as_dict()`` of ``arch`` (predicted first if it has not been)."""
        if arch not in self._memo:
            self.latency_ms([arch])
        record = self._memo[arch]
        return {**record, "reasons": list(record["reasons"])}

    def describe(self) -> str:
        return self.estimator.describe()

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
