"""Our predictor-guided search inside NNI 3.0 on NAS-Bench-201 CIFAR-10, against the stand-alone search
(benchmarks/search_nb201.py, its "predictor" row), and NNI's RegularizedEvolution with and without our
latency filter (issue 7).

Every run is an NNI ``NasExperiment`` with the sequential engine on the hub's ``NasBench201`` model
space, scored by ``NB201TableBenchmark`` (our table: the search sees the cifar10-valid validation
accuracy; the number reported is the cifar10 test accuracy of the architecture the run returns, the best
one by validation accuracy), ``max_trial_number`` = the budget:

- ``nni-predictor``: ``PredictorGuidedStrategy`` (our PredictorSearch with its defaults, the online
  surrogate seeded like the stand-alone run). Like the stand-alone benchmark it stops once it has
  evaluated the global optimum (the best validation accuracy; its test accuracy is 94.37), which cannot
  change what it returns (``--no-early-stop`` runs the whole budget);
- ``nni-evolution-filtered``: ``Chain(RegularizedEvolution(...), Filter(LatencyFilter(bound,
  TableLatency(device))))``: HELP's measured latency on ``--setting`` (default pixel3) must be at
  most ``--max-latency-ms`` (default 10.6756 ms, the bound of search_nb201_pixel3_10.6756ms.json, which
  half of the 15,625 cells meet); every evaluated model's latency is checked again from the table and
  violations counted;
- ``nni-evolution``: the same evolution without the filter, to show what the filter prevents (how many
  of its evaluations break the bound).

RegularizedEvolution runs with population 20, tournament 5 (our evolution's settings; NNI's default
population of 100 is a random search at budget 100), NNI's default mutation probability 0.05 per edge,
seeded with the run's seed.

Resumable: each finished (strategy, seed) is appended to the results JSON at once.

    python benchmarks/search_nni_nb201.py --seeds $(seq 0 19)
    python benchmarks/search_nni_nb201.py --summarize   # refresh the comparison with the stand-alone file
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, machine, save_results, welch  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

STRATEGIES = ("nni-predictor", "nni-evolution-filtered", "nni-evolution")
BUDGETS = (25, 50, 100)
STANDALONE = RESULTS / "search_nb201.json"
STANDALONE_CONSTRAINED = RESULTS / "search_nb201_pixel3_10.6756ms.json"


def run_experiment(space, evaluator, strategy, budget: int, workdir: str) -> float:
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = budget
    config.experiment_working_directory = workdir
    config.log_level = "warning"
    exp = NasExperiment(space, evaluator, strategy, config)
    t0 = time.perf_counter()
    try:
        exp.run()
    finally:
        exp.stop()
    return time.perf_counter() - t0


def best_curve(archs: list[str], oracle) -> list[dict]:
    """After each evaluation: the best validation accuracy so far and that architecture's test accuracy."""
    out, best = [], None
    for arch in archs:
        i = oracle.index(arch)
        if best is None or oracle.search_values[i] > oracle.search_values[best]:
            best = i
        out.append({"value": float(oracle.search_values[best]), "report": float(oracle.test_values[best])})
    return out


