"""Asynchronous workers on NAS-Bench-201 CIFAR-10, simulated: k = 1, 4, 16 workers share one search (issue 30).

Each evaluation is the real table's (the search sees the cifar10-valid validation accuracy; reported is the
test accuracy of the best architecture found so far by that value) and takes a simulated time proportional
to the cell's real training cost: its measured latency on a Titan RTX at batch 256 (HELP's ``titan_rtx_256``,
shared data) times 3 (forward and backward) times 196 steps an epoch (50,000 images at batch 256) times 200
epochs, in hours. A worker that finishes asks for the next architecture at once, knowing every finished
result and the architectures still running on the other workers:

- ``ours``: the predictor-guided search's proposal (strategies/proposals.py, the code an Optuna worker
  runs): its surrogate refit on the finished results, the running ones excluded from its ranking;
- ``tpe-liar``: Optuna's TPE with ``constant_liar=True`` (multivariate), asked and told as workers free up
  (an architecture already finished or running is told failed and asked again);
- ``random``: random search without repeats;
- ``ours-its`` (the ablation of how a batch stays apart): ours with independent Thompson sampling over a
  3-member ensemble of bootstrap refits (``acquisition="its"``) instead of the mean of one refit, whose
  free workers take the best-ranked architectures nobody is evaluating yet (a kriging believer whose
  believed values do not move the model: no refit per proposal);
- ``ours-zc`` (issue 31's proxies in the many-worker search): ours with the zero-cost warm start (each
  tournament's best by the proxies' vote) and every refit reading the proxies (``encoding.proxies: [all]``),
  as ``predictor-zc`` in benchmarks/search_nb201.py.

Per run: when each evaluation finished (simulated hours) and the best test accuracy so far, at every
completion. A run stops once it has evaluated the global optimum of what the search sees (nothing after
can change what it returns) or at the budget. Resumable per (strategy, workers, seed).

    python benchmarks/search_async_nb201.py --workers 1 4 16 --seeds $(seq 0 19)
"""

from __future__ import annotations

import argparse
import heapq
import logging
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS, append_locked, code_commit, command_line, load_results, machine, update_locked, welch,
)

import numpy as np  # noqa: E402
import torch  # noqa: E402

STRATEGIES = ("ours", "tpe-liar", "random", "ours-its", "ours-zc")
DEFAULT_STRATEGIES = ("ours", "tpe-liar", "random")
WORKERS = (1, 4, 16)
SETTING = "titan_rtx_256"
#: simulated training hours per millisecond of batch-256 latency: forward + backward, 196 steps, 200 epochs
HOURS_PER_MS = 3 * 196 * 200 / 3.6e6
EVALUATIONS = (25, 50, 100)
#: simulated hours at which every strategy's best so far is compared
HOUR_CHECKPOINTS = (1, 2, 4, 8, 16, 32, 64)
PLOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "search_async_nb201.png"


class Proposer:
    """What a free worker asks: ``ask(finished, running) -> arch``, ``tell(arch, value)``."""

    def __init__(self, label: str, space, seed: int, budget: int) -> None:
        self.label, self.space, self.seed, self.budget = label, space, seed, budget
        self.asked = 0
        if label in ("ours", "ours-its", "ours-zc"):
            from strategies.runner import make_strategy
            from strategies.surrogates import OnlineSurrogate

            its, zc = label == "ours-its", label == "ours-zc"
            self.strategy = make_strategy("predictor", **({"acquisition": "its"} if its else {}),
                                          **({"warm_start": "zero_cost"} if zc else {}))
            self.surrogate = OnlineSurrogate("nasbench201", seed=seed, **({"ensemble": 3, "bootstrap": True} if its else {}),
                                             **({"overrides": {"encoding": {"proxies": ["all"]}}} if zc else {}))
        elif label == "random":
            from strategies.runner import make_strategy

            self.strategy, self.surrogate = make_strategy("random"), None
        else:
            import optuna

            optuna.logging.set_verbosity(logging.WARNING)
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
            self.trials: dict[str, object] = {}

    def ask(self, finished: list[dict], running: list[str]) -> str | None:
        self.asked += 1
        if self.label == "tpe-liar":
            import optuna

            known = {r["arch"] for r in finished} | set(running)
            for _ in range(1000):
                trial = self.study.ask()
                values = {n: trial.suggest_categorical(n, list(o)) for n, o in self.space.choices()}
                arch = self.space.from_choices(values)
                if arch not in known:
                    self.trials[arch] = trial
                    return arch
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        from strategies.proposals import ProposalContext, propose

        ctx = ProposalContext.of(self.space, finished, running, self.budget,
                                 np.random.default_rng([self.seed, self.asked]), surrogate=self.surrogate)
        proposal = propose(self.strategy, ctx)
        return None if proposal is None else proposal.arch

    def tell(self, arch: str, value: float) -> None:
        if self.label == "tpe-liar":
            self.study.tell(self.trials.pop(arch), value)


