"""Fit an accuracy predictor in memory on the architectures a search has evaluated so far.

Predictor-based NAS refits its surrogate after every few evaluations (NPENAS, BANANAS), on tens to a
couple of hundred labelled cells, so the fit must take seconds: a small NAR-Former V2 (hidden 64, two
blocks, no dropout) trained for a fixed number of optimiser steps rather than epochs, so a refit costs
the same whether 10 or 200 cells are known. With so few labels there is no validation split to select
an epoch on: the last weights are kept (weight averaging smooths them). Everything else is the
training loop and tokenizer the offline predictors use (``nas_predictor.train``).

Cell spaces (NAS-Bench-101/201) are read with the cell tokenizer on the space's op vocabulary. Spaces
whose graphs are whole networks (ONNX exports: FBNet, OFA, any ``PythonSpace``; see
:func:`whole_network_space`) are read with the whole-network tokenizer the latency predictors use
(:data:`NETWORK_ENCODING`) by the same small model, with the changes of :data:`ONLINE_NETWORK_DEFAULTS`:
a network has tens to hundreds of nodes where a cell has eight, and a refit's cost is per node.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch

from nas_predictor.config import ExperimentConfig
from nas_predictor.encoding import CellTokenizer
from nas_predictor.errors import ConfigError
from nas_predictor.graph import ArchGraph
from nas_predictor.latency_config import NetworkEncodingConfig
from nas_predictor.model_config import ModelConfig
from nas_predictor.network_encoding import LazyGraphBatch, NetworkTokenizer
from nas_predictor.predictor import Predictor
from nas_predictor.proxy_features import SCALAR_PREFIX, ProxyScaler
from nas_predictor.zero_cost_store import attach_proxies
from nas_predictor.spaces import get_space
from nas_predictor.train import class_variants, encode_cells, train_member
from nas_predictor.train_data import CellData, check_labels

#: the online recipe: what differs from ExperimentConfig's defaults (the reference's offline recipe)
ONLINE_DEFAULTS: dict = {
    "name": "online",
    "model": {"hidden": 64, "num_blocks": 2, "dropout": 0.0},
    "train": {"batch_size": 16, "lr": 2e-3, "ema_decay": 0.99, "lambda_ac": 0.0},
}
#: optimiser steps per refit (epochs are derived from it and the number of labelled cells)
ONLINE_STEPS = 400
# What the recipe changes for whole networks. Measured on 100 FBNet networks (~140 nodes each once BN
# is folded), a made-up target of their parameters and 5x5 kernels, tau on 50 others, one CPU thread:
# - batch_size 8: 400 steps of 8 networks ranked as well as of 16 (tau 0.79-0.80 over seeds 0-2, and
#   0.80) in half the time (11-13 s of CPU against 26 s, on a shared core); 300 steps of 8 fell to
#   0.72-0.75, 400 of 4 to 0.72.
# - init_output_bias: the output starts at the mean label, as in the latency recipes; without it the
#   few hundred steps went into finding the label's level and the ranking stayed near chance (tau 0.10).
ONLINE_NETWORK_DEFAULTS: dict = {"train": {"batch_size": 8, "init_output_bias": True}}
#: tokens of whole networks: the latency predictors' extended layout with each node's FLOPs and memory
#: traffic (a layer's size is its capacity, which accuracy follows too), read with each BatchNormalization
#: folded into its Conv (runtime_fusion.py): FBNet exports have a third fewer nodes (195 -> 134 on
#: average) and OFA's a seventh, so as much less work per step, and FBNet ranked better (batch 16: tau
#: 0.80 against 0.72). Left out: channel alignment (a CPU kernel effect), op groups (for op types unseen
#: in training) and op latencies (a device's). Stacked sums (``torch.stack(xs).sum(0)``) are read as one Add
#: (stacked_sums.py): the hub's NasBench201 read as a whole network has 156 nodes instead of 306 once BN is
#: folded, and a refit's cost is per node (benchmarks/online_refit_speed.py times it on these networks).
#: Scalar constant operands (its "none" op is ``x.mul(0.)``) lose their source node (scalar_inputs.py),
#: 15 more of those 156. The model's first block reads only the token columns the training networks use
#: (network_model_config): 112 of 192 on those networks, the other 80 are zero in all of them.
NETWORK_ENCODING = NetworkEncodingConfig(layout="extended", node_costs=True, fold_batchnorm=True,
                                         merge_stacked_sums=True, drop_scalar_inputs=True)


def whole_network_space(space: Any) -> bool:
    """Whether ``space``'s graphs are whole networks (ONNX exports) rather than cells: the space says so
    (``whole_network = True``: FBNet and OFA keep an op vocabulary of ONNX types for the contract
    suite, so the vocabulary alone cannot tell), or it has no cell op vocabulary at all (a
    ``PythonSpace``), so cell tokens could not be made."""
    return bool(getattr(space, "whole_network", False)) or not tuple(space.op_vocab)


def online_config(overrides: dict | None = None, whole_network: bool = False) -> ExperimentConfig:
    """The online recipe (for whole networks: with ONLINE_NETWORK_DEFAULTS) with ``overrides`` (nested
    dicts, validated like a YAML config)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in ONLINE_DEFAULTS.items()}
    for changes in (ONLINE_NETWORK_DEFAULTS if whole_network else {}, overrides or {}):
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
    try:
        return ExperimentConfig.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(f"invalid online predictor settings: {exc}") from None


