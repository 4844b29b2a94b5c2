"""Search strategies over any SearchSpace: random search, regularized evolution and Optuna TPE (plain
and predictor-guided), and a predictor-in-the-loop search, with oracles, latency constraints and a
resumable JSONL history. ``run_search`` is the entry point; ``nas-predictor search`` its CLI."""

from strategies.base import SearchContext, Strategy
from strategies.constraints import FunctionLatency, LatencyConstraint, PredictedLatency, TableLatency
from strategies.evolution import RegularizedEvolution
from strategies.history import SearchHistory
from strategies.oracle import FunctionOracle, NB101TableOracle, NB201TableOracle, Oracle, PredictorOracle
from strategies.predictor_search import PredictorSearch
from strategies.random_search import RandomSearch
from strategies.runner import make_strategy, pareto_front, run_search
from strategies.surrogates import FixedSurrogate, FunctionSurrogate, OnlineSurrogate, Surrogate
from strategies.tpe import TPESearch

__all__ = [
    "FixedSurrogate", "FunctionLatency", "FunctionOracle", "FunctionSurrogate", "LatencyConstraint",
    "NB101TableOracle", "NB201TableOracle", "OnlineSurrogate", "Oracle", "PredictedLatency", "PredictorOracle", "PredictorSearch",
    "RandomSearch", "RegularizedEvolution", "SearchContext", "SearchHistory", "Strategy", "Surrogate",
    "TPESearch", "TableLatency", "make_strategy", "pareto_front", "run_search",
]