def simulate(label: str, workers: int, seed: int, budget: int, space, oracle, hours: dict, optimum: float) -> dict:
    proposer = Proposer(label, space, seed, budget)
    finished: list[dict] = []
    running: list[tuple[float, int, str]] = []  # (end time, start order, arch)
    started = 0
    t0 = time.perf_counter()

    def start(now: float) -> bool:
        nonlocal started
        arch = proposer.ask(finished, [a for _, _, a in running])
        if arch is None:
            return False
        heapq.heappush(running, (now + hours[arch], started, arch))
        started += 1
        return True

    while started < min(workers, budget) and start(0.0):
        pass
    times, best, archs = [], [], []
    top = (-np.inf, None)
    while running:
        end, _, arch = heapq.heappop(running)
        ev = oracle.evaluate(arch)
        finished.append({"arch": arch, "value": ev.value, "status": "ok", "report": ev.report, "latency_ms": None})
        proposer.tell(arch, ev.value)
        if ev.value > top[0]:
            top = (ev.value, ev.report["test_accuracy"])
        times.append(end)
        best.append(top[1])
        archs.append(arch)
        if top[0] >= optimum - 1e-9:
            break
        if started < budget:
            start(end)
    return {"strategy": label, "workers": workers, "seed": seed, "budget": budget, "hours": times,
            "best_test": best, "evaluated_archs": archs, "reached_optimum": top[0] >= optimum - 1e-9,
            "wall_seconds": time.perf_counter() - t0,
            "surrogate_fits": getattr(getattr(proposer, "surrogate", None), "fits", 0)}


def best_at_evaluations(run: dict, n: int) -> float:
    return run["best_test"][min(n, len(run["best_test"])) - 1]


def best_at_hours(run: dict, h: float) -> float | None:
    """The best test accuracy of what had finished by ``h`` hours (None before the first result)."""
    i = int(np.searchsorted(run["hours"], h, side="right"))
    return run["best_test"][i - 1] if i else None


def reach(run: dict, target: float) -> tuple[float | None, int | None]:
    """(hours, evaluations) when the run's best test accuracy first reached ``target``; None if never."""
    for i, (h, b) in enumerate(zip(run["hours"], run["best_test"])):
        if b >= target - 1e-9:
            return h, i + 1
    return None, None


def stats(vals: list[float]) -> dict:
    return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "worst": min(vals), "n": len(vals)}


def median_reach(values: list[float | None]) -> float | None:
    """The median over all runs, a run that never reached the target counting as later than any that did."""
    med = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(med) else med


def groups(runs: list[dict]):
    """(strategy, workers, its runs) for every strategy and worker count that has runs, in table order."""
    for label in STRATEGIES:
        for k in WORKERS:
            items = [r for r in runs if r["strategy"] == label and r["workers"] == k]
            if items:
                yield label, k, items


def summarize(runs: list[dict]) -> dict:
    """Best test accuracy by evaluations and by simulated hours; when each strategy reached the target (the
    1-worker search's mean best at 100 evaluations), against the 1-worker search's own time to it; ours
    against each baseline at the same k at every hour checkpoint (Welch's t-test)."""
    out: dict = {"by_evaluations": {}, "by_hours": {}, "to_target": {}, "versus": {}}
    base = [r for r in runs if r["strategy"] == "ours" and r["workers"] == 1]
    if not base:
        return out
    target = statistics.mean(best_at_evaluations(r, 100) for r in base)
    base_reach = [reach(r, target) for r in base]
    base_hours = [h for h, _ in base_reach if h is not None]
    base_evals = [n for _, n in base_reach if n is not None]
    out["target"] = {
        "best_test": target, "what": "ours with 1 worker: mean best test accuracy at 100 evaluations",
        "one_worker_hours": stats(base_hours), "one_worker_hours_median": median_reach([h for h, _ in base_reach]),
        "one_worker_evaluations": stats(base_evals)}
    out["hour_checkpoints"] = list(HOUR_CHECKPOINTS)
    for label, k, items in groups(runs):
        key = f"{label}@{k}"
        out["by_evaluations"][key] = {str(n): stats([best_at_evaluations(r, n) for r in items]) for n in EVALUATIONS}
        by_hours = []
        for h in HOUR_CHECKPOINTS:
            vals = [v for v in (best_at_hours(r, h) for r in items) if v is not None]
            by_hours.append({"hours": h, "runs_with_a_result": len(vals), **(stats(vals) if vals else {})})
        out["by_hours"][key] = by_hours
        reached = [reach(r, target) for r in items]
        hours = [h for h, _ in reached if h is not None]
        evals = [n for _, n in reached if n is not None]
        median = median_reach([h for h, _ in reached])
        out["to_target"][key] = {
            "reached": len(hours), "runs": len(items),
            "hours": stats(hours) if hours else None, "evaluations": stats(evals) if evals else None,
            "hours_median": median,
            "hours_fraction_of_one_worker": statistics.mean(hours) / statistics.mean(base_hours) if hours else None,
            "median_hours_fraction_of_one_worker": (median / out["target"]["one_worker_hours_median"]
                                                    if median is not None else None),
            "more_evaluations_than_one_worker": statistics.mean(evals) / statistics.mean(base_evals) - 1
            if evals else None}
    # ours against every other strategy; ours-zc (ours with the proxies) against the baselines
    pairs = [("ours", other) for other in STRATEGIES[1:]] + [("ours-zc", "tpe-liar"), ("ours-zc", "random")]
    for k in WORKERS:
        for mine, other in pairs:
            ours = [r for r in runs if r["strategy"] == mine and r["workers"] == k]
            theirs = [r for r in runs if r["strategy"] == other and r["workers"] == k]
            if not ours or not theirs:
                continue
            rows = []
            for h in HOUR_CHECKPOINTS:
                a = [v for v in (best_at_hours(r, h) for r in ours) if v is not None]
                b = [v for v in (best_at_hours(r, h) for r in theirs) if v is not None]
                if len(a) > 1 and len(b) > 1:
                    rows.append({"hours": h, **welch(a, b)})
            out["versus"][f"{mine}@{k} vs {other}@{k}"] = rows
    return out


