"""Training NAR-Former V2 accuracy predictors: the training loop, ensembles of members, evaluation."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_predictor.architectures import build_model
from nas_predictor.calibration import fit_linear_calibration
from nas_predictor.config import ExperimentConfig, validate_config
from nas_predictor.encoding import GraphBatch, size_batches
from nas_predictor.errors import TrainingError
from nas_predictor.losses import accuracy_loss
from nas_predictor.metrics import column_mape, kendall_tau
from nas_predictor.model import ROOFLINE_READOUTS, NARFormerV2
from nas_predictor.predictor import Predictor, atomic_write_json, resolve_device
from nas_predictor.spaces import get_space
from nas_predictor.train_data import (
    CellData,
    PreparedData,
    cell_tokenizer,
    class_variants,
    encode_cells,
    epoch_batches,
    evaluate_prepared,
    predict_batch,
    prepare_data,
)


def linear_warmup_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 linearly over the first warmup_fraction of steps, then linearly to 0."""
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _warm_ema(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], Any], None]:
    """AveragedModel's update with the decay ramped up as min(decay, (1 + n) / (10 + n))."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: Any) -> None:
        n = float(num_averaged)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


class EpochCallback(Protocol):
    """Called after every epoch's validation with the weights being validated (the EMA average when
    there is one, in eval mode); what it returns, unless None, is recorded with the epoch and the
    training seconds so far. Its run time is not training time. Must be picklable: members trained in
    worker processes carry it there (lab instrumentation such as benchmarks/probes.py's CurveProbe)."""

    def __call__(self, epoch: int, model: NARFormerV2, device: torch.device) -> Any: ...


@dataclass
class MemberResult:
    model: NARFormerV2
    best_epoch: int
    best_valid_tau: float  # selection score of the kept epoch: tau, or -MAPE with select_metric "mape"
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    callback_seconds: float = 0.0
    # per epoch callback, (epoch, training seconds so far, what it returned) when that was not None
    records: list[list[tuple[int, float, Any]]] = field(default_factory=list)
    # seconds between the request to train this member and its first step (worker start-up)
    start_delay: float = 0.0


def train_member(
    cfg: ExperimentConfig, train: CellData, valid: CellData | None, seed: int, device: torch.device,
    progress: bool = True, desc: str = "train", callbacks: Sequence[EpochCallback] = (),
    on_epoch: Callable[[int], None] | None = None,
) -> MemberResult:
    """Train one model; keep the epoch with the best Kendall tau on the validation cells' own labels
    (``valid`` None: no validation, the last epoch's weights are kept).

    ``callbacks`` (see EpochCallback) run after each epoch's validation; their time is not counted.
    """
    tc = cfg.train
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg.model)
    if tc.init_output_bias:
        # one mean per output of a multi-device latency model (NaN = not measured on that device); the
        # log loss starts at the geometric mean, the centre of what it measures
        labels0 = train.labels.log() if tc.value_loss == "log_absolute" else train.labels
        mean = labels0.nanmean(dim=0) if labels0.ndim == 2 else labels0.mean()
        sizes = getattr(train.batch, "sizes", None)  # node counts of whole networks (per-node readouts)
        kwargs = {}
        if cfg.model.readout in ROOFLINE_READOUTS:
            kwargs["mean_costs"] = train.batch.cost_totals().mean(axis=0).tolist()
            if cfg.model.readout == "grounded":
                kwargs["mean_costs"].append(float(train.batch.op_totals().mean()))
        model.init_output(mean.exp() if tc.value_loss == "log_absolute" else mean,
                          float(np.mean(sizes)) if sizes is not None and len(sizes) else None, **kwargs)
    model = model.to(device)
    # foreach: one kernel per step for all parameters instead of one per tensor (torch's default on a
    # CPU is the per-tensor loop); the same numbers, and a small model's step is a third cheaper
    if tc.weight_decay > 0:
        optim = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, foreach=True)
    else:
        optim = torch.optim.Adam(model.parameters(), lr=tc.lr, foreach=True)
    steps_per_epoch = math.ceil(len(train) / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optim, linear_warmup_decay(total_steps, tc.warmup_fraction))
    use_ac = tc.lambda_ac > 0 and train.aug is not None
    use_variants = tc.equivalence_augment and train.variants is not None
    ema = None
    if tc.ema_decay > 0:
        avg_fn = _warm_ema(tc.ema_decay) if tc.ema_warmup else torch.optim.swa_utils.get_ema_multi_avg_fn(tc.ema_decay)
        ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=avg_fn)
    scored = ema.module if ema is not None else model  # the weights validated, probed and kept
    sizes = getattr(train.batch, "sizes", None) if tc.bucket_by_size else None
    labels = train.labels.to(device)
    valid_np = valid.labels.numpy() if valid is not None else None
    best_tau, best_epoch, best_state = -math.inf, -1, None
    top_tau = -math.inf
    history: list[dict[str, float]] = []
    records: list[list[tuple[int, float, Any]]] = [[] for _ in callbacks]
    start = time.perf_counter()
    callback_seconds = 0.0
    bar = tqdm(range(tc.epochs), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        total = 0.0
        for idx in epoch_batches(len(train), tc.batch_size, gen, sizes):
            optim.zero_grad(set_to_none=True)
            # Large networks on a CPU: the batch's gradient as the weighted sum of size-bounded parts'
            # (the same gradient: a per-item mean loss, no batch statistics), so attention maps stay
            # cache-sized. Ranking and AC losses compare items across the batch: never split them.
            split = sizes is not None and not use_variants and not use_ac and tc.lambda_sr == 0
            if split:
                ordered = idx.numpy()[np.argsort(sizes[idx.numpy()], kind="stable")]
                parts = size_batches(ordered, sizes, tc.batch_size, device.type)
            else:
                parts = [idx.numpy()]
            loss_sum = 0.0
            for part in parts:
                part_t = torch.as_tensor(part)
                batch = train.variants.draw(part_t, gen) if use_variants else train.batch.select(part_t)
                target = labels[part_t.to(device)]
                if use_ac:
                    batch = GraphBatch.concat([batch, train.aug.select(part_t)])
                    target = torch.cat([target, target])
                pred = model(batch.to(device))
                loss, _ = accuracy_loss(pred, target, tc.lambda_sr, tc.lambda_ac if use_ac else 0.0, gen, tc.sr_mode,
                                       tc.value_loss)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {float(loss.detach())} in epoch {epoch} (seed {seed}); lower train.lr "
                        f"(now {tc.lr}) or check the labels"
                    )
                (loss * (len(part) / len(idx))).backward()
                loss_sum += float(loss.detach()) * len(part) / len(idx)
            loss = torch.tensor(loss_sum)
            optim.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += float(loss.detach()) * len(idx)
        entry = {"epoch": epoch, "loss": total / len(train)}
        if valid is not None:
            valid_pred = predict_batch(scored, valid.batch, device, tc.eval_batch_size)
            if tc.select_metric == "mape":  # selection score: higher is better
                entry["valid_mape"] = column_mape(valid_np, valid_pred)
                val_tau = -entry["valid_mape"]
            else:
                val_tau = kendall_tau(valid_np, valid_pred)
                if math.isnan(val_tau):
                    val_tau = -1.0
                entry["valid_tau"] = val_tau
        if callbacks:
            m0 = time.perf_counter()
            outputs = [callback(epoch, scored, device) for callback in callbacks]
            callback_seconds += time.perf_counter() - m0
            if any(out is not None for out in outputs):
                entry["train_seconds"] = time.perf_counter() - start - callback_seconds
                for kept, out in zip(records, outputs):
                    if out is not None:
                        kept.append((epoch, entry["train_seconds"], out))
        history.append(entry)
        if on_epoch is not None:
            on_epoch(epoch)
        if valid is None:
            best_epoch = epoch
            bar.set_postfix(loss=f"{total / len(train):.4f}")
            continue
        # Keep the latest epoch within train.select_tolerance of the best validation tau so far: an
        # epoch that becomes the best is kept at once, so at the end this is the latest epoch within
        # the tolerance of the overall best (0 = the best epoch itself, the first of any ties).
        top_tau = max(top_tau, val_tau)
        if val_tau > best_tau if tc.select_tolerance == 0 else val_tau >= top_tau - tc.select_tolerance:
            best_tau, best_epoch = val_tau, epoch
            best_state = copy.deepcopy(scored.state_dict())
        if tc.select_metric == "mape":  # shown as MAPE, not as the negated selection score
            bar.set_postfix(loss=f"{total / len(train):.4f}", valid_mape=f"{-val_tau:.4f}", best=f"{-top_tau:.4f}")
        else:
            bar.set_postfix(loss=f"{total / len(train):.4f}", valid=f"{val_tau:.3f}", best=f"{top_tau:.3f}")
    if valid is None:
        best_state = scored.state_dict()  # the average's weights, when there is one
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return MemberResult(
        model, best_epoch, best_tau, history, time.perf_counter() - start - callback_seconds, callback_seconds,
        records,
    )


