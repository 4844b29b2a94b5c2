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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nas_predictor.calibration import fit_log_scale
from nas_predictor.config import LatencyExperimentConfig
from nas_predictor.data.latency_graphs import network_graphs
from nas_predictor.data.latency_tables import load_help_latency
from nas_predictor.data.latency_dataset import DatasetRecord, LatencyDataset, dataset_graphs, measured_on
from nas_predictor.errors import DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.latency_domain import DOMAIN_KEY, build_latency_domain
from nas_predictor.metrics import acc_within, defined_tau, mape
from nas_predictor.network_encoding import LazyGraphBatch
from nas_predictor.predictor import Predictor, atomic_write_json, resolve_device
from nas_predictor.train import MEMBER_SEED_STRIDE, train_members
from nas_predictor.train_data import CellData, check_labels


@dataclass
class LatencyRecords:
    family: list[str]
    archs: list[str]
    graphs: list[ArchGraph]
    latency_ms: np.ndarray  # (records, settings); NaN where a family was not measured on a setting
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    settings: list[str] = field(default_factory=list)

    def labels(self, index: np.ndarray) -> np.ndarray:
        """Latencies of the records in ``index``: (n,) for one setting, else (n, settings)."""
        lat = self.latency_ms[index]
        return lat[:, 0] if lat.shape[1] == 1 else lat


def _family_latencies(space: str, settings: list[str], data_dir: str | None) -> tuple[list[str], np.ndarray, int]:
    """One family's archs and its (records, settings) latencies; NaN columns for settings it lacks."""
    archs: list[str] | None = None
    columns: list[np.ndarray | None] = []
    batch = 1
    for setting in settings:
        try:
            table = load_help_latency(space, setting, data_dir)
        except DataError:
            if len(settings) == 1:
                raise
            columns.append(None)  # a multi-device model: this family has no label for this setting
            continue
        if archs is not None and table.archs != archs:
            raise DataError(f"HELP {space} files disagree on their architectures ({setting})")
        archs, batch = table.archs, table.batch_size
        columns.append(check_labels(table.latency_ms, f"{space} {table.setting} latency"))
    if archs is None:
        raise DataError(f"HELP has no {space} latency for any of the settings {settings}")
    lat = np.column_stack([c if c is not None else np.full(len(archs), np.nan) for c in columns])
    return archs, lat, batch


def _measured_families(d: Any) -> tuple[LatencyDataset, dict[str, list[DatasetRecord]]]:
    """A measured dataset's records by family (those of ``d.families``), labels checked."""
    ds = LatencyDataset(d.dataset_dir)
    if ds.identity is None:
        raise DataError(f"{d.dataset_dir}: not a built latency dataset (no manifest.json)")
    by_family: dict[str, list[DatasetRecord]] = {}
    for r in ds.records():
        by_family.setdefault(r.family, []).append(r)
    missing = [f for f in d.families if f not in by_family]
    if missing:
        raise DataError(f"{d.dataset_dir} has no labels for {', '.join(missing)} (it holds "
                        f"{', '.join(f'{f} {len(v)}' for f, v in by_family.items()) or 'none'})")
    for f in d.families:
        check_labels(np.array([r.latency_ms for r in by_family[f]]), f"{d.dataset_dir} {f} latency")
    return ds, by_family


def family_subset(n: int, max_per_family: int | None, rng: np.random.Generator, how: str = "random") -> np.ndarray:
    """Sorted indices of the records of one family an experiment uses: all of them, or
    ``max_per_family`` drawn by ``rng`` (one generator, seeded by ``subset_seed``, drawn from family
    after family in the config's order, so a family's subset depends on the families before it), or,
    with ``how="first"``, the first ``max_per_family`` in the dataset's order (the first measured: a
    subset that stays the same while a dataset grows)."""
    if max_per_family and max_per_family < n:
        if how == "first":
            return np.arange(max_per_family)
        return np.sort(rng.choice(n, max_per_family, replace=False))
    return np.arange(n)


