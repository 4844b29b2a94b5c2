"""Training NAR-Former V2 accuracy predictors: data preparation, the training loop, evaluation."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_predictor.augment import isomorphic_relabel
from nas_predictor.calibration import fit_linear_calibration
from nas_predictor.config import ExperimentConfig
from nas_predictor.data import load_table, paper_split, random_split
from nas_predictor.encoding import CellTokenizer, GraphBatch
from nas_predictor.errors import DataError, TrainingError
from nas_predictor.graph import ArchGraph
from nas_predictor.losses import accuracy_loss
from nas_predictor.metrics import kendall_tau, summarize
from nas_predictor.model import NARFormerV2
from nas_predictor.predictor import Predictor, atomic_write_json, resolve_device
from nas_predictor.spaces import get_space


def linear_warmup_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 linearly over the first warmup_fraction of steps, then linearly to 0."""
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


@dataclass
class CellData:
    """Encoded cells with labels already scaled to model units (fractions for accuracy)."""

    batch: GraphBatch
    labels: torch.Tensor
    aug: GraphBatch | None = None

    def __len__(self) -> int:
        return len(self.labels)


def check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(labels) | (labels <= 0))
    if bad.size:
        raise DataError(
            f"{name}: {bad.size} label(s) are NaN, infinite or not positive (first at position {bad[0]}: "
            f"{labels[bad[0]]!r}); the relative loss needs positive finite targets"
        )
    return labels


def encode_cells(
    tokenizer: CellTokenizer, graphs: list[ArchGraph], labels: np.ndarray, name: str, with_aug: bool = False
) -> CellData:
    labels = check_labels(labels, name)
    if with_aug:
        # Encode originals and augmented copies together so both halves share one padded size.
        both = tokenizer.encode(graphs + [isomorphic_relabel(g) for g in graphs])
        n = len(graphs)
        return CellData(both.select(slice(0, n)), torch.tensor(labels, dtype=torch.float32), both.select(slice(n, 2 * n)))
    return CellData(tokenizer.encode(graphs), torch.tensor(labels, dtype=torch.float32))


@dataclass
class PreparedData:
    archs: list[str]
    graphs: list[ArchGraph]
    train_idx: np.ndarray
    valid_idx: np.ndarray
    test_idx: np.ndarray
    train_labels: np.ndarray  # table units (percent)
    eval_labels: np.ndarray  # table units, all archs
    space_vocab: tuple[str, ...]


def prepare_data(cfg: ExperimentConfig, data_dir: str | None = None) -> PreparedData:
    space = get_space(cfg.space)
    table = load_table(cfg.data.table_file, data_dir)
    train_labels = table.column(cfg.data.train_target)
    eval_labels = table.column(cfg.data.eval_target)
    n = len(table)
    if cfg.data.split == "paper":
        split = paper_split(n, cfg.data.n_train, cfg.data.n_valid)
    else:
        split = random_split(n, cfg.data.n_train, cfg.data.n_valid, cfg.data.split_seed)
    graphs = [space.to_graph(a) for a in table.arch_strs]
    return PreparedData(
        archs=table.arch_strs, graphs=graphs, train_idx=split.train, valid_idx=split.valid, test_idx=split.test,
        train_labels=train_labels, eval_labels=eval_labels, space_vocab=tuple(space.op_vocab),
    )


@dataclass
class MemberResult:
    model: NARFormerV2
    best_epoch: int
    best_valid_tau: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    monitor_seconds: float = 0.0


def _predict(model: NARFormerV2, batch: GraphBatch, device: torch.device, batch_size: int) -> np.ndarray:
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(batch), batch_size):
            outs.append(model(batch.select(slice(i, i + batch_size)).to(device)).float().cpu())
    return torch.cat(outs).numpy()