def one_run(label: str, seed: int, budget: int, space, evaluator, optimum: dict, early_stop: bool, bound: float,
            device: str, workdir: str) -> dict:
    from nni.nas.strategy import RegularizedEvolution
    from nni.nas.strategy.middleware import Chain, Filter

    from strategies.constraints import TableLatency
    from strategies.nni_bridge import LatencyFilter, PredictorGuidedStrategy

    lat_filter = None
    if label == "nni-predictor":
        strategy = PredictorGuidedStrategy(seed=seed, target=optimum["search_value"] if early_stop else None)
    else:
        strategy = RegularizedEvolution(population_size=20, sample_size=5, seed=seed)
        if label == "nni-evolution-filtered":
            lat_filter = LatencyFilter(bound, TableLatency(device))
            strategy = Chain(strategy, Filter(lat_filter))
    wall = run_experiment(space, evaluator, strategy, budget, workdir)
    # what the engine ran, in order (the filter's rejects never reach it)
    models = [m for m in strategy.engine.list_models() if m.metric is not None]
    archs = [evaluator.to_arch(m.sample) for m in models]
    curve = best_curve(archs, evaluator.oracle)

    def at(b: int) -> float:
        return curve[min(b, len(curve)) - 1]["report"]

    reached = next((n for n, p in enumerate(curve, 1) if p["value"] >= optimum["search_value"] - 1e-9), None)
    entry = {"dataset": "cifar10", "strategy": label, "seed": seed, "budget": budget,
             "best_test": {str(b): at(b) for b in BUDGETS if b <= budget},
             "evaluations_to_optimum": reached, "evaluations": len(archs), "wall_seconds": wall,
             "curve": [p["report"] for p in curve], "evaluated_archs": archs}
    if label == "nni-predictor":
        summary = strategy.summary()
        entry.update(stop=summary["stop"], surrogate_fits=summary["surrogate_fits"],
                     surrogate_fit_seconds=summary["surrogate_fit_seconds"])
    measured = TableLatency(device).latency_ms(archs)
    entry["max_latency_evaluated_ms"] = float(measured.max())
    entry["over_bound"] = int(np.sum(measured > bound))
    ok = [a for a, ms in zip(archs, measured) if ms <= bound]
    if ok:  # what a search within the bound would return from these evaluations
        entry["best_test_within_bound"] = best_curve(ok, evaluator.oracle)[-1]["report"]
    if lat_filter is not None:
        entry["filter_checked"] = lat_filter.checked
        entry["filter_rejected"] = lat_filter.rejected
        entry["latency_violations"] = entry["over_bound"]
    return entry


def mean_std(vals: list[float]) -> dict:
    return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for label in STRATEGIES:
        items = [r for r in runs if r["strategy"] == label]
        if not items:
            continue
        row: dict = {"seeds": sorted(r["seed"] for r in items)}
        for b in BUDGETS:
            vals = [r["best_test"][str(b)] for r in items if str(b) in r["best_test"]]
            if vals:
                row[f"best_test_{b}"] = mean_std(vals)
                row[f"reached_{b}"] = statistics.mean(
                    r["evaluations_to_optimum"] is not None and r["evaluations_to_optimum"] <= b for r in items)
        row["wall_seconds_mean"] = statistics.mean(r["wall_seconds"] for r in items)
        row["evaluations_over_bound"] = sum(r["over_bound"] for r in items)
        row["evaluations"] = sum(r["evaluations"] for r in items)
        within = [r["best_test_within_bound"] for r in items if "best_test_within_bound" in r]
        if within:
            row["best_test_within_bound"] = mean_std(within)
        if label == "nni-evolution-filtered":
            row["latency_violations"] = sum(r["latency_violations"] for r in items)
            row["filter_rejected"] = sum(r["filter_rejected"] for r in items)
        out[label] = row
    return out


def compare(runs: list[dict]) -> dict:
    """nni-predictor against the stand-alone "predictor" row on the seeds both have."""
    out: dict = {}
    ours = {r["seed"]: r for r in runs if r["strategy"] == "nni-predictor"}
    standalone = {r["seed"]: r for r in load_results(STANDALONE).get("runs", [])
                  if r["strategy"] == "predictor" and r["dataset"] == "cifar10"}
    seeds = sorted(set(ours) & set(standalone))
    if seeds:
        a = [ours[s]["best_test"]["100"] for s in seeds]
        b = [standalone[s]["best_test"]["100"] for s in seeds]
        # the stand-alone curve stops with its run (early stop); compare the first 100 evaluations
        same = [s for s in seeds if ours[s]["curve"][:100] == standalone[s]["curve"][:100]]
        out["predictor_vs_standalone"] = {
            "seeds": seeds, "nni_best_test_100": mean_std(a), "standalone_best_test_100": mean_std(b),
            **welch(a, b), "identical_best_so_far_curves": len(same),
            "per_seed": [{"seed": s, "nni": x, "standalone": y} for s, x, y in zip(seeds, a, b)]}
    constrained = load_results(STANDALONE_CONSTRAINED).get("summary", {}).get("cifar10", {}).get("evolution")
    filtered = [r for r in runs if r["strategy"] == "nni-evolution-filtered"]
    if constrained and filtered:
        out["filtered_evolution_vs_standalone_constrained_evolution"] = {
            "nni_best_test_100": mean_std([r["best_test"]["100"] for r in filtered]),
            "standalone_evolution_best_test_100": constrained.get("best_test_100"),
            "standalone_seeds": constrained.get("seeds")}
    return out


