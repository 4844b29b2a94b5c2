"""The asynchronous NAS-Bench-201 search for real: k worker processes share one study on a PostgreSQL server,
each evaluation sleeping for its simulated training time scaled down (issue 30).

What ``benchmarks/search_async_nb201.py`` simulates with an event queue, done here by k operating-system
processes, each the worker ``nas-predictor search --storage postgresql://... --study NAME`` runs
(``strategies.study.run_worker``: the predictor-guided proposal, Optuna's RDB storage, its heartbeat, the
claim lock): an evaluation reads the real table (cifar10-valid validation accuracy; reported the test
accuracy) and then sleeps the cell's simulated training hours (the same cost: HELP's ``titan_rtx_256``
latency x 3 x 196 steps x 200 epochs) times ``--seconds-per-hour``. The best-so-far curves are read back
from the study (trials in order of completion; time from the first trial's start, in simulated hours =
seconds / seconds-per-hour, so proposals' own compute counts as training time) and compared with the
simulator's runs at the same k.

    eval "$(.ci/postgres start)"
    python benchmarks/search_async_postgres.py --storage "$NAS_PREDICTOR_TEST_POSTGRES" --seeds 0 1 2
    .ci/postgres stop "$PGTEST_DIR"
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, append_locked, code_commit, command_line, load_results, machine, welch  # noqa: E402
from search_async_nb201 import EVALUATIONS, HOURS_PER_MS, SETTING, best_at_evaluations, best_at_hours  # noqa: E402

SIMULATED = RESULTS / "search_async_nb201.json"
HOUR_POINTS = (1, 2, 4, 8, 16, 32)


def cost_hours() -> dict[str, float]:
    from nas_predictor.data.latency_tables import load_help_latency
    from search_spaces.nasbench201 import NASBench201

    space = NASBench201()
    table = load_help_latency("nasbench201", SETTING)
    return {space.canonical(a): float(ms) * HOURS_PER_MS for a, ms in zip(table.archs, table.latency_ms)}


def worker(args: argparse.Namespace) -> int:
    """One worker process: the CLI's shared-search worker with a table oracle that sleeps."""
    import torch

    from strategies.assemble import assemble_search
    from strategies.config import SearchConfig
    from strategies.oracle import Oracle
    from strategies.study import run_worker

    torch.set_num_threads(1)
    hours = cost_hours()
    cfg = SearchConfig(space="nasbench201", strategy="predictor", budget=args.budget, seed=args.seed, oracle="table")
    setup = assemble_search(cfg, None, "cpu", progress=False)
    table = setup.oracle

    class Sleeping(Oracle):
        report_key, value_label = table.report_key, table.value_label

        def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
            time.sleep(hours[setup.space.canonical(arch)] * args.seconds_per_hour)
            ev = table.evaluate(arch)
            return ev.value, ev.report

    result = run_worker(setup.space, setup.strategy, Sleeping(), args.budget, args.storage, args.study,
                        seed=args.seed, surrogate=setup.surrogate, worker_seed=args.worker_index)
    print(f"worker {args.worker_index}: {result['evaluated_here']} evaluations", flush=True)
    return 0