def train_member(
    cfg: ExperimentConfig, train: CellData, valid: CellData, seed: int, device: torch.device, progress: bool = True,
    desc: str = "train", monitor: Callable[[NARFormerV2], dict[str, float]] | None = None,
) -> MemberResult:
    """Train one model; keep the epoch with the best Kendall tau on the validation cells' own labels.

    ``monitor`` (optional, every ``train.curve_every`` epochs) records extra numbers, e.g. tau on held-out
    cells for a time-to-tau curve; its own run time is excluded from the training time.
    """
    tc = cfg.train
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = NARFormerV2(cfg.model)
    if tc.init_output_bias:
        model.init_output(float(train.labels.mean()))
    model = model.to(device)
    if tc.weight_decay > 0:
        optim = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    else:
        optim = torch.optim.Adam(model.parameters(), lr=tc.lr)
    steps_per_epoch = math.ceil(len(train) / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optim, linear_warmup_decay(total_steps, tc.warmup_fraction))
    use_ac = tc.lambda_ac > 0 and train.aug is not None
    labels = train.labels.to(device)
    valid_np = valid.labels.numpy()
    best_tau, best_epoch, best_state = -math.inf, -1, None
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    monitor_seconds = 0.0
    bar = tqdm(range(tc.epochs), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(train), tc.batch_size):
            idx = perm[i : i + tc.batch_size]
            batch = train.batch.select(idx)
            target = labels[idx.to(device)]
            if use_ac:
                batch = GraphBatch.concat([batch, train.aug.select(idx)])
                target = torch.cat([target, target])
            pred = model(batch.to(device))
            loss, _ = accuracy_loss(pred, target, tc.lambda_sr, tc.lambda_ac if use_ac else 0.0, gen, tc.sr_mode)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {float(loss.detach())} in epoch {epoch} (seed {seed}); lower train.lr "
                    f"(now {tc.lr}) or check the labels"
                )
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        val_tau = kendall_tau(valid_np, _predict(model, valid.batch, device, tc.eval_batch_size))
        if math.isnan(val_tau):
            val_tau = -1.0
        entry = {"epoch": epoch, "loss": total / len(train), "valid_tau": val_tau}
        if monitor is not None and tc.curve_every and (epoch + 1) % tc.curve_every == 0:
            m0 = time.perf_counter()
            entry.update(monitor(model))
            monitor_seconds += time.perf_counter() - m0
            entry["train_seconds"] = time.perf_counter() - start - monitor_seconds
        history.append(entry)
        if val_tau > best_tau:
            best_tau, best_epoch = val_tau, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{total / len(train):.4f}", val_tau=f"{val_tau:.3f}", best=f"{best_tau:.3f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return MemberResult(
        model, best_epoch, best_tau, history, time.perf_counter() - start - monitor_seconds, monitor_seconds
    )


def run_experiment(
    cfg: ExperimentConfig, out_dir: str | Path | None = None, data_dir: str | None = None, progress: bool = True,
    prepared: PreparedData | None = None,
) -> dict[str, Any]:
    """Train (an ensemble of) predictor(s), evaluate on all cells, write checkpoint + results.json."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    data = prepared or prepare_data(cfg, data_dir)
    tokenizer = CellTokenizer(data.space_vocab, cfg.encoding.num_freqs, cfg.encoding.variant)
    scale = cfg.data.label_scale
    train = encode_cells(
        tokenizer, [data.graphs[i] for i in data.train_idx], data.train_labels[data.train_idx] * scale,
        f"{cfg.data.train_target} (train)", with_aug=cfg.train.lambda_ac > 0,
    )
    valid = encode_cells(
        tokenizer, [data.graphs[i] for i in data.valid_idx], data.train_labels[data.valid_idx] * scale,
        f"{cfg.data.train_target} (validation)",
    )
    monitor = None
    if cfg.train.curve_every:
        # Time-to-tau curve on every 5th cell of the test set (cheap, and unbiased enough to read a trend).
        curve_idx = data.test_idx[::5]
        curve_batch = tokenizer.encode([data.graphs[i] for i in curve_idx])
        curve_truth = data.eval_labels[curve_idx]

        def monitor(model: NARFormerV2) -> dict[str, float]:
            return {"curve_tau": kendall_tau(curve_truth, _predict(model, curve_batch, device, cfg.train.eval_batch_size))}

    members = []
    for m in range(cfg.train.ensemble):
        desc = f"{cfg.name} member {m + 1}/{cfg.train.ensemble}" if cfg.train.ensemble > 1 else cfg.name
        members.append(train_member(cfg, train, valid, cfg.train.seed + m, device, progress, desc, monitor))
    # Wall time of data preparation + training, without the optional curve monitoring.
    train_seconds = time.perf_counter() - t0 - sum(m.monitor_seconds for m in members)
    meta = {
        "name": cfg.name,
        "space": cfg.space,
        "task": cfg.model.task,
        "target": cfg.data.train_target,
        "label_scale": scale,
        "encoding": tokenizer.config(),
        "model": cfg.model.model_dump(),
        "experiment": cfg.model_dump(),
    }
    predictor = Predictor(meta, [m.model for m in members], device=str(device))
    if cfg.train.calibrate:
        train_graphs = [data.graphs[i] for i in data.train_idx]
        predictor.meta["calibration"] = fit_linear_calibration(
            predictor.predict_graphs_raw(train_graphs), data.train_labels[data.train_idx]
        )
    t1 = time.perf_counter()
    test_graphs = [data.graphs[i] for i in data.test_idx]
    pred = predictor.predict_graphs(test_graphs, cfg.train.eval_batch_size)
    predict_seconds = time.perf_counter() - t1
    truth = data.eval_labels[data.test_idx]
    unseen = ~np.isin(data.test_idx, np.concatenate([data.train_idx, data.valid_idx]))
    results: dict[str, Any] = {
        "name": cfg.name,
        "config": cfg.model_dump(),
        "num_archs": int(len(data.test_idx)),
        **summarize(truth, pred),
        "kendall_tau_unseen": kendall_tau(truth[unseen], pred[unseen]),
        "kendall_tau_train_target": kendall_tau(data.train_labels[data.test_idx], pred),
        "members": [
            {"seed": cfg.train.seed + i, "best_epoch": m.best_epoch, "best_valid_tau": m.best_valid_tau,
             "train_seconds": m.seconds}
            for i, m in enumerate(members)
        ],
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "history": [m.history for m in members],
    }
    if out_dir is not None:
        out = Path(out_dir)
        predictor.meta["metrics"] = {k: results[k] for k in ("kendall_tau", "mape", "num_archs")}
        predictor.save(out / "predictor.pt")
        atomic_write_json(results, out / "results.json")
        results["checkpoint"] = str(out / "predictor.pt")
    results["predictor"] = predictor
    return results
