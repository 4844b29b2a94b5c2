"""Training and evaluating latency predictors on measured whole-network latencies (HELP tables).

Splits (spec 4.3 analogues):
- ``in_domain``: every family is split on its own, ``train_fraction`` of its records to training
  (of which ``valid_fraction`` is held out for model selection), the rest to test; metrics per family
  and over all test records (paper Table 1).
- ``unseen``: the ``test_family`` is never trained on; all its records are the test set, the other
  families are split train/valid (paper Table 2).
Targets are milliseconds for the whole batch of the setting; the loss is the relative squared error
(spec 3), model selection uses validation MAPE.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_predictor.config import LatencyExperimentConfig
from nas_predictor.data.latency_graphs import network_graphs
from nas_predictor.data.latency_tables import load_help_latency
from nas_predictor.graph import ArchGraph
from nas_predictor.metrics import acc_within, kendall_tau, mape
from nas_predictor.network_encoding import LazyGraphBatch, NetworkTokenizer
from nas_predictor.predictor import Predictor, atomic_write_json, resolve_device
from nas_predictor.train import MEMBER_SEED_STRIDE, CellData, check_labels, train_members


@dataclass
class LatencyRecords:
    family: list[str]
    archs: list[str]
    graphs: list[ArchGraph]
    latency_ms: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def prepare_latency_data(cfg: LatencyExperimentConfig, data_dir: str | None = None, progress: bool = True) -> LatencyRecords:
    d = cfg.data
    rng = np.random.default_rng(d.split_seed)
    family, archs, graphs, lat = [], [], [], []
    train, valid, test = [], [], []
    for space in d.families:
        table = load_help_latency(space, d.setting, data_dir)
        pick = np.arange(len(table))
        if d.max_per_family and d.max_per_family < len(pick):
            pick = np.sort(rng.choice(len(pick), d.max_per_family, replace=False))
        chosen = [table.archs[i] for i in pick]
        offset = len(archs)
        graphs += network_graphs(space, chosen, table.batch_size, d.cache_dir, d.export_workers, progress)
        family += [space] * len(chosen)
        archs += chosen
        lat.append(check_labels(table.latency_ms[pick], f"{space} {table.setting} latency"))
        order = offset + rng.permutation(len(chosen))
        if d.split == "unseen" and space == d.test_family:
            test.append(order)
            continue
        n_train = len(order) if d.split == "unseen" else int(round(d.train_fraction * len(order)))
        n_valid = max(1, int(round(d.valid_fraction * n_train)))
        valid.append(order[:n_valid])
        train.append(order[n_valid:n_train])
        if d.split == "in_domain":
            test.append(order[n_train:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=int)  # noqa: E731
    return LatencyRecords(family, archs, graphs, np.concatenate(lat), cat(train), cat(valid), cat(test))


def latency_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"num": int(len(truth)), "mape": mape(truth, pred), "acc_5pct": acc_within(truth, pred, 0.05),
            "acc_10pct": acc_within(truth, pred, 0.10),
            "kendall_tau": kendall_tau(truth, pred) if len(truth) > 1 else None}


def evaluate_latency(predictor: Predictor, records: LatencyRecords, index: np.ndarray) -> dict[str, Any]:
    """Metrics on the records in ``index``: overall and per family."""
    pred = predictor.predict_graphs([records.graphs[i] for i in index])
    truth = records.latency_ms[index]
    fam = np.asarray(records.family)[index]
    out: dict[str, Any] = {"overall": latency_metrics(truth, pred)}
    out["per_family"] = {f: latency_metrics(truth[fam == f], pred[fam == f]) for f in dict.fromkeys(fam)}
    return out


def run_latency_experiment(
    cfg: LatencyExperimentConfig, out_dir: str | Path | None = None, data_dir: str | None = None,
    progress: bool = True, prepared: LatencyRecords | None = None,
) -> dict[str, Any]:
    """Train (an ensemble of) latency predictor(s) on one device setting, evaluate on the test records."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    records = prepared or prepare_latency_data(cfg, data_dir, progress)
    tokenizer = NetworkTokenizer(cfg.encoding.layout)

    def cells(index: np.ndarray) -> CellData:
        return CellData(LazyGraphBatch(tokenizer, [records.graphs[i] for i in index]),  # type: ignore[arg-type]
                        torch.tensor(records.latency_ms[index], dtype=torch.float32))

    t_train = time.perf_counter()
    members = train_members(cfg, cells(records.train), cells(records.valid), device, progress)  # type: ignore[arg-type]
    train_seconds = time.perf_counter() - t_train
    meta = {
        "name": cfg.name, "task": "latency", "space": None, "label_scale": 1.0, "unit": "ms",
        "setting": cfg.data.setting, "families": list(cfg.data.families),
        "encoding": tokenizer.config(), "model": cfg.model.model_dump(), "experiment": cfg.model_dump(),
    }
    predictor = Predictor(meta, [m.model for m in members], device=str(device))
    results: dict[str, Any] = {
        "name": cfg.name, "setting": cfg.data.setting, "split": cfg.data.split, "test_family": cfg.data.test_family,
        "num_train": int(len(records.train)), "num_valid": int(len(records.valid)), "num_test": int(len(records.test)),
        "test": evaluate_latency(predictor, records, records.test) if len(records.test) else None,
        "members": [{"seed": cfg.train.seed + MEMBER_SEED_STRIDE * i, "best_epoch": m.best_epoch,
                     "best_valid_mape": -m.best_valid_tau} for i, m in enumerate(members)],
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - t0, "device": str(device),
        "history": [m.history for m in members],
    }
    if out_dir is not None:
        out = Path(out_dir)
        if results["test"]:
            predictor.meta["metrics"] = results["test"]["overall"]
        predictor.save(out / "predictor.pt")
        atomic_write_json(results, out / "results.json")
        results["checkpoint"] = str(out / "predictor.pt")
    results["predictor"] = predictor
    return results
