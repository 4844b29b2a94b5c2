"""Training NAR-Former V2 accuracy predictors: data preparation, the training loop, evaluation."""

from __future__ import annotations

import copy
import json
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
from nas_predictor.config import ExperimentConfig, validate_config
from nas_predictor.data import load_nb101_subset, load_nb101_tfrecord, load_table, paper_split, random_split
from nas_predictor.data.splits import held_out
from nas_predictor.encoding import CellTokenizer, GraphBatch, size_batches
from nas_predictor.equivalence import class_mean
from nas_predictor.errors import ConfigError, DataError, TrainingError
from nas_predictor.graph import ArchGraph
from nas_predictor.losses import accuracy_loss
from nas_predictor.metrics import column_mape, kendall_tau, summarize
from nas_predictor.model import ROOFLINE_READOUTS, NARFormerV2, build_model
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
    variants: "ClassVariants | None" = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ClassVariants:
    """For each training cell, the encoded members of its equivalence class (the cell included).

    Member j of cell i is ``pool`` row ``member_ids[offsets[i] + j]``, for j < ``counts[i]``; flat
    arrays, so a batch draws its variants in one vectorised step.
    """

    pool: GraphBatch
    member_ids: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor

    def draw(self, idx: torch.Tensor, generator: torch.Generator) -> GraphBatch:
        """One uniformly random class member for each cell in ``idx``."""
        pick = (torch.rand(len(idx), generator=generator) * self.counts[idx]).long()
        return self.pool.select(self.member_ids[self.offsets[idx] + pick])


