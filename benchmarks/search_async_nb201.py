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
  believed values do not move the model: no refit per proposal).

Per run: when each evaluation finished (simulated hours) and the best test accuracy so far, at every
completion. A run stops once it has evaluated the global optimum of what the search sees (nothing after
can change what it returns) or at the budget. Resumable per (strategy, workers, seed).

    python benchmarks/search_async_nb201.py --workers 1 4 16 --seeds $(seq 0 19)
"""

from __future__ import annotations

import argparse
import heapq
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, append_locked, code_commit, command_line, load_results, machine  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

STRATEGIES = ("ours", "tpe-liar", "random", "ours-its")
DEFAULT_STRATEGIES = ("ours", "tpe-liar", "random")
WORKERS = (1, 4, 16)
SETTING = "titan_rtx_256"
#: simulated training hours per millisecond of batch-256 latency: forward + backward, 196 steps, 200 epochs
HOURS_PER_MS = 3 * 196 * 200 / 3.6e6
EVALUATIONS = (25, 50, 100)


class Proposer:
    """What a free worker asks: ``ask(finished, running) -> arch``, ``tell(arch, value)``."""

    def __init__(self, label: str, space, seed: int, budget: int) -> None:
        self.label, self.space, self.seed, self.budget = label, space, seed, budget
        self.asked = 0
        if label in ("ours", "ours-its"):
            from strategies.runner import make_strategy
            from strategies.surrogates import OnlineSurrogate

            its = label == "ours-its"
            self.strategy = make_strategy("predictor", **({"acquisition": "its"} if its else {}))
            self.surrogate = OnlineSurrogate("nasbench201", seed=seed, **({"ensemble": 3, "bootstrap": True} if its else {}))
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


def summarize(runs: list[dict]) -> dict:
    def stats(vals: list[float]) -> dict:
        return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "worst": min(vals), "n": len(vals)}

    out: dict = {"by_evaluations": {}, "by_hours": {}, "to_target": {}}
    base = [r for r in runs if r["strategy"] == "ours" and r["workers"] == 1]
    target = statistics.mean(best_at_evaluations(r, 100) for r in base) if base else None
    base_hours = statistics.mean(r["hours"][min(100, len(r["hours"])) - 1] for r in base) if base else None
    out["target"] = {"best_test": target, "hours_one_worker_100": base_hours}
    checkpoints = [base_hours * f for f in (1 / 16, 1 / 8, 1 / 4, 1 / 3, 1 / 2, 1)] if base_hours else []
    out["hour_checkpoints"] = checkpoints
    for label in STRATEGIES:
        for k in WORKERS:
            items = [r for r in runs if r["strategy"] == label and r["workers"] == k]
            if not items:
                continue
            key = f"{label}@{k}"
            out["by_evaluations"][key] = {str(n): stats([best_at_evaluations(r, n) for r in items]) for n in EVALUATIONS}
            out["by_hours"][key] = {f"{h:.2f}": stats([best_at_hours(r, h) or 0.0 for r in items]) for h in checkpoints}
            if target is not None:
                reached = [reach(r, target) for r in items]
                hours = [h for h, _ in reached if h is not None]
                evals = [n for _, n in reached if n is not None]
                out["to_target"][key] = {
                    "reached": len(hours), "runs": len(items),
                    "hours": stats(hours) if hours else None, "evaluations": stats(evals) if evals else None,
                    "hours_fraction_of_one_worker": statistics.mean(hours) / base_hours if hours else None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--workers", nargs="+", type=int, default=list(WORKERS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(20)))
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--out", default=str(RESULTS / "search_async_nb201.json"))
    ap.add_argument("--summarize", action="store_true", help="only recompute the summary")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out)
    key = lambda r: (r["strategy"], r["workers"], r["seed"])  # noqa: E731
    if args.summarize:
        from common import update_locked

        update_locked(out_path, lambda res: {**res, "summary": summarize(res.get("runs", []))})
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