def prepare_latency_data(cfg: LatencyExperimentConfig, data_dir: str | None = None, progress: bool = True) -> LatencyRecords:
    d = cfg.data
    rng = np.random.default_rng(d.split_seed)
    subset_rng = np.random.default_rng(d.subset_seed)
    family, archs, graphs, lat = [], [], [], []
    train, valid, test = [], [], []
    measured = _measured_families(d) if d.dataset_dir is not None else None
    for space in d.families:
        if measured is not None:
            family_records = measured[1][space]
            family_archs = [r.key for r in family_records]
            family_lat = np.array([[r.latency_ms] for r in family_records])
        else:
            family_archs, family_lat, batch = _family_latencies(space, d.settings, data_dir)
        pick = family_subset(len(family_archs), d.max_per_family, subset_rng, d.subset)
        chosen = [family_archs[i] for i in pick]
        offset = len(archs)
        if measured is not None:
            graphs += dataset_graphs(measured[0], [family_records[i] for i in pick], d.cache_dir, d.export_workers,
                                     progress)
        else:
            graphs += network_graphs(space, chosen, batch, d.cache_dir, d.export_workers, progress)
        family += [space] * len(chosen)
        archs += chosen
        lat.append(family_lat[pick])
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
    return LatencyRecords(family, archs, graphs, np.concatenate(lat), cat(train), cat(valid), cat(test),
                          list(d.settings))


def latency_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"num": int(len(truth)), "mape": mape(truth, pred), "acc_5pct": acc_within(truth, pred, 0.05),
            "acc_10pct": acc_within(truth, pred, 0.10),
            "kendall_tau": defined_tau(truth, pred)}


