"""Assemble a search from a SearchConfig: the pieces it runs on (space, oracle, latency bound, surrogate).

Data the user named (``--data-dir``, ``$NAS_PREDICTOR_DATA``, ``--table-file``) is used, or the search
fails saying why; only when nothing is named and the default location (../shared/data) lacks the
benchmark does the search fall back to predictions, and it says so in a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from nas_predictor.data.paths import ENV_VAR, resolve_data_dir
from nas_predictor.errors import ConfigError, DataError
from nas_predictor.spaces import get_space
from strategies.base import Strategy
from strategies.config import SearchConfig
from strategies.constraints import LatencyConstraint, PredictedLatency, TableLatency
from strategies.measured_latency import MeasuredLatency
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


def _named(data_dir: str | None) -> str | None:
    """How the user named the data folder (for error messages), or None for the implicit default."""
    if data_dir is not None:
        return f"--data-dir {data_dir!r}"
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}={os.environ[ENV_VAR]!r}"
    return None


def _default_lacks(relative: str) -> bool:
    """Whether the implicit default data folder is absent or lacks ``relative`` (then silence is right)."""
    try:
        return not (resolve_data_dir(None) / relative).exists()
    except DataError:
        return True


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
    from nas_predictor.data.nb201 import NB201_CSV

    named = "--table-file" if cfg.table_file is not None else _named(data_dir)
    if named is None and cfg.oracle == "auto" and _default_lacks(str(NB201_CSV)):
        return None
    try:
        return NB201TableOracle(cfg.dataset, data_dir, cfg.table_file)
    except DataError as err:
        if named is not None:
            raise DataError(f"cannot use the NAS-Bench-201 data you named ({named}): {err}") from None
        raise


def _latency_table(cfg: SearchConfig, data_dir: str | None, notes: list[str]) -> TableLatency | None:
    """HELP's measured NB201 latencies for the bound, or None where the predictor stands in: the default
    data folder lacks them, or (latency_source auto) HELP never measured the setting."""
    from nas_predictor.data.latency_tables import HELP_FOLDERS, canonical_setting, help_settings

    named = _named(data_dir)
    if named is None and cfg.latency_source == "auto" and _default_lacks(HELP_FOLDERS["nasbench201"]):
        return None
    try:
        settings = help_settings("nasbench201", data_dir)
    except DataError as err:
        raise DataError(f"cannot use the latency data you named ({named}): {err}" if named else str(err)) from None
    if cfg.latency_source == "auto" and canonical_setting(cfg.latency_setting) not in settings:
        notes.append(f"HELP measured no NAS-Bench-201 latency on {cfg.latency_setting!r}: the bound uses the "
                     f"predictor {cfg.latency_predictor}")
        return None
    try:
        return TableLatency(cfg.latency_setting, data_dir=data_dir)
    except DataError as err:
        raise DataError(f"cannot use the latency data you named ({named}): {err}" if named else str(err)) from None


def assemble_search(cfg: SearchConfig, data_dir: str | None = None, device: str = "cpu",
                    progress: bool = True) -> SearchSetup:
    """The space, strategy, oracle, latency bound and surrogate ``cfg`` names, with notes on what stood in;
    ``progress``: progress bars of the pieces that show one (measuring latencies)."""
    space = get_space(cfg.space)
    notes: list[str] = []
    named = _named(data_dir)
    if named is not None:  # a folder the user named that is not there fails whatever reads it (or nothing)
        try:
            resolve_data_dir(data_dir)
        except DataError as err:
            raise DataError(f"cannot use the benchmark data you named: {err}") from None
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
        if cfg.latency_source == "measured":
            source = MeasuredLatency(cfg.space, progress=progress)
        # timings of the user's device mean the user's device: the predictor, rescaled, not HELP's table
        elif cfg.latency_source in ("auto", "table") and cfg.space == "nasbench201" and cfg.latency_calibrate is None:
            source = _latency_table(cfg, data_dir, notes)
        if source is None:
            if cfg.latency_source == "table":
                raise ConfigError(f"no measured latency table for {cfg.space}")
            source = PredictedLatency(cfg.latency_predictor, cfg.space, cfg.latency_setting, device=device,
                                      calibrate=cfg.latency_calibrate, calibrate_fit=cfg.latency_calibrate_fit)
        constraint = LatencyConstraint(source, cfg.max_latency_ms)
    surrogate: Surrogate | None = None
    if strategy.needs_surrogate:
        if isinstance(oracle, PredictorOracle) or cfg.surrogate == "pretrained":
            surrogate = FixedSurrogate(cfg.predictor, device=device)
        else:
            p = cfg.surrogate_params
            surrogate = OnlineSurrogate(cfg.space, refit_every=p.refit_every, min_points=p.min_points, steps=p.steps,
                                        seed=cfg.seed, ensemble=p.ensemble,
                                        overrides={"encoding": {"proxies": p.proxies}} if p.proxies else None)
    predictions_only = isinstance(oracle, PredictorOracle)
    return SearchSetup(space, strategy, oracle, constraint, surrogate, predictions_only, notes)
