"""benchmarks/common.py: results files that processes running side by side append to."""

import multiprocessing
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402


def _summary(runs):
    return {"runs": len(runs)}


def _append_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        # each process holds a stale copy of the file (here: an empty one), as a long benchmark does between its runs
        common.append_locked(Path(path), {"runs": [], "commands": [f"worker {worker}"]},
                                       {"seed": worker, "model": f"m{i}"}, key=lambda r: (r["seed"], r["model"]),
                                       summarize=_summary)


def test_two_processes_appending_at_once_lose_no_run(tmp_path):
    path = tmp_path / "results.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 15)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    final = common.load_results(path)
    assert sorted((r["seed"], r["model"]) for r in final["runs"]) == sorted((w, f"m{i}") for w in (0, 1) for i in range(15))
    assert final["summary"] == {"runs": 30}
    assert sorted(final["commands"]) == ["worker 0", "worker 1"]


def test_update_locked_applies_a_change_to_what_is_on_disk(tmp_path):
    path = tmp_path / "results.json"
    common.save_results(path, {"runs": [1, 2]})
    written = common.update_locked(path, lambda r: {**r, "speed": {"threads": 2}})
    assert written == common.load_results(path) == {"runs": [1, 2], "speed": {"threads": 2}}


def test_the_worst_seed_is_the_highest_error_and_the_lowest_accuracy_or_rank_correlation():
    import latency_real

    part = lambda mape, acc, rho: {"mape": mape, "acc_10pct": acc, "spearman": rho, "max_error": 2 * mape}  # noqa: E731
    runs = [{"model": "graph", "seed": s, "real": {p: part(m, a, r) for p in ("all", "seen", "unseen", "calibrated_5")},
             "generated_test": {"mape": m, "acc_10pct": a}} for s, (m, a, r) in enumerate([(0.1, 0.8, 0.99), (0.2, 0.6, 0.97)])]
    row = latency_real.summarize(runs)["graph"]
    assert row["all"]["mape"]["worst"] == 0.2 and row["all"]["max_error"]["worst"] == 0.4
    assert row["all"]["acc_10pct"]["worst"] == 0.6 and row["all"]["spearman"]["worst"] == 0.97
    assert row["generated_test"]["acc_10pct"]["worst"] == 0.6


def test_a_stale_copy_never_brings_back_a_run_another_process_replaced(tmp_path):
    path = tmp_path / "results.json"
    key = lambda r: (r["seed"],)  # noqa: E731
    stale = common.append_locked(path, {}, {"seed": 0, "value": "old"}, key=key, summarize=_summary)
    # another process reruns seed 0 meanwhile
    common.append_locked(path, {}, {"seed": 0, "value": "new"}, key=key, summarize=_summary)
    # the first process, still holding its copy with the old seed 0, appends its next run
    common.append_locked(path, stale, {"seed": 1, "value": "x"}, key=key, summarize=_summary)
    final = common.load_results(path)
    assert {r["seed"]: r["value"] for r in final["runs"]} == {0: "new", 1: "x"}