def metrics_by_setting(records: LatencyRecords, index: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """{setting: {"overall": ..., "per_family": {family: ...}}} on the records in ``index`` that were
    measured on each setting; ``pred`` is (n,) or (n, settings)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(index), -1)
    fam = np.asarray(records.family)[index]
    out: dict[str, Any] = {}
    for k, setting in enumerate(records.settings):
        truth = records.latency_ms[index, k]
        known = ~np.isnan(truth)
        t, p, f = truth[known], pred[known, k], fam[known]
        if not len(t):
            continue
        out[setting] = {"overall": latency_metrics(t, p),
                        "per_family": {name: latency_metrics(t[f == name], p[f == name]) for name in dict.fromkeys(f)}}
    return out


def few_shot_metrics(records: LatencyRecords, index: np.ndarray, pred: np.ndarray, shots: int, seed: int,
                     draws: int = 20) -> dict[str, dict[str, float]]:
    """Test metrics after rescaling by ``shots`` measured networks, per setting, mean over ``draws``.

    What a user does with a predictor and a family (or device) it never saw: measure a few of the
    candidate networks, fit one factor (``fit_log_scale``) from their predicted and measured latency,
    and rescale the predictions of the rest. Each draw takes ``shots`` random records of ``index``
    measured on the setting as the measured ones and scores the others; ``pred`` is (n,) or
    (n, settings) over ``index``. Draws are seeded by ``seed`` and ``shots``, so every model of a run
    is scored on the same draws. ``scale_all``: the factor fitted on all of them, i.e. how far off
    the unscaled predictions were.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(len(index), -1)
    out: dict[str, dict[str, float]] = {}
    for k, setting in enumerate(records.settings):
        truth = records.latency_ms[index, k]
        known = np.flatnonzero(~np.isnan(truth))
        if len(known) <= shots:
            continue
        rng = np.random.default_rng([seed, shots, k])
        scores = []
        for _ in range(draws):
            chosen = rng.choice(len(known), shots, replace=False)
            rest = np.setdiff1d(np.arange(len(known)), chosen)
            fit, score = known[chosen], known[rest]
            scale = fit_log_scale(pred[fit, k], truth[fit])
            scores.append(latency_metrics(truth[score], pred[score, k] * scale))
        out[setting] = {m: float(np.mean([s[m] for s in scores])) for m in ("mape", "acc_5pct", "acc_10pct")}
        # the factor all of them would give: how far off the unscaled predictions were
        out[setting]["scale_all"] = fit_log_scale(pred[known, k], truth[known])
    return out


def evaluate_latency(predictor: Predictor, records: LatencyRecords, index: np.ndarray) -> dict[str, Any]:
    """Metrics per setting on the records in ``index``: overall and per family."""
    return metrics_by_setting(records, index, predictor.predict_graphs([records.graphs[i] for i in index]))


def training_domain(cfg: LatencyExperimentConfig, records: LatencyRecords,
                    train: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """The domain summary (``latency_domain``) of the predictor trained by ``cfg`` on ``records``: over
    its training split, or over ``train`` where only part of that split has graphs."""
    d = cfg.data
    train = records.train if train is None else np.asarray(train, dtype=int)
    family = np.asarray(records.family)
    counts = ", ".join(f"{space} {int(np.sum(family[train] == space))} of {int(np.sum(family[records.train] == space))}"
                       for space in d.families)
    source = (f"training split of {', '.join(d.families)} ({d.split}, split_seed {d.split_seed}, subset_seed "
              f"{d.subset_seed}, max_per_family {d.max_per_family}, train_fraction {d.train_fraction}, "
              f"valid_fraction {d.valid_fraction}): {len(train)} of {len(records.train)} networks ({counts})")
    runtime = cfg.encoding.tokenizer().runtime_graph  # the graphs as the predictor reads them (BN folded or not)
    return build_latency_domain([runtime(records.graphs[i]) for i in train], records.latency_ms[train], d.settings, source)


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
    tokenizer = cfg.encoding.tokenizer()
    if tokenizer.op_groups:  # op types outside the training networks are then encoded by their group alone
        tokenizer.learn_vocabulary([records.graphs[i] for i in np.concatenate([records.train, records.valid])])
    if tokenizer.op_latency:  # each node's time on the device, from its operator micro-benchmark
        from nas_predictor.op_latency import fit_from_dataset

        tokenizer.attach_op_model(fit_from_dataset(cfg.encoding.op_latency, cache_dir=cfg.data.cache_dir,
                                                   workers=cfg.data.export_workers, progress=progress,
                                                   seed=cfg.train.seed))

    def cells(index: np.ndarray) -> CellData:
        return CellData(LazyGraphBatch(tokenizer, [records.graphs[i] for i in index], cache_features=True),  # type: ignore[arg-type]
                        torch.tensor(records.labels(index), dtype=torch.float32))

    t_train = time.perf_counter()
    members = train_members(cfg, cells(records.train), cells(records.valid), device, progress)  # type: ignore[arg-type]
    train_seconds = time.perf_counter() - t_train
    meta = {
        "name": cfg.name, "task": "latency", "space": None, "label_scale": 1.0, "unit": "ms",
        "setting": cfg.data.settings[0], "settings": cfg.data.settings, "families": list(cfg.data.families),
        "encoding": tokenizer.config(), "model": cfg.model.model_dump(), "experiment": cfg.model_dump(),
    }
    if cfg.data.dataset_dir is not None:  # the machine the labels (and so the predictions) are of
        ds = LatencyDataset(cfg.data.dataset_dir)
        meta["measured_on"] = measured_on([r for r in ds.records() if r.family in set(cfg.data.families)])
    try:  # what the predictor saw, so every later prediction can say whether it lies inside that
        meta[DOMAIN_KEY] = training_domain(cfg, records)
    except DataError as err:  # a setting with fewer than two labelled training networks
        warnings.warn(f"no training-domain summary ({err}): this predictor's latencies will be reported as "
                      "unchecked", stacklevel=2)
    predictor = Predictor(meta, [m.model for m in members], device=str(device))
    results: dict[str, Any] = {
        "name": cfg.name, "settings": cfg.data.settings, "split": cfg.data.split, "test_family": cfg.data.test_family,
        "num_train": int(len(records.train)), "num_valid": int(len(records.valid)), "num_test": int(len(records.test)),
        "test": evaluate_latency(predictor, records, records.test) if len(records.test) else None,
        # the whole predictor (the members' mean, for an ensemble) on the validation split: what a release
        # chooses by (each member's own validation error does not score their average)
        "valid": evaluate_latency(predictor, records, records.valid) if len(records.valid) else None,
        "members": [{"seed": cfg.train.seed + MEMBER_SEED_STRIDE * i, "best_epoch": m.best_epoch,
                     "best_valid_mape": -m.best_valid_tau} for i, m in enumerate(members)],
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - t0, "device": str(device),
        "history": [m.history for m in members],
    }
    if out_dir is not None:
        out = Path(out_dir)
        if results["test"]:
            predictor.meta["metrics"] = {setting: m["overall"] for setting, m in results["test"].items()}
        predictor.save(out / "predictor.pt")
        atomic_write_json(results, out / "results.json")
        results["checkpoint"] = str(out / "predictor.pt")
    results["predictor"] = predictor
    return results
