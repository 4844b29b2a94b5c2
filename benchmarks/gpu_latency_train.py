"""Stage 4 of benchmarks/gpu_latency.py: train and score the latency_real models on the labels."""

from __future__ import annotations

import argparse
import math
import time
import types
from pathlib import Path
from typing import Any

from common import append_locked, load_results, save_results
from gpu_latency_common import (CONFIG, LOFO_MODELS, MIN_EPOCHS, MIN_OPS, NEEDS_OPS, NEURAL, RESERVE_S, SETTING,
                                SHIP_S, Budget, log)


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


