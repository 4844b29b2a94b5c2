"""Our predictor-guided search, latency bound and benchmark tables inside NNI 3.0 (``pip install
"nas-predictor[nni]"``).

- :class:`PredictorGuidedStrategy`: an NNI ``Strategy`` that runs our search (the predictor-in-the-loop
  search by default, any ``strategies`` strategy on request) through NNI's execution engine, on any
  model space: each architecture it picks is frozen from the model space, submitted to the engine and
  scored by the experiment's evaluator.
- :func:`nni_space`: any NNI model space as one of our search spaces (whole networks, exported at an
  input shape), for ``strategies.run_search`` or the strategy above.
- :class:`LatencyFilter` / :func:`latency_filter_middleware`: for ``Chain(strategy, Filter(...))``; rejects models
  whose latency (a table or our predictor, from the sample of a known space; our predictor on the
  frozen model's ONNX export otherwise) breaks a bound, before they cost a trial.
- ``NB201TableBenchmark`` / ``NB101TableBenchmark`` (the real accuracies of our data) and
  ``NB201PredictorBenchmark`` / ``NB101PredictorBenchmark`` (our predictors): ``BenchmarkEvaluator``
  subclasses for ``BenchmarkModelSpace`` or any model space of those spaces.
- :func:`patient_launcher`: NNI's launcher waits longer for its manager (a training service on a busy
  machine).
- :mod:`strategies.nni_bridge.mapping`: NNI samples <-> our arch strings (needs no NNI).

Importing this package needs no NNI; its NNI pieces raise an ImportError naming the extra without it.
"""

from __future__ import annotations

import importlib
from typing import Any

INSTALL_HINT = 'pip install "nas-predictor[nni]"'

_LAZY = {
    "PredictorGuidedStrategy": "strategies.nni_bridge.strategy",
    "LatencyFilter": "strategies.nni_bridge.latency_filter",
    "latency_filter_middleware": "strategies.nni_bridge.latency_filter",
    "NB201TableBenchmark": "strategies.nni_bridge.evaluators",
    "NB101TableBenchmark": "strategies.nni_bridge.evaluators",
    "NB201PredictorBenchmark": "strategies.nni_bridge.evaluators",
    "NB101PredictorBenchmark": "strategies.nni_bridge.evaluators",
    "current_arch": "strategies.nni_bridge.evaluators",
    "nni_space": "strategies.nni_bridge.space",
    "patient_launcher": "strategies.nni_bridge.launch",
    "SampleMapping": "strategies.nni_bridge.mapping",
    "NetworkMapping": "strategies.nni_bridge.mapping",
    "nb201_sample_to_arch": "strategies.nni_bridge.mapping",
    "nb201_arch_to_sample": "strategies.nni_bridge.mapping",
    "nb101_sample_to_arch": "strategies.nni_bridge.mapping",
    "nb101_arch_to_sample": "strategies.nni_bridge.mapping",
}

__all__ = ["INSTALL_HINT", "require_nni", *_LAZY]


def require_nni() -> Any:
    """The ``nni`` module, or an ImportError that says how to install it (with the pins NNI 3.0 needs)."""
    try:
        import nni
        import nni.nas.strategy  # noqa: F401  (fails where a dependency NNI does not declare is missing)
    except ImportError as exc:
        raise ImportError(
            f"the NNI integration needs NNI 3.0 and the packages it uses but does not declare: {INSTALL_HINT} "
            f"(nni==3.0, pytorch-lightning, torchmetrics, peewee<4, setuptools<81); import failed: {exc}"
        ) from exc
    return nni


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