# Member m of an ensemble trained with train.seed = s uses seed s + MEMBER_SEED_STRIDE * m, so runs with
# neighbouring seeds (a benchmark's seeds 0..4) never share a member.
MEMBER_SEED_STRIDE = 1000


_PROGRESS: Any = None  # a worker process's queue for per-epoch progress, set by the pool initializer


def _init_worker(progress_queue: Any) -> None:
    global _PROGRESS
    _PROGRESS = progress_queue


def _train_member_worker(
    cfg_json: str, train: CellData, valid: CellData | None, seed: int, device: str, threads: int,
    callbacks: Sequence[EpochCallback],
) -> dict[str, Any]:
    """Entry point of a worker process: train one member with its own thread budget."""
    started_at = time.time()
    torch.set_num_threads(threads)
    cfg = validate_config(json.loads(cfg_json), "worker config")  # accuracy or latency experiment
    on_epoch = (lambda epoch: _PROGRESS.put(epoch)) if _PROGRESS is not None else None
    result = train_member(cfg, train, valid, seed, torch.device(device), progress=False, callbacks=callbacks,
                          on_epoch=on_epoch)
    state = {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}
    return {"state": state, "best_epoch": result.best_epoch, "best_valid_tau": result.best_valid_tau,
            "history": result.history, "seconds": result.seconds, "callback_seconds": result.callback_seconds,
            "records": result.records, "started_at": started_at}


