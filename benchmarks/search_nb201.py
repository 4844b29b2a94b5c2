"""Predictor-guided search on NAS-Bench-201 against random search, regularized evolution and TPE
(the issue-4 benchmark). Every strategy runs through the same code as ``nas-predictor search``, on the
real 200-epoch accuracies of the shared table: on CIFAR-10 the search sees the cifar10-valid
validation accuracy and the reported number is the test accuracy of the returned architecture (the
best one by what the search sees); on CIFAR-100 / ImageNet16-120 the shared data has only test
accuracies, which the search then sees too.

Per run: the best test accuracy after 25 / 50 / 100 / 150 / 200 evaluations, the evaluations needed to
return the global optimum (the architecture with the best search value, whose CIFAR-10 test accuracy
is 94.37), the wall time and the predictor's fit time. A run stops early once it has evaluated that
optimum: no later evaluation can change what it returns, so its numbers at larger budgets are those of
the stop (``--no-early-stop`` runs the full budget, for wall-time figures). With ``--max-latency-ms``
and ``--setting`` (HELP's measured latencies) the optimum is the best architecture within the
bound, and every evaluation's measured latency is checked against it.

Resumable: each finished (dataset, strategy, seed) is appended to the results JSON at once.

    python benchmarks/search_nb201.py --datasets cifar10 --seeds $(seq 0 49)
    python benchmarks/search_nb201.py --datasets cifar10 --seeds $(seq 0 49) --max-latency-ms 10.6756 --setting pixel3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, append_locked, command_line, load_results, machine  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from search_spaces.nasbench201 import NASBench201  # noqa: E402
from strategies.constraints import LatencyConstraint, TableLatency  # noqa: E402
from strategies.oracle import NB201TableOracle  # noqa: E402
from strategies.runner import make_strategy, run_search  # noqa: E402
from strategies.surrogates import OnlineSurrogate  # noqa: E402

BUDGETS = (25, 50, 100, 150, 200)
STRATEGIES = ("random", "evolution", "tpe", "evolution-guided", "tpe-guided", "predictor-v1", "predictor-v2",
              "predictor", "predictor-zc", "predictor-zc-warm", "predictor-zc-fit")
#: labels that are a strategy with other settings than its defaults: (strategy, parameters)
VARIANTS = {
    # the predictor search's first defaults (10 random starts, 5 ranked picks per round, no local picks)
    "predictor-v1": ("predictor", {"num_init": 10, "top_k": 5, "num_local": 0}),
    # its second: 20 random starts (before the warm start from the parameter-count proxy)
    "predictor-v2": ("predictor", {"warm_start": "random"}),
    # issue 31: the zero-cost proxies in the warm start (their vote instead of the parameter count) and as
    # inputs of every refit; -warm and -fit take one of the two
    "predictor-zc": ("predictor", {"warm_start": "zero_cost"}),
    "predictor-zc-warm": ("predictor", {"warm_start": "zero_cost"}),
    "predictor-zc-fit": ("predictor", {}),
}
#: labels whose online surrogate has other settings than its defaults
SURROGATE_SETTINGS = {"predictor-zc": {"encoding": {"proxies": ["all"]}},
                      "predictor-zc-fit": {"encoding": {"proxies": ["all"]}}}


def one_run(dataset: str, label: str, seed: int, budget: int, oracle: NB201TableOracle, constraint, optimum: dict,
            early_stop: bool, latency_check: TableLatency | None) -> dict:
    name, guided = label.removesuffix("-guided"), label.endswith("-guided")
    name, params = VARIANTS.get(label.removesuffix("-guided"), (name, {}))
    strategy = make_strategy(name, guided=guided, **params)
    surrogate = OnlineSurrogate("nasbench201", seed=seed, overrides=SURROGATE_SETTINGS.get(label)) \
        if strategy.needs_surrogate else None
    t0 = time.perf_counter()
    summary = run_search(NASBench201(), strategy, oracle, budget, seed=seed, surrogate=surrogate,
                         constraint=constraint, progress=False, target=optimum["search_value"] if early_stop else None)
    wall = time.perf_counter() - t0
    curve = summary["best_so_far"]

    def at(b: int) -> float:
        return curve[min(b, len(curve)) - 1]["report"]

    # returned the optimum: its best search value is the optimum's (what it returns can't change after)
    reached = next((p["evaluations"] for p in curve if p["value"] is not None
                    and p["value"] >= optimum["search_value"] - 1e-9), None)
    entry = {"dataset": dataset, "strategy": label, "seed": seed, "budget": budget,
             "best_test": {str(b): at(b) for b in BUDGETS if b <= budget},
             "evaluations_to_optimum": reached, "evaluations": summary["evaluations"], "stop": summary["stop"],
             "wall_seconds": wall, "surrogate_fits": summary["surrogate_fits"],
             "surrogate_fit_seconds": summary["surrogate_fit_seconds"],
             "rejected_over_bound": summary["rejected_over_bound"],
             "curve": [p["report"] for p in curve]}
    if latency_check is not None:
        # checked again from the table, independently of the search's own bookkeeping
        measured = latency_check.latency_ms(summary["evaluated_archs"])
        entry["max_latency_evaluated_ms"] = float(measured.max())
        entry["latency_violations"] = int(np.sum(measured > constraint.max_ms))
    return entry


def summarize(runs: list[dict], budgets=BUDGETS) -> dict:
    out: dict = {}
    for run in runs:
        out.setdefault(run["dataset"], {}).setdefault(run["strategy"], []).append(run)
    summary: dict = {}
    for dataset, by_strategy in out.items():
        for label, items in by_strategy.items():
            row = {"seeds": len(items)}
            for b in budgets:
                vals = [r["best_test"][str(b)] for r in items if str(b) in r["best_test"]]
                if vals:
                    row[f"best_test_{b}"] = {"mean": statistics.mean(vals),
                                             "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
                    row[f"reached_{b}"] = statistics.mean(
                        r["evaluations_to_optimum"] is not None and r["evaluations_to_optimum"] <= b for r in items)
            steps = sorted(r["evaluations_to_optimum"] or float("inf") for r in items)
            med = statistics.median(steps)
            row["median_evaluations_to_optimum"] = None if med == float("inf") else med
            row["wall_seconds_mean"] = statistics.mean(r["wall_seconds"] for r in items)
            if any("latency_violations" in r for r in items):
                row["latency_violations"] = sum(r.get("latency_violations", 0) for r in items)
            summary.setdefault(dataset, {})[label] = row
    return summary


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = ("cifar10", "cifar100", "ImageNet16-120")
    datasets = sorted({r["dataset"] for r in results["runs"]}, key=order.index)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for label in STRATEGIES:
            runs = [r for r in results["runs"] if r["dataset"] == dataset and r["strategy"] == label]
            if not runs:
                continue
            budget = max(r["budget"] for r in runs)
            curves = np.array([[c[min(n, len(c)) - 1] if c[min(n, len(c)) - 1] is not None else np.nan
                                for n in range(1, budget + 1)] for c in (r["curve"] for r in runs)])
            ax.plot(np.arange(1, budget + 1), np.nanmean(curves, axis=0), label=f"{label} ({len(runs)} seeds)")
        ax.axhline(results["optimum"][dataset]["test_accuracy"], color="grey", ls="--", lw=0.8, label="optimum")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("mean best test accuracy (%)")
        ax.set_title(f"NAS-Bench-201 {dataset}")
        lo = results["optimum"][dataset]["test_accuracy"]
        ax.set_ylim(lo - (2.0 if dataset == "cifar10" else 4.0), lo + 0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def append_run(path: Path, results: dict, entry: dict) -> dict:
    """Add one finished run under a file lock, merging what parallel processes appended meanwhile."""
    return append_locked(path, results, entry, key=lambda r: (r["dataset"], r["strategy"], r["seed"]),
                         summarize=summarize, merge_dicts=("optimum",))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["cifar10"], choices=["cifar10", "cifar100", "ImageNet16-120"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(50)))
    ap.add_argument("--budget", type=int, default=max(BUDGETS))
    ap.add_argument("--max-latency-ms", type=float)
    # --setting as in `nas-predictor search`; --latency-device is the name recorded in older results
    ap.add_argument("--setting", "--latency-device", dest="latency_device", metavar="SETTING",
                    help="HELP device whose measured latency bounds the search (e.g. pixel3)")
    ap.add_argument("--no-early-stop", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    constrained = args.max_latency_ms is not None
    default = "search_nb201" + (f"_{args.latency_device}_{args.max_latency_ms:g}ms" if constrained else "") + \
        ("_full_budget" if args.no_early_stop else "")
    out_path = Path(args.out) if args.out else RESULTS / f"{default}.json"
    results = load_results(out_path)
    results.update({"benchmark": "search_nb201", "machine": machine(), "budgets": list(BUDGETS),
                    "constraint": {"max_ms": args.max_latency_ms, "device": args.latency_device} if constrained else None,
                    "early_stop": not args.no_early_stop})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    runs = results.setdefault("runs", [])
    results.setdefault("optimum", {})
    done = {(r["dataset"], r["strategy"], r["seed"]) for r in runs}
    for dataset in args.datasets:
        oracle = NB201TableOracle(dataset, args.data_dir)
        constraint = latency = None
        allowed = None
        if constrained:
            latency = TableLatency(args.latency_device, data_dir=args.data_dir)
            constraint = LatencyConstraint(latency, args.max_latency_ms)
            allowed = latency.all_latencies(oracle.arch_strs) <= args.max_latency_ms
        optimum = oracle.global_optimum(allowed)
        if allowed is not None:
            optimum["feasible_archs"] = int(allowed.sum())
        results["optimum"][dataset] = optimum
        for label in args.strategies:
            for seed in args.seeds:
                if (dataset, label, seed) in done:
                    continue
                entry = one_run(dataset, label, seed, args.budget, oracle, constraint, optimum,
                                not args.no_early_stop, latency)
                results = append_run(out_path, results, entry)
                runs = results["runs"]
                print(f"[{dataset} {label} seed {seed}] best test @50 {entry['best_test'].get('50')}, "
                      f"@100 {entry['best_test'].get('100')}; optimum at {entry['evaluations_to_optimum']} "
                      f"({entry['wall_seconds']:.0f} s)", flush=True)
    if runs:
        plot(results, out_path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