def network_model_config(cfg: ExperimentConfig, tokenizer: NetworkTokenizer,
                         used_columns: Sequence[int] | None = None) -> ModelConfig:
    """The online recipe's model (``cfg.model``: its size, depth, dropout, output) sized for whole-network
    tokens, with the cell models' readout: each block's nodes mean-pooled, the blocks fused.
    ``used_columns``: the token columns that are non-zero in some training network; the first block reads
    only those (model.input_columns) when there are fewer than all. A column zero in every training
    network would keep the random weights it started with, and a network predicted later with a value
    there (an op type none of them had) would be read through that noise; without it the first block's
    attention and linears, which grow with its width squared, cost a whole-network refit a third less.

    Not the latency models' ``sum`` readout with static features (FLOPs, parameters), which on tiny
    networks ranked a little better (tau 0.96 against 0.93 on tests/nas_predictor/test_online_networks.py's
    10-node CNNs) but on real ones could not be fit in a refit's steps: summed over ~140 FBNet nodes the
    head's inputs are large, and 100 networks ranked 50 others at tau 0.64 against 0.79 (same recipe,
    batch 8, 400 steps); each node's token already holds its own FLOPs and memory traffic (node_costs).
    """
    columns = None
    if used_columns is not None and 0 < len(used_columns) < tokenizer.token_dim:
        columns = list(used_columns)
    try:
        return ModelConfig.model_validate({**cfg.model.model_dump(), "input_dim": tokenizer.token_dim,
                                           "input_columns": columns})
    except ValueError as exc:
        raise ConfigError(f"invalid online predictor settings for whole networks: {exc}") from None


def fit_online(
    space: str, archs: Sequence[str], labels: Sequence[float], cfg: ExperimentConfig | None = None,
    seed: int = 0, steps: int = ONLINE_STEPS, device: str = "cpu", graphs: Sequence[ArchGraph] | None = None,
    proxy_scaler: ProxyScaler | None = None,
) -> tuple[Predictor, float]:
    """(a predictor of ``labels`` (table units, e.g. percent) for architectures of ``space``, fit seconds).

    ``steps`` optimiser steps at most; fewer than two distinct labels cannot be ranked and are refused.
    ``graphs``: the archs' graphs when the caller has them (a search keeps its evaluated networks', whose
    exports take 0.05-1 s each), else ``space.to_graph``. With ``cfg.encoding.proxies`` (cell spaces) the
    model also reads the cells' zero-cost proxies (attached to graphs that lack them), scaled by
    ``proxy_scaler`` (a search keeps one for all its refits, so candidates' tokens stay valid) or, without
    one, by a scaler fitted on these cells.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if len(archs) != len(labels):
        raise ConfigError(f"{len(archs)} architectures but {len(labels)} labels")
    if graphs is not None and len(graphs) != len(archs):
        raise ConfigError(f"{len(archs)} architectures but {len(graphs)} graphs")
    if len(archs) < 2 or np.unique(labels[np.isfinite(labels)]).size < 2:
        raise ConfigError("an online predictor needs at least two evaluated architectures with different values")
    t0 = time.perf_counter()
    sp = get_space(space)
    cfg = cfg or online_config(whole_network=whole_network_space(sp))
    if whole_network_space(sp):
        return _fit_networks(space, sp, archs, labels, cfg, seed, steps, device, graphs, t0)
    graphs = list(graphs) if graphs is not None else [sp.to_graph(a) for a in archs]
    names = cfg.encoding.proxies
    if names:
        graphs = _with_proxies(sp, archs, graphs, cfg)
        proxy_scaler = proxy_scaler or ProxyScaler.fit(names, graphs, batch_size=cfg.encoding.proxy_batch_size)
    tokenizer = CellTokenizer(tuple(sp.op_vocab), cfg.encoding.num_freqs, cfg.encoding.variant,
                              proxy_scaler.config() if names else None)
    scale = cfg.data.label_scale
    data = encode_cells(tokenizer, graphs, labels * scale, "evaluated architectures")
    if cfg.train.equivalence_augment:
        pool = list(archs) + [m for m in dict.fromkeys(m for a in archs for m in sp.equivalent_archs(a))
                              if m not in set(archs)]
        pool_graphs = graphs + [sp.to_graph(m) for m in pool[len(archs):]]
        if names:
            pool_graphs = graphs + _with_proxies(sp, pool[len(archs):], pool_graphs[len(archs):], cfg)
        data.variants = class_variants(tokenizer, sp, pool, pool_graphs, np.arange(len(archs)))
    return _fit(space, cfg, cfg, tokenizer, data, data, seed, steps, device, t0)


def _with_proxies(sp: Any, archs: Sequence[str], graphs: Sequence[ArchGraph], cfg: ExperimentConfig) -> list[ArchGraph]:
    """``graphs`` with their cells' zero-cost proxies (those that carry them already kept as they are)."""
    key = SCALAR_PREFIX + cfg.encoding.proxies[0]
    todo = [i for i, g in enumerate(graphs) if key not in g.scalars]
    out = list(graphs)
    if todo:
        attached = attach_proxies(sp, [archs[i] for i in todo], [graphs[i] for i in todo],
                                  batch_size=cfg.encoding.proxy_batch_size)
        for i, g in zip(todo, attached):
            out[i] = g
    return out