def train_members(
    cfg: ExperimentConfig, train: CellData, valid: CellData | None, device: torch.device, progress: bool = True,
    callbacks: Sequence[EpochCallback] = (),
) -> list[MemberResult]:
    """Train the ensemble's members: one after another, or ``train.workers`` at a time in worker
    processes (CPU only). On 2 cores, two single-thread members train in about the time one member
    takes with two threads, because small matmuls do not scale across threads."""
    tc = cfg.train
    seeds = [tc.seed + MEMBER_SEED_STRIDE * m for m in range(tc.ensemble)]
    workers = min(tc.workers, tc.ensemble)
    if workers <= 1 or device.type != "cpu":
        return [
            train_member(cfg, train, valid, s, device, progress,
                         f"{cfg.name} member {m + 1}/{tc.ensemble}" if tc.ensemble > 1 else cfg.name, callbacks)
            for m, s in enumerate(seeds)
        ]
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch.multiprocessing as mp

    threads = max(1, (tc.threads or torch.get_num_threads()) // workers)
    results: dict[int, MemberResult] = {}
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    bar = tqdm(total=len(seeds) * tc.epochs, desc=f"{cfg.name}: {len(seeds)} members, {workers} at a time",
               unit="epoch", disable=not progress, leave=False, dynamic_ncols=True)
    submitted_at = time.time()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(progress_queue,)) as pool:
        futures = {pool.submit(_train_member_worker, cfg.model_dump_json(), train, valid, s, "cpu", threads,
                               tuple(callbacks)): m
                   for m, s in enumerate(seeds)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            try:
                while True:
                    progress_queue.get_nowait()
                    bar.update()
            except queue_module.Empty:
                pass
            for future in done:
                if future.exception() is not None:
                    # Stop the other members at once instead of letting them run to the end; the
                    # worker's error (e.g. a TrainingError naming the seed) is re-raised with its message.
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.terminate()
                    raise future.exception()
                out = future.result()
                model = build_model(cfg.model)
                model.load_state_dict(out.pop("state"))
                delay = out.pop("started_at") - submitted_at  # process start-up and imports
                results[futures[future]] = MemberResult(model.eval(), **out, start_delay=delay)
    bar.close()
    return [results[m] for m in range(len(seeds))]


def parallel_members(cfg: ExperimentConfig, members: list[MemberResult]) -> bool:
    """Whether ``members`` trained side by side in worker processes (so their times overlap)."""
    return min(cfg.train.workers, len(members)) > 1 and resolve_device(cfg.train.device).type == "cpu"


def _callback_wall_seconds(cfg: ExperimentConfig, members: list[MemberResult]) -> float:
    """Wall time the epoch callbacks added: summed for sequential members, the largest for parallel ones."""
    costs = [m.callback_seconds for m in members]
    return max(costs) if parallel_members(cfg, members) else sum(costs)


def run_experiment(
    cfg: ExperimentConfig, out_dir: str | Path | None = None, data_dir: str | None = None, progress: bool = True,
    prepared: PreparedData | None = None, callbacks: Sequence[EpochCallback] = (),
) -> dict[str, Any]:
    """Train (an ensemble of) predictor(s), evaluate on all cells, write checkpoint + results.json.

    ``callbacks`` run after every epoch of every member (see EpochCallback); their time is left out of
    ``train_seconds``. Besides what results.json holds, the returned dict has ``predictor``,
    ``member_results`` (each member's MemberResult, with what the callbacks returned) and
    ``prep_seconds`` (data preparation and encoding before the first member started).
    """
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    data = prepared or prepare_data(cfg, data_dir)
    tokenizer = cell_tokenizer(cfg, data)
    scale = cfg.data.label_scale
    train = encode_cells(
        tokenizer, [data.graphs[i] for i in data.train_idx], data.train_labels[data.train_idx] * scale,
        f"{cfg.data.train_target} (train)", with_aug=cfg.train.lambda_ac > 0,
    )
    if cfg.train.equivalence_augment:
        train.variants = class_variants(tokenizer, get_space(cfg.space), data.archs, data.graphs, data.train_idx)
    valid = encode_cells(
        tokenizer, [data.graphs[i] for i in data.valid_idx], data.train_labels[data.valid_idx] * scale,
        f"{cfg.data.train_target} (validation)",
    ) if len(data.valid_idx) else None  # data.n_valid 0: no selection, the last epoch is kept
    prep_seconds = time.perf_counter() - t0
    members = train_members(cfg, train, valid, device, progress, callbacks)
    # Wall time of data preparation + training, without the callbacks' (lab instrumentation).
    train_seconds = time.perf_counter() - t0 - _callback_wall_seconds(cfg, members)
    meta = {
        "name": cfg.name,
        "space": cfg.space,
        "task": cfg.model.task,
        "target": cfg.data.train_target,
        "label_scale": scale,
        "encoding": tokenizer.config(),
        "model": cfg.model.model_dump(),
        "experiment": cfg.model_dump(),
        "average_equivalent": cfg.predict.average_equivalent,
    }
    predictor = Predictor(meta, [m.model for m in members], device=str(device))
    if cfg.train.calibrate:
        train_graphs = [data.graphs[i] for i in data.train_idx]
        predictor.meta["calibration"] = fit_linear_calibration(
            predictor.predict_graphs_raw(train_graphs), data.train_labels[data.train_idx]
        )
    results: dict[str, Any] = {
        "name": cfg.name,
        "config": cfg.model_dump(),
        **evaluate_prepared(predictor, data, cfg),
        "members": [
            {"seed": cfg.train.seed + MEMBER_SEED_STRIDE * i, "best_epoch": m.best_epoch,
             # None: no validation cells (data.n_valid 0)
             "best_valid_tau": m.best_valid_tau if math.isfinite(m.best_valid_tau) else None,
             "train_seconds": m.seconds}
            for i, m in enumerate(members)
        ],
        "train_seconds": train_seconds,
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
    results.update(predictor=predictor, member_results=members, prep_seconds=prep_seconds)
    return results