def _warm_ema(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], Any], None]:
    """AveragedModel's update with the decay ramped up as min(decay, (1 + n) / (10 + n))."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: Any) -> None:
        n = float(num_averaged)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


def class_variants(
    tokenizer: CellTokenizer, space: Any, archs: list[str], graphs: list[ArchGraph], cells: np.ndarray
) -> ClassVariants:
    """Variants of ``cells`` (indices into ``archs``/``graphs``, one arch per space cell) for
    ``train.equivalence_augment``; the pool holds each distinct member once."""
    position = {a: i for i, a in enumerate(archs)}
    pool_rows: dict[int, int] = {}
    member_ids: list[int] = []
    offsets: list[int] = []
    counts: list[int] = []
    for cell in cells:
        members = [position.get(m) for m in space.equivalent_archs(archs[cell])]
        members = [m for m in members if m is not None] or [int(cell)]
        offsets.append(len(member_ids))
        counts.append(len(members))
        member_ids.extend(pool_rows.setdefault(m, len(pool_rows)) for m in members)
    pool = tokenizer.encode([graphs[m] for m in pool_rows])
    return ClassVariants(pool, torch.tensor(member_ids), torch.tensor(offsets), torch.tensor(counts))


BUCKET_CHUNK = 64  # batches per size-sorted chunk with train.bucket_by_size


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, sizes: np.ndarray | None = None,
) -> list[torch.Tensor]:
    """One epoch's batches of item indices: a random permutation cut into batches, or with ``sizes``
    each chunk of BUCKET_CHUNK batches of the permutation sorted by size before cutting and the batch
    order shuffled (every item still appears exactly once per epoch)."""
    perm = torch.randperm(n, generator=generator)
    if sizes is None:
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    batches = []
    chunk = batch_size * BUCKET_CHUNK
    for c in range(0, n, chunk):
        part = perm[c : c + chunk]
        part = part[torch.from_numpy(np.argsort(sizes[part.numpy()], kind="stable"))]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in order]


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


def load_accuracy_table(cfg: ExperimentConfig, data_dir: str | None = None) -> Any:
    """The labelled cells of ``cfg.data``: NAS-Bench-201 (shared CSV or official .pth) or NAS-Bench-101
    (shared subset, repeats of a cell merged, or the official tfrecord)."""
    if cfg.data.benchmark == "nb101":
        if cfg.data.table_file is None:
            return load_nb101_subset(data_dir).merged()
        return load_nb101_tfrecord(cfg.data.table_file)
    return load_table(cfg.data.table_file, data_dir)


def prepare_data(cfg: ExperimentConfig, data_dir: str | None = None) -> PreparedData:
    space = get_space(cfg.space)
    table = load_accuracy_table(cfg, data_dir)
    train_labels = table.column(cfg.data.train_target)
    eval_labels = table.column(cfg.data.eval_target)
    n = len(table)
    if cfg.data.split == "paper":
        split = paper_split(n, cfg.data.n_train, cfg.data.n_valid)
    else:
        split = random_split(n, cfg.data.n_train, cfg.data.n_valid, cfg.data.split_seed)
    if cfg.data.test_on == "rest":
        split = held_out(split)
        if split.test.size == 0:
            raise ConfigError(f"data.test_on 'rest': {cfg.data.n_train} train + {cfg.data.n_valid} validation "
                              f"cells leave none of the {n} to test on")
    graphs = [space.to_graph(a) for a in table.arch_strs]
    return PreparedData(
        archs=table.arch_strs, graphs=graphs, train_idx=split.train, valid_idx=split.valid, test_idx=split.test,
        train_labels=train_labels, eval_labels=eval_labels, space_vocab=tuple(space.op_vocab),
    )


@dataclass
class MemberResult:
    model: NARFormerV2
    best_epoch: int
    best_valid_tau: float  # selection score of the kept epoch: tau, or -MAPE with select_metric "mape"
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    monitor_seconds: float = 0.0
    # (epoch, training seconds so far, predictions on the probe cells) every train.curve_every epochs
    snapshots: list[tuple[int, float, np.ndarray]] = field(default_factory=list)
    # seconds between the request to train this member and its first step (worker start-up)
    start_delay: float = 0.0


@dataclass
class CurveProbe:
    """Predictions on fixed cells during training, for time-to-tau curves. Picklable, so members
    trained in worker processes can carry it."""

    batch: GraphBatch
    batch_size: int

    def __call__(self, model: NARFormerV2, device: torch.device) -> np.ndarray:
        return _predict(model, self.batch, device, self.batch_size)


def _predict(model: NARFormerV2, batch: GraphBatch, device: torch.device, batch_size: int) -> np.ndarray:
    model.eval()
    sizes = getattr(batch, "sizes", None)  # whole networks: batches of similar sizes (size_batches)
    order = np.argsort(sizes, kind="stable") if sizes is not None else np.arange(len(batch))
    parts = (size_batches(order, sizes, batch_size, device.type) if sizes is not None
             else [order[i : i + batch_size] for i in range(0, len(batch), batch_size)])
    outs = []
    with torch.inference_mode():
        for part in parts:
            outs.append(model(batch.select(part).to(device)).float().cpu())
    out = torch.cat(outs).numpy()
    restored = np.empty_like(out)
    restored[order] = out
    return restored


def train_member(
    cfg: ExperimentConfig, train: CellData, valid: CellData, seed: int, device: torch.device, progress: bool = True,
    desc: str = "train", probe: CurveProbe | None = None, on_epoch: Callable[[int], None] | None = None,
) -> MemberResult:
    """Train one model; keep the epoch with the best Kendall tau on the validation cells' own labels.

    ``probe`` (optional, every ``train.curve_every`` epochs) snapshots predictions on held-out cells for
    a time-to-tau curve; its own run time is excluded from the training time.
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
    if tc.weight_decay > 0:
        optim = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    else:
        optim = torch.optim.Adam(model.parameters(), lr=tc.lr)
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
    valid_np = valid.labels.numpy()
    best_tau, best_epoch, best_state = -math.inf, -1, None
    top_tau = -math.inf
    history: list[dict[str, float]] = []
    snapshots: list[tuple[int, float, np.ndarray]] = []
    start = time.perf_counter()
    monitor_seconds = 0.0
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
        valid_pred = _predict(scored, valid.batch, device, tc.eval_batch_size)
        entry = {"epoch": epoch, "loss": total / len(train)}
        if tc.select_metric == "mape":  # selection score: higher is better
            entry["valid_mape"] = column_mape(valid_np, valid_pred)
            val_tau = -entry["valid_mape"]
        else:
            val_tau = kendall_tau(valid_np, valid_pred)
            if math.isnan(val_tau):
                val_tau = -1.0
            entry["valid_tau"] = val_tau
        if probe is not None and tc.curve_every and (epoch + 1) % tc.curve_every == 0:
            m0 = time.perf_counter()
            snapshot = probe(scored, device)
            monitor_seconds += time.perf_counter() - m0
            entry["train_seconds"] = time.perf_counter() - start - monitor_seconds
            snapshots.append((epoch, entry["train_seconds"], snapshot))
        history.append(entry)
        if on_epoch is not None:
            on_epoch(epoch)
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
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return MemberResult(
        model, best_epoch, best_tau, history, time.perf_counter() - start - monitor_seconds, monitor_seconds,
        snapshots,
    )


