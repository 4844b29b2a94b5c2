"""Searching your own space, trained for real: the digits CNN space of examples/own_space_digits.py under
its latency bound, our predictor-guided search against random search (issue 29).

Every run is the example's stand-alone search (``run_strategy``): budget 30 trained networks (5 epochs
each on 1,078 digits, one torch thread), the bound checked before training (default 0.5 ms, predicted by
the shipped ``latency-cpu-ort``; ``--measured``: timed on this machine). An architecture gets the same
numbers in every run (fixed training seed), so the strategies search one function. Per run it records
the best validation accuracy (what the search maximises; every evaluated network is within the bound),
that network's test accuracy, the best so far after each evaluation, and the wall time (training,
latency checks and predictor fits; the graphs of all 432 networks, which the predictor scores, are
exported once before the runs and timed on their own); the summary gives mean, standard deviation
and worst seed per strategy.

``nni_evolution``: NNI's own RegularizedEvolution on the same space written as an NNI ``ModelSpace``
(examples/own_space_digits_nni.py), the bound checked before training by NNI's ``Filter`` middleware
with our ``LatencyFilter``, the same trainer (:func:`run_nni_evolution`).

Resumable: each finished (strategy, seed) is appended to the results file at once; a run killed
midway resumes from its history under ``runs/digits_search/``.

    python benchmarks/digits_search.py --seeds 0 1 2 3 4
    python benchmarks/digits_search.py --quick     # smoke setting (budget 6, 1 epoch): its own results file
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples"))

from common import RESULTS, append_locked, command_line, load_results, machine  # noqa: E402

import own_space_digits as example  # noqa: E402

STRATEGIES = ("predictor", "random", "nni_evolution")
CHECKPOINTS = (10, 20, 30)


def run_standalone(strategy: str, seed: int, args: argparse.Namespace, setup: dict) -> dict:
    """One search of the example, read back into a results entry."""
    t0 = time.perf_counter()
    summary = example.run_strategy(strategy, setup["space"], setup["oracle"], setup["constraint"], args.budget, seed,
                                   setup["runs"], progress=not args.quiet)
    wall = time.perf_counter() - t0
    history = Path(summary["out"]) / "history.jsonl"
    records = [json.loads(line) for line in history.read_text().splitlines()[1:] if line.strip()]
    evaluated = set(summary["evaluated_archs"])
    records = [r for r in records if r["arch"] in evaluated]
    best = summary["best"]
    return {
        "strategy": strategy, "seed": seed, "budget": args.budget, "evaluations": summary["evaluations"],
        "best_validation": best["value"], "best_test": best["report"]["test_accuracy"], "best_arch": best["arch"],
        "best_latency_ms": best["latency_ms"], "best_params": best["report"]["params"],
        "curve": [p["value"] for p in summary["best_so_far"]],
        "over_bound_evaluated": sum(r["latency_ms"] > setup["constraint"].max_ms for r in records),
        "rejected_over_bound": summary["rejected_over_bound"], "latency_unsure": summary["latency_unsure"],
        "failed": summary["failed"], "replayed_from_history": summary["replayed_from_history"],
        # a resumed run's wall time covers only what it did after resuming
        "wall_seconds": wall, "search_wall_seconds": summary["wall_seconds"],
        "train_seconds": sum(r["report"].get("train_seconds", 0.0) for r in records),
        "surrogate_fits": summary["surrogate_fits"], "surrogate_fit_seconds": summary["surrogate_fit_seconds"],
        "evaluated_archs": summary["evaluated_archs"],
    }


#: NNI's RegularizedEvolution at budget 30: its defaults (population 100, tournament 25) would leave all 30
#: evaluations random, so a population of 10 and tournaments of 3 (set from the budget, not tuned)
NNI_EVOLUTION = {"population_size": 10, "sample_size": 3}


def run_nni_evolution(strategy: str, seed: int, args: argparse.Namespace, setup: dict) -> dict:
    """NNI 3.0's own ``RegularizedEvolution`` in a ``NasExperiment`` (sequential engine) over the same space
    written as an NNI ``ModelSpace``, the bound applied before any training by NNI's ``Filter`` middleware
    with our ``LatencyFilter`` (filtered networks are never trained and do not count), the same trainer.
    Not resumable midway (NNI's strategy state is not kept): a killed run starts again."""
    import nni
    from nni.nas.strategy import RegularizedEvolution
    from nni.nas.strategy.middleware import Chain, Filter

    from own_space_digits_nni import DigitsModelSpace
    from strategies.nni_bridge import current_arch

    model_space = DigitsModelSpace()
    _, bound = example.nni_bound(model_space, args.max_latency_ms, args.measured, args.cache, not args.quiet)
    trained: list[tuple[str, float, dict]] = []
    t0 = time.perf_counter()

    def trial(model) -> None:
        arch = current_arch()
        result = setup["oracle"].evaluate(arch)
        trained.append((arch, float(result.value), result.report))
        nni.report_final_result(result.value)

    rejected = []

    def within_bound(model) -> bool:
        ok = bound(model)
        if not ok:
            rejected.append(model.sample)
        return ok

    evolution = Chain(RegularizedEvolution(**NNI_EVOLUTION, seed=seed), Filter(within_bound))
    example.run_experiment(model_space, trial, evolution, args.budget, setup["runs"] / f"{strategy}-seed{seed}")
    wall = time.perf_counter() - t0
    if not trained:
        raise SystemExit(f"digits_search.py: NNI's RegularizedEvolution trained nothing (seed {seed})")
    archs = [a for a, _, _ in trained]
    latency = setup["constraint"].latency(archs)
    best = max(range(len(trained)), key=lambda i: trained[i][1])
    curve = [max(v for _, v, _ in trained[: i + 1]) for i in range(len(trained))]
    return {
        "strategy": strategy, "seed": seed, "budget": args.budget, "evaluations": len(trained),
        "best_validation": trained[best][1], "best_test": trained[best][2]["test_accuracy"],
        "best_arch": archs[best], "best_latency_ms": float(latency[best]), "best_params": trained[best][2]["params"],
        "curve": curve, "over_bound_evaluated": int(sum(latency > setup["constraint"].max_ms)),
        "rejected_over_bound": len(rejected), "latency_unsure": None, "failed": 0, "replayed_from_history": 0,
        "wall_seconds": wall, "search_wall_seconds": wall,
        "train_seconds": sum(r.get("train_seconds", 0.0) for _, _, r in trained),
        "surrogate_fits": 0, "surrogate_fit_seconds": 0.0, "evaluated_archs": archs, "nni_evolution": NNI_EVOLUTION,
    }


#: strategy label -> runner
RUNNERS = {"predictor": run_standalone, "random": run_standalone, "nni_evolution": run_nni_evolution}


def mean_std(values: list[float], worst=min) -> dict:
    """Mean, sample standard deviation and the worst value (``worst``: min for accuracies, max for times)."""
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "worst": worst(values), "n": len(values)}


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for label in RUNNERS:
        items = sorted((r for r in runs if r["strategy"] == label), key=lambda r: r["seed"])
        if not items:
            continue
        worst = min(items, key=lambda r: r["best_validation"])
        row = {"seeds": [r["seed"] for r in items],
               "best_validation": mean_std([r["best_validation"] for r in items]),
               "best_test": mean_std([r["best_test"] for r in items]),
               "worst_seed": {"seed": worst["seed"], "best_validation": worst["best_validation"],
                              "best_test": worst["best_test"]},
               "wall_seconds": mean_std([r["wall_seconds"] for r in items], worst=max),
               "evaluations_over_bound": sum(r["over_bound_evaluated"] for r in items)}
        for b in CHECKPOINTS:
            at = [r["curve"][b - 1] for r in items if len(r["curve"]) >= b and r["curve"][b - 1] is not None]
            if len(at) == len(items):
                row[f"best_validation_at_{b}"] = mean_std(at)
        out[label] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", choices=list(RUNNERS), default=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default 0-4 (quick: 0-1)")
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--max-latency-ms", type=float, default=example.DEFAULT_BOUND_MS)
    ap.add_argument("--measured", action="store_true", help="bound on latencies timed on this machine")
    ap.add_argument("--quick", action="store_true", help="budget 6, 1 epoch, 400 images, seeds 0-1")
    ap.add_argument("--out", help="results file (default benchmarks/results/digits_search[_measured][_quick].json)")
    ap.add_argument("--runs", help="folder of the runs' histories (default runs/digits_search[...])")
    ap.add_argument("--cache", default=None, help="graph / measured-latency cache folder")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.budget, args.epochs, args.train_subset = 6, 1, 400
    if args.seeds is None:
        args.seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    stem = "digits_search" + ("_measured" if args.measured else "") + ("_quick" if args.quick else "")
    out_path = Path(args.out) if args.out else RESULTS / f"{stem}.json"
    runs_dir = Path(args.runs) if args.runs else ROOT / "runs" / stem

    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    space = example.make_space()
    data = example.load_data(args.train_subset)
    setup = {"space": space, "oracle": example.make_oracle(space, data, args.epochs), "runs": runs_dir,
             "constraint": example.latency_constraint(space, args.max_latency_ms, args.measured, args.cache,
                                                      not args.quiet)}
    # every network's graph up front (the predictor scores the whole space): the first predictor run would
    # otherwise pay for them and later runs, in this process, not; this cost is recorded on its own
    t0 = time.perf_counter()
    for arch in tqdm(list(space), desc="graphs of the space", unit="net", disable=args.quiet):
        space.to_graph(arch)
    graph_seconds = time.perf_counter() - t0
    results = load_results(out_path)
    settings = {"space": space.name, "networks": len(space), "budget": args.budget, "epochs": args.epochs,
                "train_images": len(data.y_train), "validation_images": len(data.y_val),
                "test_images": len(data.y_test), "bound": setup["constraint"].identity()}
    if results.get("settings", settings) != settings:
        raise SystemExit(f"{out_path} holds runs of other settings ({results['settings']}); give another --out")
    results.update({"benchmark": "digits_search", "machine": machine(), "settings": settings,
                    "sample": example.sample_over_bound(space, setup["constraint"], 30),
                    "graph_export_seconds": graph_seconds})
    results["commands"] = list(dict.fromkeys(results.get("commands", []) + [command_line()]))
    done = {(r["strategy"], r["seed"]) for r in results.get("runs", [])}
    for seed in args.seeds:
        for label in args.strategies:
            if (label, seed) in done:
                continue
            entry = RUNNERS[label](label, seed, args, setup)
            results = append_locked(out_path, results, entry, key=lambda r: (r["strategy"], r["seed"]),
                                    summarize=summarize)
            print(f"[{label} seed {seed}] best validation {entry['best_validation']:.2f} % (test "
                  f"{entry['best_test']:.2f} %) at {entry['best_latency_ms']:.3f} ms; {entry['evaluations']} "
                  f"trained, {entry['rejected_over_bound']} over the bound; {entry['wall_seconds']:.0f} s", flush=True)
    for label, row in results.get("summary", {}).items():
        v = row["best_validation"]
        print(f"{label:>9}: best validation {v['mean']:.2f} ± {v['std']:.2f} % (worst {v['worst']:.2f}, "
              f"{v['n']} seeds), wall {row['wall_seconds']['mean']:.0f} s per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
