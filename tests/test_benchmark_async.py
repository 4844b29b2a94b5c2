"""benchmarks/search_async_nb201.py's summary: the target, the time to it against one worker, hour
checkpoints that never mix runs with and without a result; and its report table."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import search_async_nb201 as bench  # noqa: E402


def run(strategy, workers, seed, hours, best):
    return {"strategy": strategy, "workers": workers, "seed": seed, "budget": len(hours), "hours": hours,
            "best_test": best}


def runs():
    # one worker: seed 0 reaches 94 at 10 h (2nd evaluation), seed 1 at 30 h (3rd); target = mean best at 100 = 94
    out = [run("ours", 1, 0, [5.0, 10.0, 20.0], [93.0, 94.0, 94.0]), run("ours", 1, 1, [0.5, 20.0, 30.0], [92.0, 93.0, 94.0])]
    # four workers: the same results in a fifth of the time, one evaluation later each
    out += [run("ours", 4, 0, [1.0, 1.5, 2.0, 3.0], [92.0, 93.0, 93.5, 94.0]),
            run("ours", 4, 1, [1.5, 2.0, 3.0, 4.0], [92.0, 93.0, 93.0, 94.0])]
    out += [run("random", 4, s, [0.5, 2.0, 8.0], [91.0, 92.0, 93.0]) for s in (0, 1)]
    return out


def test_the_target_is_the_one_worker_mean_best_and_times_are_against_that_workers_own_time_to_it():
    s = bench.summarize(runs())
    assert s["target"]["best_test"] == pytest.approx(94.0)
    assert s["target"]["one_worker_hours"]["mean"] == pytest.approx(20.0)
    four = s["to_target"]["ours@4"]
    assert four["reached"] == 2 and four["hours"]["mean"] == pytest.approx(3.5)
    assert four["hours_fraction_of_one_worker"] == pytest.approx(3.5 / 20.0)
    assert four["more_evaluations_than_one_worker"] == pytest.approx(4.0 / 2.5 - 1)
    assert s["to_target"]["random@4"]["reached"] == 0 and s["to_target"]["random@4"]["hours_fraction_of_one_worker"] is None


def test_an_hour_checkpoint_counts_only_runs_with_a_result_and_says_how_many():
    s = bench.summarize(runs())
    one = {p["hours"]: p for p in s["by_hours"]["ours@1"]}
    assert one[1]["runs_with_a_result"] == 1 and one[1]["mean"] == pytest.approx(92.0)
    assert one[8]["runs_with_a_result"] == 2 and one[8]["mean"] == pytest.approx(92.5)
    assert [p["hours"] for p in s["by_hours"]["ours@1"]] == list(bench.HOUR_CHECKPOINTS)
    versus = {p["hours"]: p for p in s["versus"]["ours@4 vs random@4"]}
    assert versus[4]["difference"] == pytest.approx(94.0 - 92.0)


def test_the_report_leaves_out_a_lead_where_some_run_had_no_result(load_tool, monkeypatch):
    from results_tables import async_search, common

    summary = bench.summarize(runs() + [run("tpe-liar", k, s, [2.0, 4.0], [92.0, 93.0]) for k in (1, 4) for s in (0, 1)]
                              + [run("random", 1, s, [0.5, 2.0], [91.0, 92.0]) for s in (0, 1)])
    monkeypatch.setattr(common, "load", lambda stem: {"summary": summary})
    rows = async_search.async_hours_table()
    lead = next(r for r in rows if r.startswith("| ours − best baseline | 4 |"))
    assert lead.split(" | ")[2].startswith("–")  # 1 h: not every run had a result
    assert "+1.00" in lead.split(" | ")[4]  # 4 h: ours 94.0 (run 0) / 93.0 (run 1) vs tpe 93.0
    target = async_search.async_target_table()
    assert any(r.startswith("| ours | 4 | 2 / 2 |") and "0.175" in r for r in target)


def test_ours_with_proxies_is_compared_with_the_baselines_and_gets_its_own_lead_row(load_tool, monkeypatch):
    from results_tables import async_search, common

    zc = [run("ours-zc", 4, s, [0.5, 1.0, 2.0], [93.0, 94.0, 94.2]) for s in (0, 1)]
    tpe = [run("tpe-liar", 4, s, [0.5, 2.0], [92.0, 93.0]) for s in (0, 1)]
    summary = bench.summarize(runs() + zc + tpe)
    versus = {p["hours"]: p for p in summary["versus"]["ours-zc@4 vs random@4"]}
    assert versus[2]["difference"] == pytest.approx(94.2 - 92.0)
    assert "ours-zc@4 vs ours@4" not in summary["versus"]
    monkeypatch.setattr(common, "load", lambda stem: {"summary": summary})
    rows = async_search.async_hours_table()
    lead = next(r for r in rows if r.startswith("| ours-zc − best baseline | 4 |"))
    assert "+1.20" in lead.split(" | ")[4]  # 2 h: 94.2 against tpe-liar's 93.0 (random: 92.0)


def test_ours_with_proxies_warm_starts_on_the_vote_and_refits_on_the_proxies():
    from nas_predictor.spaces import get_space

    proposer = bench.Proposer("ours-zc", get_space("nasbench201"), seed=0, budget=10)
    assert proposer.strategy.warm_start == "zero_cost"
    assert proposer.surrogate.cfg.encoding.proxies == ["synflow", "jacov", "naswot", "snip", "grad_norm", "params",
                                                       "flops"]