# Member m of an ensemble trained with train.seed = s uses seed s + MEMBER_SEED_STRIDE * m, so runs with
# neighbouring seeds (a benchmark's seeds 0..4) never share a member.
MEMBER_SEED_STRIDE = 1000


_PROGRESS: Any = None  # a worker process's queue for per-epoch progress, set by the pool initializer


def _init_worker(progress_queue: Any) -> None:
    global _PROGRESS
    _PROGRESS = progress_queue


def _train_member_worker(
    cfg_json: str, train: CellData, valid: CellData, seed: int, device: str, threads: int,
    probe: CurveProbe | None,
) -> dict[str, Any]:
    """Entry point of a worker process: train one member with its own thread budget."""
    started_at = time.time()
    torch.set_num_threads(threads)
    cfg = validate_config(json.loads(cfg_json), "worker config")  # accuracy or latency experiment
    on_epoch = (lambda epoch: _PROGRESS.put(epoch)) if _PROGRESS is not None else None
    result = train_member(cfg, train, valid, seed, torch.device(device), progress=False, probe=probe,
                          on_epoch=on_epoch)
    state = {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}
    return {"state": state, "best_epoch": result.best_epoch, "best_valid_tau": result.best_valid_tau,
            "history": result.history, "seconds": result.seconds, "monitor_seconds": result.monitor_seconds,
            "snapshots": result.snapshots, "started_at": started_at}