def append_run(path: Path, results: dict, entry: dict) -> dict:
    from nas_predictor.io import file_lock

    with file_lock(path.with_suffix(".lock"), f"results file {path}", wait=True):
        on_disk = load_results(path)
        key = lambda r: (r["strategy"], r["seed"])  # noqa: E731
        runs = {key(r): r for r in on_disk.get("runs", [])}
        runs.update({key(r): r for r in results.get("runs", [])})
        runs[key(entry)] = entry
        merged = {**on_disk, **{k: v for k, v in results.items() if k != "runs"}}
        merged["commands"] = list(dict.fromkeys(on_disk.get("commands", []) + results.get("commands", [])))
        merged["runs"] = sorted(runs.values(), key=lambda r: (STRATEGIES.index(r["strategy"]), r["seed"]))
        merged["summary"] = summarize(merged["runs"])
        merged["comparison"] = compare(merged["runs"])
        save_results(path, merged)
    return merged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(20)))
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--max-latency-ms", type=float, default=10.6756)
    # --setting as in `nas-predictor search`; --latency-device is the name recorded in older results
    ap.add_argument("--setting", "--latency-device", dest="latency_device", metavar="SETTING", default="pixel3",
                    help="HELP device whose measured latency bounds the search (default pixel3)")
    ap.add_argument("--no-early-stop", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--summarize", action="store_true",
                    help="only recompute the summary and the comparison (e.g. after more stand-alone seeds)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out) if args.out else RESULTS / "search_nni_nb201.json"
    if args.summarize:
        results = load_results(out_path)
        results["summary"] = summarize(results.get("runs", []))
        results["comparison"] = compare(results.get("runs", []))
        save_results(out_path, results)
        return 0

    from strategies.nni_bridge import require_nni

    require_nni()
    from nni.nas.hub.pytorch import NasBench201
    from nni.runtime.log import silence_stdout

    from strategies.constraints import TableLatency
    from strategies.nni_bridge import NB201TableBenchmark

    silence_stdout()
    logging.getLogger("nni").setLevel(logging.WARNING)
    results = load_results(out_path)
    evaluator = NB201TableBenchmark("cifar10")
    latency = TableLatency(args.latency_device)
    allowed = latency.all_latencies(evaluator.oracle.arch_strs) <= args.max_latency_ms
    optimum = evaluator.oracle.global_optimum()
    results.update({"benchmark": "search_nni_nb201", "machine": machine(), "budgets": list(BUDGETS),
                    "budget": args.budget, "early_stop": not args.no_early_stop,
                    "bound": {"max_ms": args.max_latency_ms, "device": args.latency_device,
                              "source": latency.describe(), "feasible_archs": int(allowed.sum())},
                    "optimum": optimum, "optimum_within_bound": evaluator.oracle.global_optimum(allowed),
                    "evolution_settings": {"population_size": 20, "sample_size": 5, "mutation_prob": 0.05}})
    try:
        import nni

        results["nni"] = nni.__version__
    except AttributeError:
        pass
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    done = {(r["strategy"], r["seed"]) for r in results.get("runs", [])}
    space = NasBench201()
    with tempfile.TemporaryDirectory(prefix="nni-bench-") as workdir:
        for label in args.strategies:
            for seed in args.seeds:
                if (label, seed) in done:
                    continue
                entry = one_run(label, seed, args.budget, space, evaluator, optimum, not args.no_early_stop,
                                args.max_latency_ms, args.latency_device, workdir)
                results = append_run(out_path, results, entry)
                print(f"[{label} seed {seed}] best test @50 {entry['best_test'].get('50')}, @100 "
                      f"{entry['best_test'].get('100')}; optimum at {entry['evaluations_to_optimum']}; "
                      f"{entry['evaluations']} evaluations, {entry['over_bound']} over the bound "
                      f"({entry['wall_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