def plot(runs: list[dict], path: Path) -> None:
    """Mean best test accuracy against simulated hours (log scale) and against evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"ours": "C0", "tpe-liar": "C1", "random": "C2", "ours-its": "C3", "ours-zc": "C4"}
    styles = {1: ":", 4: "--", 16: "-"}
    fig, (by_time, by_count) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.geomspace(0.25, 128, 200)
    for label, k, items in groups(runs):
        name = f"{label}, {k} worker{'s' if k > 1 else ''} ({len(items)} seeds)"
        curve = np.array([[np.nan if (v := best_at_hours(r, h)) is None else v for h in grid] for r in items])
        # a point is drawn once every run has a result there, so the mean never mixes runs with no result
        mean = np.where(np.isnan(curve).any(axis=0), np.nan, np.nanmean(np.nan_to_num(curve, nan=0.0), axis=0))
        by_time.plot(grid, mean, color=colours[label], ls=styles[k], label=name)
        n = np.arange(1, max(r["budget"] for r in items) + 1)
        by_count.plot(n, [statistics.mean(best_at_evaluations(r, i) for r in items) for i in n],
                      color=colours[label], ls=styles[k], label=name)
    for ax in (by_time, by_count):
        ax.set_ylim(92.6, 94.5)
        ax.set_ylabel("mean best test accuracy (%)")
        ax.grid(alpha=0.3)
    by_time.set_xscale("log", base=2)
    ticks = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128]
    by_time.set_xticks(ticks, [f"{t:g}" for t in ticks])
    by_time.set_xlabel("simulated wall-clock (hours)")
    by_count.set_xlabel("evaluations finished")
    by_count.legend(fontsize=6.5, ncol=2, loc="lower right")
    fig.suptitle("Asynchronous workers, NAS-Bench-201 CIFAR-10 (simulated training time)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--workers", nargs="+", type=int, default=list(WORKERS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(20)))
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--out", default=str(RESULTS / "search_async_nb201.json"))
    ap.add_argument("--summarize", action="store_true", help="only recompute the summary and redraw the plot")
    ap.add_argument("--no-plot", action="store_true", help="with --summarize: leave the plot as it is")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out)
    key = lambda r: (r["strategy"], r["workers"], r["seed"])  # noqa: E731
    if args.summarize:
        res = update_locked(out_path, lambda res: {**res, "summary": summarize(res.get("runs", []))})
        if not args.no_plot:
            plot(res.get("runs", []), PLOT)
            print(f"plot: {PLOT}")
        return 0

    from nas_predictor.data.latency_tables import load_help_latency
    from search_spaces.nasbench201 import NASBench201
    from strategies.oracle import NB201TableOracle

    space = NASBench201()
    oracle = NB201TableOracle("cifar10")
    table = load_help_latency("nasbench201", SETTING)
    hours = {space.canonical(a): float(ms) * HOURS_PER_MS for a, ms in zip(table.archs, table.latency_ms)}
    optimum = max(oracle.evaluate(a).value for a in hours)
    results = load_results(out_path)
    results.update({"benchmark": "search_async_nb201", "machine": machine(), "cost": {
        "setting": SETTING, "hours_per_ms": HOURS_PER_MS,
        "what": "latency at batch 256 x 3 (forward + backward) x 196 steps x 200 epochs"}})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    done = {key(r) for r in results.get("runs", [])}
    code = code_commit()
    for seed in args.seeds:
        for k in args.workers:
            for label in args.strategies:
                if (label, k, seed) in done:
                    continue
                run = simulate(label, k, seed, args.budget, space, oracle, hours, optimum)
                run["code"] = code
                results = append_locked(out_path, results, run, key=key, summarize=summarize)
                print(f"[{label} k={k} seed {seed}] best test {run['best_test'][-1]:.2f} after {len(run['hours'])} "
                      f"evaluations, {run['hours'][-1]:.1f} simulated hours ({run['wall_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