def read_study(storage: str, study: str, seconds_per_hour: float) -> dict:
    """The study's completed trials in order of completion: hours since the first start, best test so far."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    t0 = min(t.datetime_start for t in trials if t.datetime_start is not None)
    done = sorted((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.datetime_complete)
    times, best, archs, workers = [], [], [], []
    top = (-float("inf"), None)
    for t in done:
        if t.value > top[0]:
            top = (t.value, t.user_attrs["report"]["test_accuracy"])
        times.append((t.datetime_complete - t0).total_seconds() / seconds_per_hour)
        best.append(top[1])
        archs.append(t.user_attrs["arch"])
        workers.append(t.user_attrs["worker"])
    states = [t.state.name for t in trials]
    return {"hours": times, "best_test": best, "evaluated_archs": archs, "worker_names": sorted(set(workers)),
            "trials": len(trials), "completed": len(done), "failed": states.count("FAIL"),
            "distinct_completed_archs": len(set(archs))}


def compare(runs: list[dict], workers: int) -> dict:
    """These runs against the simulator's runs at the same k, at each evaluation count and hour point."""
    sim = [r for r in load_results(SIMULATED).get("runs", []) if r["strategy"] == "ours" and r["workers"] == workers]
    out: dict = {"simulated_runs": len(sim), "by_evaluations": {}, "by_hours": {}}
    for n in EVALUATIONS:
        real = [best_at_evaluations(r, n) for r in runs]
        out["by_evaluations"][str(n)] = {"real": statistics.mean(real), "simulated": statistics.mean(
            best_at_evaluations(r, n) for r in sim), **(welch(real, [best_at_evaluations(r, n) for r in sim])
                                                       if len(real) > 1 else {})}
    for h in HOUR_POINTS:
        real = [v for v in (best_at_hours(r, h) for r in runs) if v is not None]
        simv = [v for v in (best_at_hours(r, h) for r in sim) if v is not None]
        if real and simv:
            out["by_hours"][str(h)] = {"real": statistics.mean(real), "real_runs": len(real),
                                       "simulated": statistics.mean(simv), "simulated_runs": len(simv),
                                       **(welch(real, simv) if len(real) > 1 and len(simv) > 1 else {})}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", default=os.environ.get("NAS_PREDICTOR_TEST_POSTGRES"),
                    help="a postgresql:// URL (default: $NAS_PREDICTOR_TEST_POSTGRES, set by .ci/postgres start)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--seconds-per-hour", type=float, default=15.0,
                    help="real seconds slept per simulated training hour (a cell takes 0.19-1.56 h)")
    ap.add_argument("--out", default=str(RESULTS / "search_async_postgres.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--study", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.storage:
        ap.error("give --storage postgresql://... (or start .ci/postgres, which sets NAS_PREDICTOR_TEST_POSTGRES)")
    if args.worker:
        return worker(args)

    out_path = Path(args.out)
    results = load_results(out_path)
    results.update({"benchmark": "search_async_postgres", "machine": machine(), "storage": "PostgreSQL (.ci/postgres)",
                    "cost": {"setting": SETTING, "hours_per_ms": HOURS_PER_MS,
                             "seconds_per_simulated_hour": args.seconds_per_hour}})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    key = lambda r: (r["workers"], r["seed"], r["seconds_per_hour"], r["budget"])  # noqa: E731
    done = {key(r) for r in results.get("runs", [])}
    code = code_commit()

    def summarize(runs: list[dict]) -> dict:
        by_k: dict = {}
        for k in sorted({r["workers"] for r in runs}):
            by_k[str(k)] = compare([r for r in runs if r["workers"] == k], k)
        return by_k

    for seed in args.seeds:
        if (args.workers, seed, args.seconds_per_hour, args.budget) in done:
            continue
        study = f"async-nb201-k{args.workers}-seed{seed}-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        base = [sys.executable, __file__, "--worker", "--storage", args.storage, "--study", study, "--seed", str(seed),
                "--budget", str(args.budget), "--seconds-per-hour", str(args.seconds_per_hour)]
        procs = [subprocess.Popen([*base, "--worker-index", str(i)]) for i in range(args.workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            print(f"seed {seed}: a worker exited with {codes}; nothing recorded", file=sys.stderr)
            return 1
        run = {"workers": args.workers, "seed": seed, "budget": args.budget, "seconds_per_hour": args.seconds_per_hour,
               "study": study, "wall_seconds": time.perf_counter() - t0, "code": code,
               **read_study(args.storage, study, args.seconds_per_hour)}
        results = append_locked(out_path, results, run, key=key, summarize=summarize)
        print(f"[k={args.workers} seed {seed}] best test {run['best_test'][-1]:.2f}, {run['completed']} completed "
              f"({run['distinct_completed_archs']} distinct, {run['failed']} failed), {run['hours'][-1]:.1f} "
              f"simulated hours in {run['wall_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
