"""GPU latency in one lent session: label, train, score and (optionally) ship a PyTorch CUDA predictor (issue 27).

A GPU machine is lent rarely and briefly (one command of at most 10 minutes), so everything a GPU
predictor needs is one prepared, resumable command, run from the repository root:

    python benchmarks/gpu_latency.py                 # 9 minutes (--minutes), labels + training + results
    python benchmarks/gpu_latency.py --ship          # the same, then ship it as latency-gpu-torch
    python benchmarks/gpu_latency.py --dry-run       # the whole pipeline on the CPU, tiny, in a temp folder (CI)

Stages, each bounded by its share of the budget (stopped cleanly at its deadline: every label is
already on disk, so a second lent session continues where the first stopped):

1. ``--provider torch-cuda`` labels of the generated families (every family of
   ``search_spaces.cnn_families``, extended space, batch 1) into ``benchmarks/latency_dataset/gpu_torch_b1``:
   round-robin over the families, so a stop at any point leaves a balanced set (50 % of the budget);
2. the operator micro-benchmark (every kind of ``search_spaces.operators``, timed as the torch modules
   of ``search_spaces.operators_torch``) into ``gpu_torch_b1_ops`` (10 %);
3. onnxruntime's CUDA provider into ``gpu_ort_cuda_b1`` / ``gpu_ort_cuda_b1_ops`` (8 % + 4 %) when
   ``onnxruntime.get_available_providers()`` has it; otherwise skipped (the lent GPU machines have a
   CPU-only onnxruntime) and its share goes to training;
4. training with the CPU recipe (``configs/latency_cpu_ort.yaml``) pointed at those folders
   (``data.dataset_dir``, ``encoding.op_latency``, ``train.device=cuda``), the epochs fitted to the
   time left from a one-epoch pilot; the models and tables of ``benchmarks/latency_real.py`` on the
   generated-family test split (seed 0 first, more seeds and leave-one-family-out while time is left);
5. ``--ship``: ``tools/ship_latency.py --name latency-gpu-torch`` on the grounded checkpoint(s).

``--train-only`` labels nothing and spends the budget on stage 4 (more seeds, leave-one-family-out) on
the labels already there.

Results go to ``benchmarks/results/latency_gpu.json``: what each stage did, what was skipped and why,
and only numbers measured in this folder's labels. Runs are keyed by the datasets' label counts: a
session that added labels re-trains, and the summary reads only runs on the current labels. Real
torchvision/timm networks are scored only where they can be labelled on the GPU; the lent machines
lack torchvision and timm, and the JSON says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import RESULTS, append_locked, load_results, machine, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "benchmarks" / "latency_dataset"
CONFIG = ROOT / "configs" / "latency_cpu_ort.yaml"
RESULTS_FILE = RESULTS / "latency_gpu.json"
SAVE_DIR = ROOT / "runs" / "latency_gpu"
SETTING = "gpu_torch_b1"
FOLDERS = {"networks": "gpu_torch_b1", "operators": "gpu_torch_b1_ops",
           "ort_networks": "gpu_ort_cuda_b1", "ort_operators": "gpu_ort_cuda_b1_ops"}
SHIP_NAME = "latency-gpu-torch"
PER_FAMILY, PER_KIND = 200, 150  # the CPU recipe's targets; a session stops at its share long before
# Budget shares of the labelling stages; what they leave (and an unavailable stage's share) trains.
SHARES = {"networks": 0.50, "operators": 0.10, "ort_networks": 0.08, "ort_operators": 0.04}
RESERVE_S = 20.0  # kept for writing the results
SHIP_S = 60.0  # ship_latency.py re-prepares the data and evaluates two dtypes
MIN_OPS = 10  # nas_predictor.op_latency fits no per-operator model on fewer
MIN_EPOCHS = 5
SEEDS = (0, 1, 2)
MODEL_ORDER = ("grounded", "op_sum", "op_sum_fit", "flops_memory_line", "gbdt", "graph", "nnlp_gnn")
NEURAL = ("grounded", "graph", "nnlp_gnn")
NEEDS_OPS = ("grounded", "op_sum", "op_sum_fit")
LOFO_MODELS = ("grounded", "op_sum_fit", "flops_memory_line")
# --dry-run: the fastest families to export and run on a CPU; 3 seeds each so the split has a test
# network per family; 5 seeds of 2 kinds = the op model's minimum of 10
DRY = {"families": ("nasbench201", "convnext", "shufflenet"), "per_family": 3, "kinds": ("conv", "softmax"),
       "per_kind": 5, "epochs": 1, "op_model_epochs": 50, "lofo_families": 1,
       "models": ("grounded", "op_sum_fit", "flops_memory_line"), "seeds": (0,),
       # 3 networks per family: 1 train, 1 valid, 1 test
       "overrides": ("data.train_fraction=0.67", "data.valid_fraction=0.5", "train.threads=1")}


class UsageError(Exception):
    """Bad input: one line, exit status 2."""


def log(start: float, message: str) -> None:
    print(f"[gpu_latency {time.monotonic() - start:6.1f} s] {message}", flush=True)


# --- the CPU stand-in for the CUDA timer (--dry-run) ------------------------------------------------------

def cpu_torch_timer(module: torch.nn.Module, input_shape: Sequence[int], *, name: str | None = None,
                    warmup: int = 1, repeats: int = 3):
    """What ``measure_torch_cuda`` returns, timed on the CPU with the wall clock: the dry run's stand-in
    (the label says so in its notes and execution providers; its numbers never leave the temp folder)."""
    from nas_predictor.latency.estimators import summarize
    from nas_predictor.latency.record import (LatencyLabel, RawStats, RobustStats, cpu_model, machine_id,
                                              software_versions, stored_runs, utc_timestamp)
    from nas_predictor.latency.timing import PerfClock, timed_runs

    module = module.eval()
    x = torch.randn(*input_shape)
    with torch.no_grad():
        times = timed_runs(lambda: module(x), PerfClock(), warmup=warmup, repeats=repeats)
    runs = summarize(times)
    return LatencyLabel(
        model=name or type(module).__name__, label_ms=runs.median_ms, estimator="median-eager", provider="torch-cuda",
        execution_providers=[f"torch {torch.__version__} CPU (dry run: stands in for CUDA)"],
        batch_size=int(input_shape[0]), raw=RawStats(runs.median_ms, runs.p10_ms, runs.min_ms, runs.max_ms, runs.runs),
        robust=RobustStats(min_of_pass_ms=runs.min_ms, pass_min_ms=[runs.min_ms], median_ms=runs.median_ms,
                           eager_ms=runs.median_ms),
        cpu_model=cpu_model(), machine=machine_id(), protocol={"warmup_runs": warmup, "repeats": repeats},
        notes=["dry run: CPU wall-clock timing standing in for CUDA events"], timestamp=utc_timestamp(),
        target_runs_ms=stored_runs([times]), **software_versions())


# --- stages --------------------------------------------------------------------------------------------

class Budget:
    def __init__(self, minutes: float) -> None:
        self.start = time.monotonic()
        self.total_s = 60.0 * minutes

    def left(self) -> float:
        return self.total_s - (time.monotonic() - self.start)


def ort_cuda_reason() -> str | None:
    """None when onnxruntime can run on CUDA here; otherwise why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (it offers {', '.join(providers)}); "
                "install onnxruntime-gpu to label with it")
    return None