def train_members(
    cfg: ExperimentConfig, train: CellData, valid: CellData, device: torch.device, progress: bool = True,
    probe: CurveProbe | None = None,
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
                         f"{cfg.name} member {m + 1}/{tc.ensemble}" if tc.ensemble > 1 else cfg.name, probe)
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
        futures = {pool.submit(_train_member_worker, cfg.model_dump_json(), train, valid, s, "cpu", threads, probe): m
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


def _parallel(cfg: ExperimentConfig, members: list[MemberResult]) -> bool:
    return min(cfg.train.workers, len(members)) > 1 and resolve_device(cfg.train.device).type == "cpu"


def _monitor_wall_seconds(cfg: ExperimentConfig, members: list[MemberResult]) -> float:
    """Wall time the curve snapshots added: summed for sequential members, the largest for parallel ones."""
    costs = [m.monitor_seconds for m in members]
    return max(costs) if _parallel(cfg, members) else sum(costs)


def ensemble_curve(
    cfg: ExperimentConfig, data: PreparedData, members: list[MemberResult], prep_seconds: float
) -> list[dict[str, float]]:
    """Tau of the ensemble (mean of the members' snapshots) against the eval target at each snapshot.

    ``train_seconds`` is the wall time to train every member that far: data preparation plus the
    members' times, summed when they train one after another, the slowest when they train in parallel.
    """
    if not members or not members[0].snapshots:
        return []
    truth = data.eval_labels[data.test_idx]
    test_archs = [data.archs[i] for i in data.test_idx]
    space = get_space(cfg.space) if cfg.predict.average_equivalent else None
    curve = []
    for k in range(min(len(m.snapshots) for m in members)):
        epoch = members[0].snapshots[k][0]
        times = [m.start_delay + m.snapshots[k][1] for m in members]
        pred = np.mean([m.snapshots[k][2] for m in members], axis=0)
        entry = {"epoch": epoch, "train_seconds": prep_seconds + (max(times) if _parallel(cfg, members) else sum(times)),
                 "kendall_tau_plain": kendall_tau(truth, pred)}
        if space is not None:
            pred = class_mean(space, test_archs, None, known=dict(zip(test_archs, pred)), partial=True)
        entry["kendall_tau"] = kendall_tau(truth, pred)
        curve.append(entry)
    return curve


def evaluate_prepared(predictor: Predictor, data: PreparedData, cfg: ExperimentConfig) -> dict[str, Any]:
    """Metrics on the test cells (all of NB201) against the evaluation target, from one prediction pass.

    ``kendall_tau`` follows ``predict.average_equivalent``; ``kendall_tau_plain`` scores each cell alone.
    """
    t1 = time.perf_counter()
    test_archs = [data.archs[i] for i in data.test_idx]
    pred, plain = predictor.predict_with_plain(
        test_archs, [data.graphs[i] for i in data.test_idx], cfg.train.eval_batch_size, cfg.predict.average_equivalent
    )
    predict_seconds = time.perf_counter() - t1
    truth = data.eval_labels[data.test_idx]
    unseen = ~np.isin(data.test_idx, np.concatenate([data.train_idx, data.valid_idx]))
    return {
        "num_archs": int(len(data.test_idx)),
        **summarize(truth, pred),
        "average_equivalent": cfg.predict.average_equivalent,
        "kendall_tau_plain": kendall_tau(truth, plain),
        "kendall_tau_unseen": kendall_tau(truth[unseen], pred[unseen]),
        "kendall_tau_train_target": kendall_tau(data.train_labels[data.test_idx], pred),
        "predict_seconds": predict_seconds,
    }


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
    if cfg.train.equivalence_augment:
        train.variants = class_variants(tokenizer, get_space(cfg.space), data.archs, data.graphs, data.train_idx)
    valid = encode_cells(
        tokenizer, [data.graphs[i] for i in data.valid_idx], data.train_labels[data.valid_idx] * scale,
        f"{cfg.data.train_target} (validation)",
    )
    probe = None
    if cfg.train.curve_every:
        # Time-to-tau curve on all test cells (the averaged tau needs every member of a class).
        probe = CurveProbe(tokenizer.encode([data.graphs[i] for i in data.test_idx]), cfg.train.eval_batch_size)
    prep_seconds = time.perf_counter() - t0
    members = train_members(cfg, train, valid, device, progress, probe)
    # Wall time of data preparation + training, without the optional curve monitoring.
    train_seconds = time.perf_counter() - t0 - _monitor_wall_seconds(cfg, members)
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
            {"seed": cfg.train.seed + MEMBER_SEED_STRIDE * i, "best_epoch": m.best_epoch, "best_valid_tau": m.best_valid_tau,
             "train_seconds": m.seconds}
            for i, m in enumerate(members)
        ],
        "train_seconds": train_seconds,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "history": [m.history for m in members],
        "curve": ensemble_curve(cfg, data, members, prep_seconds),
    }
    if out_dir is not None:
        out = Path(out_dir)
        predictor.meta["metrics"] = {k: results[k] for k in ("kendall_tau", "mape", "num_archs")}
        predictor.save(out / "predictor.pt")
        atomic_write_json(results, out / "results.json")
        results["checkpoint"] = str(out / "predictor.pt")
    results["predictor"] = predictor
    return results
