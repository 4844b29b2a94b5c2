"""NAS-Bench-201 as an opaque NNI model space: our predictor-guided search through the generic
whole-network path against NNI's own RegularizedEvolution, TPE and Random (issue 29).

Every run is an NNI ``NasExperiment`` (sequential engine) on the hub's ``NasBench201`` model space, scored
by ``NB201TableBenchmark`` (the real 200-epoch table), ``max_trial_number`` = the budget:

- ``ours-opaque``: ``PredictorGuidedStrategy(whole_network=True, input_shape=(1, 3, 32, 32))``: the space
  is searched through its NNI labels only; every candidate is read as a whole-network graph (348 nodes,
  the fast graph path of docs/nni.md) and the online surrogate is NAR-Former V2 on the network tokenizer.
  Nothing of the cell encoding is used;
- ``ours-cell``: the same strategy on the cell path NNI's NAS-Bench-201 space gets by default (the
  reference the opaque run must come within 0.10 of at 100 evaluations);
- ``nni-evolution``: ``RegularizedEvolution(population_size=20, sample_size=5)`` (our evolution's
  settings; NNI's default population of 100 is a random search at budget 100), mutation probability 0.05;
- ``nni-tpe``: NNI's ``TPE`` with its defaults; ``nni-random``: NNI's ``Random`` (dedup on).

CIFAR-10: the search sees the ``cifar10-valid`` validation accuracy; the number reported is the ``cifar10``
test accuracy of the architecture the run returns (the best one by validation accuracy). CIFAR-100: our
table holds the test accuracy only, so the search sees it and it is reported (the same for every strategy).

Our two strategies stop once they have evaluated the global optimum of what the search sees (this cannot
change what they return; ``--no-early-stop`` runs the whole budget, the setting the wall-time target is
read on). Each run records its wall time and, for ours, the surrogate's fits and fit seconds.

Resumable: each finished (dataset, strategy, seed) is appended to the results JSON at once, with the commit
it ran; ``--fresh`` runs the selected ones again where they came from other code (after a strategy changed).

    python benchmarks/search_nni_opaque_nb201.py --datasets cifar10 cifar100 --seeds $(seq 0 19)
    python benchmarks/search_nni_opaque_nb201.py --strategies ours-opaque --seeds 0 1 2 --no-early-stop \
        --out benchmarks/results/search_nni_opaque_nb201_full_budget.json
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS, append_locked, code_commit, command_line, load_results, machine, save_results, update_locked, welch,
)
from search_nni_nb201 import best_curve, mean_std, run_experiment  # noqa: E402

import torch  # noqa: E402

STRATEGIES = ("ours-opaque", "ours-cell", "nni-evolution", "nni-tpe", "nni-random")
BASELINES = ("nni-evolution", "nni-tpe", "nni-random")
DATASETS = ("cifar10", "cifar100")
BUDGETS = (25, 50, 100)
INPUT_SHAPE = (1, 3, 32, 32)


def make_strategy(label: str, seed: int, target: float | None):
    from nni.nas.strategy import TPE, Random, RegularizedEvolution

    from strategies.nni_bridge import PredictorGuidedStrategy

    if label == "ours-opaque":
        return PredictorGuidedStrategy(seed=seed, target=target, whole_network=True, input_shape=INPUT_SHAPE,
                                       space_name="nni-NasBench201-opaque")
    if label == "ours-cell":
        return PredictorGuidedStrategy(seed=seed, target=target)
    if label == "nni-evolution":
        return RegularizedEvolution(population_size=20, sample_size=5, seed=seed)
    if label == "nni-tpe":
        return TPE(seed=seed)
    if label == "nni-random":
        return Random(seed=seed)
    raise ValueError(label)


def one_run(dataset: str, label: str, seed: int, budget: int, space, evaluator, early_stop: bool,
            workdir: str, code: str) -> dict:
    optimum = evaluator.oracle.global_optimum()
    strategy = make_strategy(label, seed, optimum["search_value"] if early_stop else None)
    wall = run_experiment(space, evaluator, strategy, budget, workdir)
    models = [m for m in strategy.engine.list_models() if m.metric is not None]
    archs = [evaluator.to_arch(m.sample) for m in models]
    curve = best_curve(archs, evaluator.oracle)

    def at(b: int) -> float:
        return curve[min(b, len(curve)) - 1]["report"]

    reached = next((n for n, p in enumerate(curve, 1) if p["value"] >= optimum["search_value"] - 1e-9), None)
    entry = {"dataset": dataset, "strategy": label, "seed": seed, "budget": budget,
             "best_test": {str(b): at(b) for b in BUDGETS if b <= budget},
             "evaluations_to_optimum": reached, "evaluations": len(archs), "distinct_cells": len(set(archs)),
             "wall_seconds": wall, "curve": [p["report"] for p in curve], "evaluated_archs": archs, "code": code}
    if label.startswith("ours"):
        summary = strategy.summary()
        entry.update(stop=summary["stop"], surrogate_fits=summary["surrogate_fits"],
                     surrogate_fit_seconds=summary["surrogate_fit_seconds"])
    return entry


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for dataset in DATASETS:
        rows: dict = {}
        for label in STRATEGIES:
            items = [r for r in runs if r["strategy"] == label and r["dataset"] == dataset]
            if not items:
                continue
            row: dict = {"seeds": sorted(r["seed"] for r in items)}
            for b in BUDGETS:
                vals = [r["best_test"][str(b)] for r in items if str(b) in r["best_test"]]
                if vals:
                    row[f"best_test_{b}"] = {**mean_std(vals), "worst": min(vals)}
                    row[f"reached_{b}"] = statistics.mean(
                        r["evaluations_to_optimum"] is not None and r["evaluations_to_optimum"] <= b for r in items)
            walls = [r["wall_seconds"] for r in items]
            row["wall_seconds"] = {**mean_std(walls), "max": max(walls)}
            full = [r["wall_seconds"] for r in items if r["evaluations"] >= r["budget"]]
            if full:  # runs that spent the whole budget (no early stop): the wall-time target
                row["wall_seconds_full_budget"] = {**mean_std(full), "max": max(full)}
            rows[label] = row
        if rows:
            out[dataset] = rows
    return out


def compare(runs: list[dict]) -> dict:
    """ours-opaque against each baseline and against ours-cell, per dataset and budget, on shared seeds."""
    out: dict = {}
    for dataset in DATASETS:
        by = {label: {r["seed"]: r for r in runs if r["strategy"] == label and r["dataset"] == dataset}
              for label in STRATEGIES}
        ours = by["ours-opaque"]
        if not ours:
            continue
        rows: dict = {}
        for other in ("ours-cell", *BASELINES):
            seeds = sorted(set(ours) & set(by[other]))
            if len(seeds) < 2:
                continue
            rows[other] = {"seeds": len(seeds)}
            for b in BUDGETS:
                a = [ours[s]["best_test"][str(b)] for s in seeds]
                c = [by[other][s]["best_test"][str(b)] for s in seeds]
                rows[other][str(b)] = {"ours_opaque": statistics.mean(a), "other": statistics.mean(c), **welch(a, c)}
        out[dataset] = rows
    return out


def append_run(path: Path, results: dict, entry: dict) -> dict:
    # "optimum" is merged: a process searching only CIFAR-100 knows only that dataset's optimum
    return append_locked(path, results, entry, key=lambda r: (r["dataset"], r["strategy"], r["seed"]),
                         summarize=summarize, merge_dicts=("optimum",), derived={"comparison": compare})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["cifar10"], choices=DATASETS)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(20)))
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--no-early-stop", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--summarize", action="store_true", help="only recompute the summary and the comparison")
    ap.add_argument("--fresh", action="store_true",
                    help="run the selected (dataset, strategy, seed) runs again where their results came from other "
                         "code than this commit (after a change to a strategy); resumable like any run")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out) if args.out else RESULTS / "search_nni_opaque_nb201.json"
    if args.summarize:
        results = load_results(out_path)
        results["summary"] = summarize(results.get("runs", []))
        results["comparison"] = compare(results.get("runs", []))
        save_results(out_path, results)
        return 0

    from strategies.nni_bridge import require_nni

    require_nni()
    import nni
    from nni.nas.hub.pytorch import NasBench201
    from nni.runtime.log import silence_stdout

    from strategies.nni_bridge import NB201TableBenchmark

    silence_stdout()
    logging.getLogger("nni").setLevel(logging.WARNING)
    results = load_results(out_path)
    results.update({"benchmark": "search_nni_opaque_nb201", "machine": machine(), "budgets": list(BUDGETS),
                    "budget": args.budget, "nni": getattr(nni, "__version__", None), "input_shape": list(INPUT_SHAPE),
                    "evolution_settings": {"population_size": 20, "sample_size": 5, "mutation_prob": 0.05}})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    code = code_commit()  # the code this process runs: Python has read it by now
    if args.fresh:
        if code.endswith("uncommitted changes"):
            raise SystemExit("--fresh reruns on committed code only (the runs record their commit): commit first")
        selected = {(d, s, n) for d in args.datasets for s in args.strategies for n in args.seeds}

        def drop_stale(on_disk: dict) -> dict:
            runs = on_disk.get("runs", [])
            kept = [r for r in runs if (r["dataset"], r["strategy"], r["seed"]) not in selected or r.get("code") == code]
            if len(kept) == len(runs):
                return on_disk
            print(f"--fresh: {len(runs) - len(kept)} runs from other code dropped", flush=True)
            return {**on_disk, "runs": kept, "summary": summarize(kept), "comparison": compare(kept)}

        results = {**update_locked(out_path, drop_stale), **{k: v for k, v in results.items() if k != "runs"}}
    done = {(r["dataset"], r["strategy"], r["seed"]) for r in results.get("runs", [])}
    space = NasBench201()
    with tempfile.TemporaryDirectory(prefix="nni-opaque-") as workdir:
        for dataset in args.datasets:
            evaluator = NB201TableBenchmark(dataset)
            results.setdefault("optimum", {})[dataset] = evaluator.oracle.global_optimum()
            for seed in args.seeds:  # seeds outermost: a stopped run holds every strategy on its first seeds
                for label in args.strategies:
                    if (dataset, label, seed) in done:
                        continue
                    entry = one_run(dataset, label, seed, args.budget, space, evaluator, not args.no_early_stop,
                                    workdir, code)
                    results = append_run(out_path, results, entry)
                    best = ", ".join(f"@{b} {v:.2f}" for b, v in entry["best_test"].items())
                    print(f"[{dataset} {label} seed {seed}] best test {best}; optimum at "
                          f"{entry['evaluations_to_optimum']}; {entry['evaluations']} evaluations "
                          f"({entry['wall_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