def label_stage(name: str, folder: Path, names: Sequence[str], per: int, *, generator: str, provider: str,
                minutes: float, torch_timer: Any, space: str | None, start: float) -> dict[str, Any]:
    """One resumable ``dataset build`` chunk, stopped cleanly after ``minutes``."""
    from search_spaces.cnn_families.dataset import LatencyDataset, build_dataset

    before = len(LatencyDataset(folder).labels) if (folder / "labels.jsonl").is_file() else 0
    log(start, f"{name}: labelling {len(names)} {'kinds' if generator == 'operators' else 'families'} with "
               f"provider {provider} into {folder} for up to {minutes * 60:.0f} s ({before} labels there)")
    command = (f"nas-predictor dataset build {'--ops ' if generator == 'operators' else ''}--provider {provider} "
               f"--families {','.join(names)} --per-family {per}{' --space ' + space if space else ''} --out {folder}")
    report = build_dataset(folder, list(names), per, provider=provider, space=space, generator=generator,
                           max_minutes=minutes, progress=False, subprocess_export=False, command=command,
                           torch_timer=torch_timer if provider == "torch-cuda" else None)
    ds = LatencyDataset(folder)
    log(start, f"{name}: measured {report.measured}, failed {report.failed} in {report.seconds:.0f} s "
               f"(stopped: {report.stopped}); {len(ds.labels)} labels in all, {report.remaining} to go")
    return {"stage": name, "folder": str(folder), "provider": provider, "seconds": round(report.seconds, 1),
            "measured": report.measured, "failed": report.failed, "stopped": report.stopped,
            "labels": len(ds.labels), "remaining": report.remaining, "counts": ds.counts()}