def proxies_on_networks(space: str) -> ConfigError:
    """The error for zero-cost proxies asked of a whole-network space's online predictor."""
    return ConfigError(f"encoding.proxies: the online surrogate reads zero-cost proxies for cell spaces "
                       f"(NAS-Bench-101/201); space {space!r} describes whole networks, whose tokens already "
                       "hold each operator's FLOPs and memory traffic: leave it out")


def _fit_networks(
    space: str, sp: Any, archs: Sequence[str], labels: np.ndarray, cfg: ExperimentConfig, seed: int, steps: int,
    device: str, graphs: Sequence[ArchGraph] | None, t0: float,
) -> tuple[Predictor, float]:
    """fit_online for a whole-network space: NETWORK_ENCODING tokens, network_model_config's model, and
    ``cfg`` as given (``online_config(whole_network=True)`` when fit_online made it)."""
    if cfg.encoding.proxies:
        raise proxies_on_networks(space)
    if cfg.train.equivalence_augment:
        raise ConfigError(f"train.equivalence_augment draws cells of an equivalence class (NAS-Bench-101/201); "
                          f"space {space!r} describes whole networks: leave it off")
    graphs = list(graphs) if graphs is not None else [sp.to_graph(a) for a in archs]
    tokenizer = NETWORK_ENCODING.tokenizer()
    scale = cfg.data.label_scale
    # tokenised a batch at a time (each network's features kept after its first use): networks of
    # tens to hundreds of nodes padded all together would pad most batches far beyond their own size
    data = CellData(LazyGraphBatch(tokenizer, graphs, cache_features=True),  # type: ignore[arg-type]
                    torch.tensor(check_labels(labels * scale, "evaluated architectures"), dtype=torch.float32))
    recipe = cfg.model_copy(update={"model": network_model_config(cfg, tokenizer, data.batch.used_columns())})
    # no validation pass: the last weights are kept anyway, and validating every epoch on the training
    # networks cost 30 % of an FBNet refit
    return _fit(space, cfg, recipe, tokenizer, data, None, seed, steps, device, t0)


def _fit(
    space: str, cfg: ExperimentConfig, recipe: ExperimentConfig, tokenizer: CellTokenizer | NetworkTokenizer,
    data: CellData, valid: CellData | None, seed: int, steps: int, device: str, t0: float,
) -> tuple[Predictor, float]:
    """Train one member for ``steps`` steps on ``data`` and wrap it as a Predictor (``recipe``: ``cfg``
    with the model and training settings the tokens need, ``cfg`` itself for cells; ``valid``: what
    train_member validates on, None for no validation)."""
    n = len(data)
    batch_size = min(recipe.train.batch_size, n)
    epochs = max(1, math.ceil(steps / math.ceil(n / batch_size)))
    run_cfg = recipe.model_copy(update={"train": recipe.train.model_copy(update={
        "epochs": epochs, "batch_size": max(2, batch_size), "seed": seed,
        # the last weights: with a handful of labels a validation split would cost more than it tells
        "select_tolerance": 0.999,
    })})
    member = train_member(run_cfg, data, valid, seed, torch.device(device), progress=False, desc="refit")
    meta = {
        "name": cfg.name, "space": space, "task": "accuracy", "target": "search values",
        "label_scale": cfg.data.label_scale, "encoding": tokenizer.config(), "model": run_cfg.model.model_dump(),
        "experiment": run_cfg.model_dump(), "average_equivalent": cfg.predict.average_equivalent,
    }
    return Predictor(meta, [member.model], device=device), time.perf_counter() - t0
