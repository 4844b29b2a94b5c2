"""Fit an accuracy predictor in memory on the architectures a search has evaluated so far.

Predictor-based NAS refits its surrogate after every few evaluations (NPENAS, BANANAS), on tens to a
couple of hundred labelled cells, so the fit must take seconds: a small NAR-Former V2 (hidden 64, two
blocks, no dropout) trained for a fixed number of optimiser steps rather than epochs, so a refit costs
the same whether 10 or 200 cells are known. With so few labels there is no validation split to select
an epoch on: the last weights are kept (weight averaging smooths them). Everything else is the
training loop and tokenizer the offline predictors use (``nas_predictor.train``).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from nas_predictor.config import ExperimentConfig
from nas_predictor.encoding import CellTokenizer
from nas_predictor.errors import ConfigError
from nas_predictor.predictor import Predictor
from nas_predictor.spaces import get_space
from nas_predictor.train import class_variants, encode_cells, train_member

#: the online recipe: what differs from ExperimentConfig's defaults (the reference's offline recipe)
ONLINE_DEFAULTS: dict = {
    "name": "online",
    "model": {"hidden": 64, "num_blocks": 2, "dropout": 0.0},
    "train": {"batch_size": 16, "lr": 2e-3, "ema_decay": 0.99, "lambda_ac": 0.0},
}
#: optimiser steps per refit (epochs are derived from it and the number of labelled cells)
ONLINE_STEPS = 400


def online_config(overrides: dict | None = None) -> ExperimentConfig:
    """The online recipe with ``overrides`` (nested dicts, validated like a YAML config)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in ONLINE_DEFAULTS.items()}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    try:
        return ExperimentConfig.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(f"invalid online predictor settings: {exc}") from None


def fit_online(
    space: str, archs: Sequence[str], labels: Sequence[float], cfg: ExperimentConfig | None = None,
    seed: int = 0, steps: int = ONLINE_STEPS, device: str = "cpu",
) -> tuple[Predictor, float]:
    """(a predictor of ``labels`` (table units, e.g. percent) for cells of ``space``, fit seconds).

    ``steps`` optimiser steps at most; fewer than two distinct labels cannot be ranked and are refused.
    """
    cfg = cfg or online_config()
    labels = np.asarray(labels, dtype=np.float64)
    if len(archs) != len(labels):
        raise ConfigError(f"{len(archs)} architectures but {len(labels)} labels")
    if len(archs) < 2 or np.unique(labels[np.isfinite(labels)]).size < 2:
        raise ConfigError("an online predictor needs at least two evaluated architectures with different values")
    t0 = time.perf_counter()
    sp = get_space(space)
    graphs = [sp.to_graph(a) for a in archs]
    tokenizer = CellTokenizer(tuple(sp.op_vocab), cfg.encoding.num_freqs, cfg.encoding.variant)
    scale = cfg.data.label_scale
    data = encode_cells(tokenizer, graphs, labels * scale, "evaluated architectures")
    if cfg.train.equivalence_augment:
        pool = list(archs) + [m for m in dict.fromkeys(m for a in archs for m in sp.equivalent_archs(a))
                              if m not in set(archs)]
        pool_graphs = graphs + [sp.to_graph(m) for m in pool[len(archs):]]
        data.variants = class_variants(tokenizer, sp, pool, pool_graphs, np.arange(len(archs)))
    batch_size = min(cfg.train.batch_size, len(archs))
    epochs = max(1, math.ceil(steps / math.ceil(len(archs) / batch_size)))
    run_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={
        "epochs": epochs, "batch_size": max(2, batch_size), "seed": seed,
        # the last weights: with a handful of labels a validation split would cost more than it tells
        "select_tolerance": 0.999,
    })})
    member = train_member(run_cfg, data, data, seed, torch.device(device), progress=False, desc="refit")
    meta = {
        "name": cfg.name, "space": space, "task": "accuracy", "target": "search values",
        "label_scale": scale, "encoding": tokenizer.config(), "model": cfg.model.model_dump(),
        "experiment": run_cfg.model_dump(), "average_equivalent": cfg.predict.average_equivalent,
    }
    return Predictor(meta, [member.model], device=device), time.perf_counter() - t0
