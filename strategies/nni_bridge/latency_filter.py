"""A latency bound for any NNI strategy: ``Chain(RegularizedEvolution(), Filter(LatencyFilter(...)))``.

NNI's ``Filter`` middleware asks ``filter_fn(model)`` before a model reaches the engine; a model it
rejects never runs (the strategy sees it end as ``Invalid``, with no metric) and costs no trial.
:class:`LatencyFilter` is that function: it passes a model when its latency is within ``max_ms``.

Where the latency comes from:

- a space we know (NAS-Bench-201 / NAS-Bench-101 labels, see :mod:`.mapping`): the model's sample is
  mapped to our arch string and looked up in ``latency``, any ``strategies.constraints`` source:
  ``TableLatency("pixel3")`` (HELP's measured NAS-Bench-201 latencies), ``PredictedLatency(...)``;
  by default our latency predictor on the arch's whole network;
- any other space: the frozen model itself (``model.executable_model()``, a PyTorch module) is exported
  to ONNX at ``input_shape`` and our latency predictor (``predictor``, ``setting``) reads that graph.
  Such a space must be executable (a PyTorch ``ModelSpace``, not a ``BenchmarkModelSpace``). The
  shipped ``latency-help-b1`` was trained on NAS-Bench-201, FBNet and OFA-MobileNetV3 networks; other
  networks are outside what it has seen.

A predicted latency is the estimate ``nas-predictor latency`` reports: the network's output where the
model lies in the predictor's training domain, its FLOPs/memory fallback where it does not
(``nas_predictor.latency_domain``). Every answer is remembered (per sample), and
:attr:`LatencyFilter.history` keeps what was checked, each verdict with its estimate's confidence;
:meth:`LatencyFilter.summary` counts the verdicts that rest on an unsure estimate.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

from strategies.nni_bridge import require_nni

require_nni()

from nni.nas.strategy.middleware import Filter  # noqa: E402

from nas_predictor.calibration import LatencyMap  # noqa: E402
from nas_predictor.errors import ConfigError  # noqa: E402
from nas_predictor.latency_estimator import DEFAULT_SEARCH_PREDICTOR as DEFAULT_PREDICTOR  # noqa: E402
from nas_predictor.latency_estimator import LatencyEstimator, check_calibrate  # noqa: E402
from strategies.constraints import LatencyConstraint, LatencySource, PredictedLatency, is_unsure  # noqa: E402
from strategies.nni_bridge.mapping import mapping_for_sample  # noqa: E402


def _key(sample: dict) -> str:
    return json.dumps(sample, sort_keys=True, default=str)


class LatencyFilter:
    """``filter_fn`` for NNI's ``Filter``: True when a model's latency is at most ``max_ms``.

    Parameters
    ----------
    max_ms
        The bound (ms).
    latency
        The latency of arch strings of a known space (a ``strategies.constraints.LatencySource``);
        default: ``predictor`` on ``setting``, on the arch's whole network.
    predictor, setting
        Our latency predictor (a shipped name or a checkpoint) and the device setting it predicts, for
        the default ``latency`` and for models of other spaces; default setting: the predictor's own.
    input_shape
        The input the frozen model of an unknown space is exported at, e.g. ``(1, 3, 32, 32)``.
    use_sample
        False: always export the frozen model, even for a known space.
    calibrate, calibrate_fit
        Map the predictor's latencies to your device: a number (one factor), a ``LatencyMap``, or a
        file of a few networks timed on your device (``nas-predictor measure --json`` output, or a CSV
        of ``model,ms[,batch]``) from which the map is fitted (``calibrate_fit``: "auto", "scale" or
        "power"), as ``nas-predictor latency --calibrate`` does; with a file, ``setting="nearest"``
        uses the predictor's setting that fits the timings best. Only for the predictor; a
        ``latency`` source of your own is used as given.
    """

    def __init__(self, max_ms: float, latency: LatencySource | None = None, *, predictor: str = DEFAULT_PREDICTOR,
                 setting: str | None = None, input_shape: Sequence[int] | None = None, use_sample: bool = True,
                 device: str = "cpu", calibrate: str | os.PathLike | float | LatencyMap | None = None,
                 calibrate_fit: str = "auto") -> None:
        if not max_ms > 0:
            raise ConfigError(f"the latency bound must be a positive number of ms, got {max_ms}")
        if latency is not None and not isinstance(latency, LatencySource):
            raise ConfigError(f"latency must be a strategies.constraints LatencySource, got {type(latency).__name__}")
        if latency is not None and calibrate is not None:
            raise ConfigError("calibrate rescales the latency predictor; a latency source of your own is used as "
                              "given (rescale it yourself, or drop latency= to use the predictor)")
        self.max_ms = float(max_ms)
        self.latency = latency
        self.predictor_name = predictor
        self.setting = setting
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
        self.use_sample = use_sample
        self.device = device
        self.history: list[dict[str, Any]] = []
        self._memo: dict[str, tuple[float, dict | None]] = {}  # sample -> (ms, confidence)
        self._sources: dict[str, LatencySource] = {}
        self.calibrate = calibrate
        self.calibrate_fit = calibrate_fit
        self.calibration: dict | None = None  # what a timings file gave, once fitted
        # checked now, though the estimator (which loads the predictor and fits a timings file) waits for first use
        self._map: LatencyMap | None = check_calibrate(setting, calibrate)  # None: a timings file
        self._estimator: LatencyEstimator | None = None

    def __repr__(self) -> str:
        return f"LatencyFilter(max_ms={self.max_ms}, source={self.describe()!r})"

    def describe(self) -> str:
        if self.latency is not None:
            return self.latency.describe()
        text = f"latency on {self.setting or 'its default setting'} predicted by {self.predictor_name}"
        if self._map is not None and self._map != LatencyMap(1.0):
            text += f", mapped {self._map.describe()}"
        if isinstance(self.calibrate, (str, os.PathLike)):
            text += f", rescaled to the timings in {self.calibrate}"
        return text

    def estimator(self) -> LatencyEstimator:
        """The one estimator behind every predicted latency of this filter, made on first use (that loads the
        predictor and, for a timings file, fits the map and resolves ``setting="nearest"``)."""
        if self._estimator is None:
            batch = self.input_shape[0] if self.input_shape else None  # None: the setting's own batch
            self._estimator = LatencyEstimator.create(self.predictor_name, self.setting, batch,
                                                      calibrate=self.calibrate if self._map is None else self._map,
                                                      calibrate_fit=self.calibrate_fit, device=self.device)
            self._map, self.calibration = self._estimator.latency_map, self._estimator.calibration
            self.setting = self._estimator.setting  # "nearest" resolved
        return self._estimator

    def latency_map(self) -> LatencyMap:
        """The map applied to every predicted latency (identity without ``calibrate``)."""
        return self.estimator().latency_map

    # -- the latency of a model --------------------------------------------------------------------
    def source_for(self, space_name: str) -> LatencySource:
        """The latency source of arch strings of one of our spaces."""
        if self.latency is not None:
            return self.latency
        if space_name not in self._sources:
            self._sources[space_name] = PredictedLatency(self.estimator(), space_name)
        return self._sources[space_name]

    def as_constraint(self, space_name: str) -> LatencyConstraint:
        """The same bound over arch strings (what ``PredictorGuidedStrategy(constraint=...)`` uses)."""
        return LatencyConstraint(self.source_for(space_name), self.max_ms)

    def exported_latency(self, module: Any) -> float:
        """Our predictor's latency for a PyTorch module, exported to ONNX at ``input_shape``."""
        return self.exported_estimate(module)["latency_ms"]

    def exported_estimate(self, module: Any) -> dict:
        """The estimate (``EstimateRecord.as_dict()``) of a PyTorch module exported to ONNX at
        ``input_shape``: the reported latency with its in-distribution check and fallback."""
        if self.input_shape is None:
            raise ConfigError("a model of a space this bridge does not know is exported to ONNX for its latency: "
                              "give LatencyFilter(..., input_shape=(1, 3, H, W))")
        from nas_predictor.onnx import onnx_to_graph
        from nas_predictor.onnx.export import export_onnx

        graph = onnx_to_graph(export_onnx(module, self.input_shape))
        name = f"{type(module).__name__} exported at {self.input_shape}"
        [record] = self.estimator().estimate([graph], [name])
        return record.as_dict()

    def latency_of(self, model: Any) -> tuple[float, str | None]:
        """(latency ms, arch string or None) of a frozen NNI model."""
        ms, arch, _ = self._judge(model)
        return ms, arch

    def confidence(self, model: Any) -> dict | None:
        """How far to trust a frozen model's latency: ``EstimateRecord.as_dict()`` for a predicted one
        (``in_distribution``, ``reasons``, ``source``, ``model_ms``, ``fallback_ms``), None for a
        latency source that makes no prediction (a measured table, a function of yours)."""
        return self._judge(model)[2]

    def _judge(self, model: Any) -> tuple[float, str | None, dict | None]:
        sample = getattr(model, "sample", None)
        mapping = mapping_for_sample(sample) if (sample is not None and self.use_sample) else None
        arch = mapping.to_arch(sample) if mapping is not None else None
        key = _key(sample) if sample is not None else None
        if key is not None and key in self._memo:
            ms, confidence = self._memo[key]
            return ms, arch, confidence
        if mapping is not None:
            source = self.source_for(mapping.space_name)
            ms = float(source.latency_ms([arch])[0])
            confidence = source.confidence(arch)
        elif self.latency is not None and sample is not None:
            # any other model space with a source of yours over its ids (measured latency of its NNISpace,
            # say): the sample's id in that space, from the model space's own mutables
            from search_spaces.nni_space import sample_id
            from strategies.nni_bridge.space import dimensions

            arch = sample_id(dimensions(model), sample)
            ms = float(self.latency.latency_ms([arch])[0])
            confidence = self.latency.confidence(arch)
        else:
            try:
                module = model.executable_model()
            except RuntimeError as exc:
                raise ConfigError(f"cannot export {type(model).__name__} to ONNX for its latency ({exc}); its "
                                  "labels are no space this bridge knows") from None
            confidence = self.exported_estimate(module)
            ms = confidence["latency_ms"]
        if key is not None:
            self._memo[key] = (ms, confidence)
        return ms, arch, confidence

    # -- what Filter calls -------------------------------------------------------------------------
    def __call__(self, model: Any) -> bool:
        ms, arch, confidence = self._judge(model)
        ok = ms <= self.max_ms
        source = getattr(self.latency, "kind", "user") if confidence is None else confidence["source"]
        self.history.append({"sample": dict(model.sample) if getattr(model, "sample", None) else None,
                             "arch": arch, "latency_ms": ms, "passed": bool(ok), "source": source,
                             "in_distribution": None if confidence is None else confidence["in_distribution"],
                             "reasons": [] if confidence is None else list(confidence["reasons"]),
                             "fallback_ms": None if confidence is None else confidence["fallback_ms"],
                             "unsure": is_unsure(confidence)})
        return bool(ok)

    @property
    def checked(self) -> int:
        return len(self.history)

    @property
    def rejected(self) -> int:
        return sum(not h["passed"] for h in self.history)

    @property
    def unsure(self) -> int:
        """Verdicts resting on an estimate outside the predictor's training domain or unchecked."""
        return sum(h["unsure"] for h in self.history)

    def summary(self) -> dict[str, Any]:
        """What the filter did, as counts (JSON-ready): every check, and how many verdicts rest on an
        out-of-distribution estimate (judged on the FLOPs/memory fallback) or an unchecked one (a
        predictor without a training-domain summary); each one's reasons are in :attr:`history`."""
        unsure = [h for h in self.history if h["unsure"]]
        return {"source": self.describe(), "max_ms": self.max_ms, "checked": self.checked,
                "passed": self.checked - self.rejected, "rejected": self.rejected,
                "unsure": len(unsure), "out_of_distribution": sum(h["in_distribution"] is False for h in unsure),
                "unchecked": sum(h["in_distribution"] is None for h in unsure),
                "unsure_passed": sum(h["passed"] for h in unsure),
                "unsure_rejected": sum(not h["passed"] for h in unsure)}


def latency_filter_middleware(max_ms: float, latency: LatencySource | None = None, *, patience: int = 1000,
                   retain_history: bool = True, **kwargs: Any) -> Filter:
    """NNI's ``Filter`` middleware around a :class:`LatencyFilter` (``.filter_fn``); ``patience`` rejected
    models in a row end the search, as in ``Filter``."""
    return Filter(LatencyFilter(max_ms, latency, **kwargs), patience=patience, retain_history=retain_history)
