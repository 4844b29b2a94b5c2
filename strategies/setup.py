"""Turn a SearchConfig into the pieces a search runs on (space, oracle, latency bound, surrogate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas_predictor.errors import ConfigError, DataError
from nas_predictor.spaces import get_space
from strategies.base import Strategy
from strategies.config import SearchConfig
from strategies.constraints import LatencyConstraint, PredictedLatency, TableLatency
from strategies.oracle import NB101TableOracle, NB201TableOracle, Oracle, PredictorOracle
from strategies.runner import make_strategy
from strategies.surrogates import FixedSurrogate, OnlineSurrogate, Surrogate


@dataclass
class SearchSetup:
    space: Any
    strategy: Strategy
    oracle: Oracle
    constraint: LatencyConstraint | None
    surrogate: Surrogate | None
    predictions_only: bool  # no real evaluation anywhere: every number shown is a prediction
    notes: list[str]


def _table_oracle(cfg: SearchConfig, data_dir: str | None) -> Oracle | None:
    if cfg.space == "nasbench101":
        if cfg.dataset != "cifar10":
            raise ConfigError("NAS-Bench-101 has CIFAR-10 accuracies only")
        if cfg.table_file is None and cfg.oracle != "table":
            return None  # the shared subset holds 292 of 423,624 cells: only when asked for
        return NB101TableOracle(cfg.table_file, data_dir)
    if cfg.space != "nasbench201":
        if cfg.oracle == "table":
            raise ConfigError(f"there is no accuracy table for {cfg.space}; pass a user oracle from Python")
        return None
    try:
        return NB201TableOracle(cfg.dataset, data_dir, cfg.table_file)
    except DataError:
        if cfg.oracle == "table":
            raise
        return None


def build_search(cfg: SearchConfig, data_dir: str | None = None, device: str = "cpu") -> SearchSetup:
    space = get_space(cfg.space)
    notes: list[str] = []
    try:
        strategy = make_strategy(cfg.strategy, guided=cfg.guided, **cfg.strategy_params)
    except TypeError as exc:
        raise ConfigError(f"strategy_params for {cfg.strategy}: {exc}") from None
    oracle: Oracle | None = None if cfg.oracle == "predictor" else _table_oracle(cfg, data_dir)
    if oracle is None:
        if cfg.space == "nasbench101":
            raise ConfigError("no shipped NAS-Bench-101 accuracy predictor: give the official table "
                              "(--table-file nasbench_only108.tfrecord), --oracle table for the shared 292-cell "
                              "subset, or search from Python with your own oracle")
        if cfg.space != "nasbench201":
            raise ConfigError(f"no shipped accuracy predictor for {cfg.space}; search it from Python with your oracle")
        oracle = PredictorOracle(cfg.predictor, device=device)
        if cfg.oracle == "auto":
            notes.append("no NAS-Bench-201 data found: searching the shipped predictor's predictions")
    constraint = None
    if cfg.max_latency_ms is not None:
        source = None
        # timings of the user's device mean the user's device: the predictor, rescaled, not HELP's table
        if cfg.latency_source in ("auto", "table") and cfg.space == "nasbench201" and cfg.latency_calibrate is None:
            try:
                source = TableLatency(cfg.latency_device, data_dir=data_dir)
            except DataError:
                if cfg.latency_source == "table":
                    raise
        if source is None:
            if cfg.latency_source == "table":
                raise ConfigError(f"no measured latency table for {cfg.space}")
            source = PredictedLatency(cfg.latency_predictor, cfg.space, cfg.latency_device, device=device,
                                      calibrate=cfg.latency_calibrate, calibrate_fit=cfg.latency_calibrate_fit)
        constraint = LatencyConstraint(source, cfg.max_latency_ms)
    surrogate: Surrogate | None = None
    if strategy.needs_surrogate:
        if isinstance(oracle, PredictorOracle) or cfg.surrogate == "pretrained":
            surrogate = FixedSurrogate(cfg.predictor, device=device)
        else:
            p = cfg.surrogate_params
            surrogate = OnlineSurrogate(cfg.space, refit_every=p.refit_every, min_points=p.min_points, steps=p.steps,
                                        seed=cfg.seed, ensemble=p.ensemble)
    predictions_only = isinstance(oracle, PredictorOracle)
    return SearchSetup(space, strategy, oracle, constraint, surrogate, predictions_only, notes)
