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
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import load_results, machine, save_results  # noqa: E402

# the stages live in sibling modules (one per stage); the names are re-exported for the tests and callers
from gpu_latency_common import (DATASETS, DRY, FOLDERS, MODEL_ORDER, PER_FAMILY, PER_KIND,  # noqa: E402,F401
                                RESERVE_S, RESULTS_FILE, ROOT, SAVE_DIR, SEEDS, SETTING, SHARES, SHIP_NAME, SHIP_S,
                                Budget, UsageError, log)
from gpu_latency_label import cpu_torch_timer, label_stage, ort_cuda_reason, real_networks_reason  # noqa: E402
from gpu_latency_train import fingerprint, train_and_score, undefined_as_null  # noqa: E402,F401


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
