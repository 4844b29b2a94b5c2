"""Search strategies over any SearchSpace: random search, regularized evolution and Optuna TPE (plain
and predictor-guided), and a predictor-in-the-loop search, with oracles, latency constraints and a
resumable JSONL history. ``run_search`` is the entry point; ``nas-predictor search`` its CLI."""

from __future__ import annotations

from nas_predictor.lazy import lazy_exports

# public name -> module, imported on first use (PEP 562): `nas-predictor --help` loads strategies.cli,
# and that must not import torch, scipy or optuna through this package
_LAZY = {
    "SearchContext": "strategies.base", "Strategy": "strategies.base",
    "FunctionLatency": "strategies.constraints", "LatencyConstraint": "strategies.constraints",
    "PredictedLatency": "strategies.constraints", "TableLatency": "strategies.constraints",
    "MeasuredLatency": "strategies.measured_latency",
    "RegularizedEvolution": "strategies.evolution", "SearchHistory": "strategies.history",
    "FunctionOracle": "strategies.oracle", "NB101TableOracle": "strategies.oracle",
    "NB201TableOracle": "strategies.oracle", "Oracle": "strategies.oracle", "PredictorOracle": "strategies.oracle",
    "PredictorSearch": "strategies.predictor_search", "RandomSearch": "strategies.random_search",
    "make_strategy": "strategies.runner", "pareto_front": "strategies.runner", "run_search": "strategies.runner",
    "FixedSurrogate": "strategies.surrogates", "FunctionSurrogate": "strategies.surrogates",
    "OnlineSurrogate": "strategies.surrogates", "Surrogate": "strategies.surrogates", "TPESearch": "strategies.tpe",
    "ProposalContext": "strategies.proposals", "propose": "strategies.proposals",
    "StrategySampler": "strategies.study", "run_worker": "strategies.study",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