def undefined_as_null(value: Any) -> Any:
    """``value`` with every NaN / infinity (a rank correlation of a constant prediction) as None: strict
    JSON has neither, and an undefined figure is not a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: undefined_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [undefined_as_null(v) for v in value]
    return value


def fingerprint(nets: Path, ops: Path) -> dict[str, int]:
    """The label counts the predictor is trained on: a run is current while these are unchanged."""
    from search_spaces.cnn_families.dataset import LatencyDataset

    def count(p: Path) -> int:
        return len(LatencyDataset(p).labels) if (p / "labels.jsonl").is_file() else 0

    return {"networks": count(nets), "operators": count(ops)}


def train_and_score(args: argparse.Namespace, paths: dict[str, Path], budget: Budget, results: dict[str, Any],
                    out_path: Path, start: float) -> dict[str, Any]:
    """Stage 4: the latency_real models on the generated-family test split, as many as the time allows."""
    import latency_real
    from nas_predictor.config import load_config
    from nas_predictor.latency_experiment import prepare_latency_data, run_latency_experiment
    from nas_predictor.op_latency import fit_from_dataset

    fp = fingerprint(paths["networks"], paths["operators"])
    info: dict[str, Any] = {"dataset": fp, "skipped": {}}

    def summarize(runs: list[dict]) -> dict:
        return latency_real.summarize([r for r in runs if r.get("dataset") == fp])

    stale = [r for r in results.get("runs", []) if r.get("dataset") != fp]
    if stale:  # runs on other label counts than the folders hold now: superseded, trained again below
        results["runs"] = [r for r in results["runs"] if r.get("dataset") == fp]
        results["superseded_runs"] = results.get("superseded_runs", 0) + len(stale)
        results["summary"] = summarize(results["runs"])
        save_results(out_path, results)
    if fp["networks"] == 0:
        info["skipped"]["all models"] = "no network label yet"
        return info
    models = list(args.models)
    overrides = [f"data.dataset_dir={paths['networks']}", f"data.setting={SETTING}",
                 f"train.device={'cpu' if args.dry_run else 'cuda'}", "train.threads=0",
                 f"data.export_workers={args.export_workers}", *args.overrides]
    if args.cache_dir:
        overrides.append(f"data.cache_dir={args.cache_dir}")
    if fp["operators"] >= MIN_OPS:
        overrides.append(f"encoding.op_latency={paths['operators']}")
    else:
        reason = f"{fp['operators']} operator labels; the per-operator model needs at least {MIN_OPS}"
        for m in NEEDS_OPS:
            if m in models:
                info["skipped"][m] = reason
        models = [m for m in models if m not in NEEDS_OPS]
    run_args = types.SimpleNamespace(config=str(CONFIG), save_dir=str(args.save_dir), quiet=True)

    def key(r: dict) -> tuple:
        return (r["seed"], r["model"], r.get("test_family"))

    done = {key(r) for r in results.get("runs", []) if r.get("dataset") == fp}
    epochs = args.epochs
    epoch_s: float | None = None

    def room() -> float:
        return budget.left() - RESERVE_S - (SHIP_S if args.ship else 0.0)

    def fits(model: str, prep_s: float) -> tuple[bool, str]:
        need = prep_s + (1.3 * epochs * epoch_s + 5.0 if model in NEURAL and epoch_s else 5.0)
        return need <= room(), f"needs ~{need:.0f} s, {max(room(), 0):.0f} s left"

    def run(name: str, seed: int, records: Any, test_index: Any, family: str | None, extra: list[str]) -> None:
        nonlocal results
        cfg_overrides = [*overrides, *extra, f"data.split_seed={seed}", f"train.seed={seed}", f"train.epochs={epochs}"]
        log(start, f"train: seed {seed}{' held out ' + family if family else ''} {name}"
                   + (f" ({epochs} epochs)" if name in NEURAL else ""))
        entry = undefined_as_null(latency_real.run_seed(name, seed, records, None, test_index, run_args,
                                                        cfg_overrides))
        entry.update({"test_family": family, "dataset": fp, "epochs": epochs if name in NEURAL else None,
                      "num_train": int(len(records.train)), "num_valid": int(len(records.valid)),
                      "num_test": int(len(test_index))})
        results = append_locked(out_path, results, entry, key=key, summarize=summarize)
        shown = entry.get("generated_test")
        log(start, f"train: {name}: " + (f"test MAPE {shown['mape']:.4f}, Acc10 {shown['acc_10pct']:.3f}"
                                         if shown else "no test network in this split"))

    seeds = list(args.seeds)
    prep_s = 0.0  # the last preparation's time: the next one reads the same graphs from the cache
    for seed in seeds:
        todo = [m for m in models if (seed, m, None) not in done]
        if not todo:
            continue
        if room() < prep_s + 10.0:  # checked before the preparation, which is not cheap either
            for m in todo:
                info["skipped"][f"seed {seed} {m}"] = (f"out of time ({max(room(), 0):.0f} s left before preparing "
                                                       "the graphs); rerun with --train-only to continue")
            log(start, f"train: skip seed {seed}: out of time")
            continue
        t0 = time.monotonic()
        cfg = load_config(str(CONFIG), [*overrides, f"data.split_seed={seed}", f"train.seed={seed}"])
        records = prepare_latency_data(cfg, progress=False)
        prep_s = time.monotonic() - t0
        log(start, f"train: seed {seed}: {len(records.train)} train / {len(records.valid)} valid / "
                   f"{len(records.test)} test networks ({prep_s:.0f} s to prepare the graphs)")
        if fp["operators"] >= MIN_OPS:  # fitted once per process: the pilot and every model reuse it
            t0 = time.monotonic()
            fit_from_dataset(str(paths["operators"]), cache_dir=args.cache_dir, workers=args.export_workers,
                             progress=False, seed=seed)
            log(start, f"train: seed {seed}: per-operator model fitted in {time.monotonic() - t0:.0f} s")
        neural = [m for m in todo if m in NEURAL]
        if epoch_s is None and neural and not args.dry_run and room() < 30.0:
            for m in neural:
                info["skipped"][f"seed {seed} {m}"] = (f"out of time ({max(room(), 0):.0f} s left after preparing the "
                                                       "graphs); rerun with --train-only to continue")
            todo = [m for m in todo if m not in NEURAL]
        elif epoch_s is None and neural and not args.dry_run:
            # a one-epoch pilot (its features are built in that epoch too: a cautious figure) gives the
            # time per epoch on this GPU, to fit the epochs into the budget
            pilot = load_config(str(CONFIG), [*overrides, f"train.seed={seed}", "train.epochs=1",
                                              *latency_real.model_overrides(neural[0])])
            epoch_s = max(run_latency_experiment(pilot, progress=False, prepared=records)["train_seconds"], 1e-3)
            left = room() - 10.0 * len(todo)
            epochs = max(0, int(min(args.epochs, left / (1.3 * epoch_s * max(1, len(neural))))))
            info["epoch_seconds"] = round(epoch_s, 3)
            log(start, f"train: one epoch takes {epoch_s:.1f} s; {epochs} epochs per neural model fit "
                       f"(asked {args.epochs})")
            if epochs < min(MIN_EPOCHS, args.epochs):
                log(start, f"train: skip seed {seed} {', '.join(neural)}: {epochs} epochs fit")
                for m in neural:
                    info["skipped"][f"seed {seed} {m}"] = (f"{epochs} epochs of {epoch_s:.1f} s fit in the "
                                                           f"{max(left, 0):.0f} s left (need >= {MIN_EPOCHS}); "
                                                           "rerun with --train-only to continue")
                todo = [m for m in todo if m not in NEURAL]
                epochs = args.epochs
        elif epoch_s is None:
            epoch_s = 0.0
        for name in todo:
            ok, why = fits(name, 0.0)
            if not ok:
                info["skipped"][f"seed {seed} {name}"] = f"out of time ({why}); rerun with --train-only to continue"
                log(start, f"train: skip seed {seed} {name}: out of time ({why})")
                continue
            run(name, seed, records, records.test, None, [])
    # leave one family out: each family held out in turn, while time is left (a later session continues)
    families = list(load_config(str(CONFIG), overrides).data.families)
    lofo_models = [m for m in LOFO_MODELS if m in models]
    if args.lofo and len(families) > 1:
        seed = seeds[0]
        for family in families[:args.lofo_families]:
            todo = [m for m in lofo_models if (seed, m, family) not in done]
            if not todo:
                continue
            ok, why = fits("grounded", prep_s)
            if not ok:
                info["skipped"]["lofo"] = f"out of time at {family} ({why}); rerun with --train-only to continue"
                log(start, f"lofo: stop at {family}: out of time ({why})")
                break
            extra = ["data.split=unseen", f"data.test_family={family}"]
            cfg = load_config(str(CONFIG), [*overrides, *extra, f"data.split_seed={seed}", f"train.seed={seed}"])
            records = prepare_latency_data(cfg, progress=False)
            for name in todo:
                run(name, seed, records, records.test, family, extra)
        if args.lofo_families is not None and len(families) > args.lofo_families:
            info["skipped"]["lofo (other families)"] = (f"dry run: only the first {args.lofo_families} of "
                                                        f"{len(families)} families held out")
    elif args.lofo:
        info["skipped"]["lofo"] = f"{len(families)} family labelled; leave-one-family-out needs two"
    else:
        info["skipped"]["lofo"] = "not asked (--no-lofo)"
    info["epochs"] = epochs
    results_now = load_results(out_path)
    held_out = sorted({r["test_family"] for r in results_now.get("runs", []) if r.get("test_family")
                       and r.get("dataset") == fp}, key=families.index)
    # latency_real's lofo_average is over the families held out so far: say how many of how many
    info["lofo_held_out"] = {"families": held_out, "of": len(families)}
    info["results"] = summarize(results_now.get("runs", []))
    return info


def real_networks_reason() -> str:
    have = [m for m in ("torchvision", "timm") if importlib.util.find_spec(m) is not None]
    if not have:
        return ("torchvision and timm are not installed here: the real networks cannot be built, so none was "
                "labelled on this machine's GPU and no real-network table exists for it (the CPU's is "
                "latency_real.json)")
    return (f"{' and '.join(have)} installed, but this script labels generated families only: the real networks' "
            "GPU labels need their torch modules timed with `measure_torch_cuda` (benchmarks/real_networks.py "
            "builds them); no real-network table for this GPU yet")


def ship(checkpoints: list[Path], start: float) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "tools" / "ship_latency.py"), "--name", SHIP_NAME, "--description",
               "PyTorch CUDA latency (ms, batch 1, CUDA events, eager) of the machine in its metadata: NAR-Former V2 "
               "graph model grounded in per-operator times (configs/latency_cpu_ort.yaml on benchmarks/"
               "latency_dataset/gpu_torch_b1{,_ops}; benchmarks/gpu_latency.py)", *map(str, checkpoints)]
    log(start, "ship: " + " ".join(command[1:4]) + " ...")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"shipped": False, "reason": f"ship_latency.py exited {done.returncode}: {tail[0]}"}
    return {"shipped": True, "name": SHIP_NAME, "checkpoints": [str(c) for c in checkpoints]}


# --- main ----------------------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget of the whole run (default 9)")
    ap.add_argument("--ship", action="store_true", help=f"ship the grounded predictor as {SHIP_NAME}")
    ap.add_argument("--dry-run", action="store_true",
                    help="the whole pipeline on the CPU with tiny counts, in a temporary folder (what CI runs)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where the dataset folders go (default benchmarks/latency_dataset; --dry-run: a temp folder)")
    ap.add_argument("--results", type=Path, default=None,
                    help=f"results JSON (default {RESULTS_FILE.relative_to(ROOT)})")
    ap.add_argument("--epochs", type=int, default=60, help="epochs per neural model, lowered to fit the budget")
    ap.add_argument("--no-lofo", dest="lofo", action="store_false", help="no leave-one-family-out runs")
    ap.add_argument("--train-only", action="store_true",
                    help="label nothing: train and score on the labels the folders hold (a session that completes "
                         "the seeds and leave-one-family-out tables of the last labels instead of adding labels)")
    ap.add_argument("--keep", action="store_true", help="--dry-run: keep the temp folder and print it")
    args = ap.parse_args(argv)
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UsageError(f"--minutes must be a positive number, got {args.minutes}")
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.dry_run and args.ship:
        raise UsageError("--ship writes into nas_predictor/pretrained/; a --dry-run never writes into the repository")
    if args.dry_run and (args.out_dir or args.results):
        raise UsageError("--dry-run writes only into a temporary folder; drop --out-dir / --results")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
    except UsageError as err:
        print(f"gpu_latency.py: error: {err}", file=sys.stderr)
        return 2
    budget = Budget(args.minutes)
    start = budget.start
    tmp = None
    if args.dry_run:
        tmp = Path(tempfile.mkdtemp(prefix="gpu_latency_dry_"))
        out_dir, out_path = tmp / "latency_dataset", tmp / "latency_gpu.json"
        args.save_dir, args.cache_dir, args.export_workers = tmp / "runs", str(tmp / "graph_cache"), 1
        args.epochs, args.models, args.seeds = DRY["epochs"], DRY["models"], DRY["seeds"]
        args.overrides, args.lofo_families = list(DRY["overrides"]), DRY["lofo_families"]
        families, per_family, kinds, per_kind = DRY["families"], DRY["per_family"], DRY["kinds"], DRY["per_kind"]
        torch_timer = cpu_torch_timer
        saved_cache_env = os.environ.get("NAS_PREDICTOR_CACHE")
        os.environ["NAS_PREDICTOR_CACHE"] = args.cache_dir  # nothing of a dry run outlives its temp folder
        log(start, f"dry run on the CPU in {tmp}: {len(families)} families x {per_family} seeds, "
                   f"{len(kinds)} operator kinds x {per_kind} seeds, {args.epochs} epoch; the CPU wall clock "
                   "stands in for CUDA events")
    else:
        if not torch.cuda.is_available():
            print(f"gpu_latency.py: error: torch {torch.__version__} sees no CUDA GPU; run this on a lent GPU "
                  "machine, or with --dry-run to check the pipeline on the CPU", file=sys.stderr)
            return 2
        from search_spaces.cnn_families import FAMILIES
        from search_spaces.operators import KINDS

        os.chdir(ROOT)  # the dataset paths in the trained predictor's config are relative to the repository
        out_dir = args.out_dir or DATASETS.relative_to(ROOT)  # as the CPU config names its folders
        out_path = args.results or RESULTS_FILE
        args.save_dir, args.cache_dir = SAVE_DIR, None
        args.export_workers = max(1, min(12, (os.cpu_count() or 2) - 2))
        args.models, args.seeds, args.overrides, args.lofo_families = MODEL_ORDER, SEEDS, [], None
        families, per_family, kinds, per_kind = FAMILIES, PER_FAMILY, KINDS, PER_KIND
        torch_timer = None
        log(start, f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__} CUDA {torch.version.cuda}; "
                   f"budget {args.minutes:g} min")
    paths = {k: out_dir / v for k, v in FOLDERS.items()}
    restore = None
    if args.dry_run:  # the per-operator model's 1,500 full-batch epochs are most of a CPU dry run's time
        import functools

        import nas_predictor.op_latency as op_latency

        restore = op_latency.fit_op_latency
        op_latency.fit_op_latency = functools.partial(restore, epochs=DRY["op_model_epochs"])
    try:
        return run(args, budget, paths, out_path, families, per_family, kinds, per_kind, torch_timer, start)
    except Exception as err:
        from nas_predictor.errors import NasPredictorError

        if not isinstance(err, NasPredictorError):
            raise
        print(f"gpu_latency.py: error: {err}; every label measured so far is kept, rerun to resume", file=sys.stderr)
        return 2
    finally:
        if restore is not None:
            op_latency.fit_op_latency = restore
        if tmp is not None:
            if saved_cache_env is None:
                os.environ.pop("NAS_PREDICTOR_CACHE", None)
            else:
                os.environ["NAS_PREDICTOR_CACHE"] = saved_cache_env
            if args.keep:
                log(start, f"dry run kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, budget: Budget, paths: dict[str, Path], out_path: Path, families: Sequence[str],
        per_family: int, kinds: Sequence[str], per_kind: int, torch_timer: Any, start: float) -> int:
    from nas_predictor.latency import GpuProtocol

    protocol = GpuProtocol()
    results = load_results(out_path)
    session: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dry_run": args.dry_run,
                               "minutes": args.minutes, "stages": [], "skipped": {}}
    results.update({"benchmark": "latency_gpu", "machine": machine(), "setting": SETTING,
                    "dry_run": args.dry_run,
                    "protocol": (f"PyTorch CUDA (measure_torch_cuda): CUDA events around each forward pass, "
                                 f"{protocol.warmup_runs} warm-up runs, median of {protocol.repeats} eager runs (the "
                                 "CUDA-graph median is stored too), batch 1, float32"
                                 if not args.dry_run else "dry run: CPU wall clock standing in for CUDA events"),
                    "folders": {k: str(v) for k, v in paths.items()}})
    results.setdefault("sessions", []).append(session)
    save_results(out_path, results)
    share_s = budget.total_s
    ort_reason = ort_cuda_reason()
    plan = [("networks", "networks", families, per_family, "torch-cuda", "extended"),
            ("operators", "operators", kinds, per_kind, "torch-cuda", None),
            ("ort_networks", "networks", families, per_family, "cuda", "extended"),
            ("ort_operators", "operators", kinds, per_kind, "cuda", None)]
    for name, generator, names, per, provider, space in plan:
        if args.train_only:
            session["skipped"][name] = "--train-only: no labelling this session"
            continue
        if provider == "cuda" and ort_reason is not None:
            session["skipped"][name] = ort_reason
            log(start, f"{name}: skipped: {ort_reason}")
            continue
        minutes = min(SHARES[name] * share_s, budget.left() - RESERVE_S) / 60.0
        if args.dry_run:
            minutes = max(minutes, 1.0)  # tiny counts: the counts, not the clock, end a dry run's stages
        if minutes <= 0:
            session["skipped"][name] = "out of time"
            continue
        session["stages"].append(label_stage(name, paths[name], names, per, generator=generator, provider=provider,
                                             minutes=minutes, torch_timer=torch_timer, space=space, start=start))
        save_results(out_path, {**load_results(out_path), "sessions": results["sessions"]})
    session["skipped"]["real_networks"] = results["real_networks"] = real_networks_reason()
    log(start, f"real networks: skipped: {results['real_networks']}")
    results = {**load_results(out_path), "sessions": results["sessions"], "real_networks": results["real_networks"]}
    save_results(out_path, results)
    training = train_and_score(args, paths, budget, results, out_path, start)
    results = load_results(out_path)
    results["sessions"][-1] = session
    session["training"] = {k: v for k, v in training.items() if k != "results"}
    session["skipped"].update(training.get("skipped", {}))
    if args.ship:
        checkpoints = sorted(Path(args.save_dir).glob("seed*/grounded/predictor.pt"))
        if not checkpoints:
            session["ship"] = {"shipped": False, "reason": "no grounded predictor was trained"}
        elif budget.left() < SHIP_S:
            session["ship"] = {"shipped": False, "reason": (
                f"{max(budget.left(), 0):.0f} s left; ship later with: python tools/ship_latency.py "
                f"--name {SHIP_NAME} {' '.join(map(str, checkpoints))}")}
        else:
            session["ship"] = ship(checkpoints, start)
        log(start, f"ship: {session['ship']}")
    session["seconds"] = round(time.monotonic() - start, 1)
    save_results(out_path, results)
    summary = results.get("summary", {})
    for model, row in summary.items():
        if "generated_test" in row:
            m = row["generated_test"]["mape"]
            log(start, f"result: {model}: generated-family test MAPE {m['mean']:.4f} +- {m['std']:.4f} "
                       f"over {m['n']} seed(s)")
    for what, why in session["skipped"].items():
        log(start, f"skipped: {what}: {why}")
    log(start, f"done in {session['seconds']:.0f} s; results in {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
