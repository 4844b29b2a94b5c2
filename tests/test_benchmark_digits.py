"""benchmarks/digits_search.py's summary (mean, std, worst seed) and the results table made from it."""

from __future__ import annotations

import pytest


def _run(strategy: str, seed: int, best: float, wall: float) -> dict:
    curve = [best - 2.0] * 9 + [best - 1.0] * 10 + [best] * 11
    return {"strategy": strategy, "seed": seed, "best_validation": best, "best_test": best - 0.5, "curve": curve,
            "wall_seconds": wall, "over_bound_evaluated": 0}


def test_the_summary_and_its_table(load_benchmark, load_tool, monkeypatch):
    bench = load_benchmark("digits_search")
    runs = [_run("predictor", 0, 98.0, 300.0), _run("predictor", 1, 96.0, 200.0), _run("random", 0, 97.0, 100.0)]
    summary = bench.summarize(runs)
    ours = summary["predictor"]
    assert ours["seeds"] == [0, 1] and ours["best_validation"]["mean"] == pytest.approx(97.0)
    assert ours["best_validation"]["std"] == pytest.approx(2 ** 0.5) and ours["best_validation"]["worst"] == 96.0
    assert ours["worst_seed"] == {"seed": 1, "best_validation": 96.0, "best_test": 95.5}
    assert ours["wall_seconds"]["worst"] == 300.0  # the slowest run is the worst one
    assert ours["best_validation_at_10"]["mean"] == pytest.approx(96.0)
    assert summary["random"]["best_validation"]["std"] == 0.0

    report = load_tool("report")
    bound = {"max_ms": 0.5, "setting": "cpu_ort_1t", "source": "latency on cpu_ort_1t predicted by latency-cpu-ort"}
    monkeypatch.setattr(report.common, "load", {"digits_search": {"settings": {"bound": bound},
                                                                    "summary": summary}}.get)
    rows = report.accuracy.digits_search_table()
    assert rows[2] == ("| latency on cpu_ort_1t predicted by latency-cpu-ort ≤ 0.5 ms | predictor | 2 | 97.00 ± 1.41 | "
                       "96.00 (seed 1) | 96.50 ± 1.41 | 96.00 ± 1.41 / 97.00 ± 1.41 / 97.00 ± 1.41 | 0 | 250 |")
    assert len(rows) == 4
