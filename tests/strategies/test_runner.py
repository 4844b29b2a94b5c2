"""Runner pieces: Pareto front, config validation, the online surrogate in a real NB201 search, plots."""

from __future__ import annotations

import json

import pytest

from nas_predictor.errors import ConfigError
from nas_predictor.online import fit_online
from search_spaces.nasbench201 import NASBench201
from strategies.config import load_search_config
from strategies.oracle import NB201TableOracle
from strategies.runner import make_strategy, pareto_front, run_search
from strategies.surrogates import OnlineSurrogate


def test_pareto_front_keeps_only_undominated_points():
    points = [(5.0, 90.0), (3.0, 80.0), (4.0, 95.0), (6.0, 94.0), (3.0, 79.0), (1.0, 50.0)]
    assert sorted(pareto_front(points)) == [1, 2, 5]


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("strategy: evolution\nbugdet: 10\n")
    with pytest.raises(ConfigError, match="unknown config key 'bugdet'"):
        load_search_config(str(bad))
    with pytest.raises(ConfigError, match="guided applies to evolution and tpe"):
        load_search_config(None, strategy="random", guided=True)
    with pytest.raises(ConfigError, match="needs latency_setting"):
        load_search_config(None, max_latency_ms=5.0)
    cfg = load_search_config(None, ["strategy_params.top_k=3"], space="nb201", budget=7)
    assert (cfg.space, cfg.budget, cfg.strategy_params) == ("nasbench201", 7, {"top_k": 3})


def test_online_fit_refuses_what_cannot_be_ranked():
    archs = [NASBench201().arch_from_index(i) for i in range(3)]
    with pytest.raises(ConfigError, match="at least two evaluated architectures"):
        fit_online("nasbench201", archs, [50.0, 50.0, 50.0])
    with pytest.raises(ConfigError, match="3 architectures but 2 labels"):
        fit_online("nasbench201", archs, [1.0, 2.0])


def test_predictor_in_the_loop_refits_and_beats_its_random_start(data_dir):
    """A short real search: the online NAR-Former V2 is refit on the table's validation accuracies and
    what it picks after the random start is better than that start."""
    oracle = NB201TableOracle("cifar10", data_dir)
    surrogate = OnlineSurrogate("nasbench201", refit_every=5, steps=150, seed=0)
    strategy = make_strategy("predictor", num_init=10, top_k=5, num_local=0)
    summary = run_search(NASBench201(), strategy, oracle, 30, seed=0, surrogate=surrogate, progress=False)
    assert summary["evaluations"] == 30 and summary["surrogate_fits"] == 4
    values = [p["value"] for p in summary["best_so_far"]]
    assert values[-1] > values[9]  # the predictor's picks improved on the 10 random cells
    again = run_search(NASBench201(), make_strategy("predictor", num_init=10, top_k=5, num_local=0), oracle, 30, seed=0,
                       surrogate=OnlineSurrogate("nasbench201", refit_every=5, steps=150, seed=0), progress=False)
    assert [r["arch"] for r in again["top"]] == [r["arch"] for r in summary["top"]]


def test_shipped_search_configs_validate():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("search_*.yaml"))
    assert configs
    for path in configs:
        cfg = load_search_config(str(path))
        assert cfg.space == "nasbench201" and cfg.budget >= 1


def test_online_surrogate_scores_from_cached_tokens_like_the_predictor(data_dir):
    import numpy as np

    oracle = NB201TableOracle("cifar10", data_dir)
    space = NASBench201()
    archs = [space.arch_from_index(i) for i in range(0, 15625, 97)]
    records = [{"arch": a, "value": oracle.evaluate(a).value, "status": "ok"} for a in archs[:20]]
    surrogate = OnlineSurrogate("nasbench201", steps=50, seed=1)
    surrogate.update(records)
    assert surrogate.ready() and surrogate.fits == 1
    first = surrogate.score(archs[10:])
    again = surrogate.score(archs[::-1])  # cached rows, another order
    direct = surrogate._models[0].predict(archs)
    assert np.allclose(first, direct[10:], atol=1e-4) and np.allclose(again, direct[::-1], atol=1e-4)


def test_predictor_search_local_round_evaluates_neighbours_of_the_best():
    from strategies.oracle import FunctionOracle
    from strategies.surrogates import FunctionSurrogate

    space = NASBench201()
    calls = []

    def oracle(arch):
        calls.append(arch)
        return float(arch.count("nor_conv_3x3"))

    strategy = make_strategy("predictor", num_init=5, top_k=1, num_local=2, exhaustive_below=0, num_mutants=5,
                             num_random=20)
    # the surrogate knows nothing (constant), so what the local round adds is visible
    summary = run_search(space, strategy, FunctionOracle(oracle), 20, seed=0,
                         surrogate=FunctionSurrogate(lambda archs: [0.0] * len(archs)), progress=False)
    assert summary["evaluations"] == 20 and len(set(calls)) == 20
    best_so_far = [p["arch"] for p in summary["best_so_far"]]
    # after the random start, two of every three evaluations are neighbours of the best found before them
    local = sum(calls[n] in space.neighbours(best_so_far[n - 1]) for n in range(5, 20))
    assert local >= 10


def test_predictor_search_local_random_tries_neighbours_the_surrogate_ranks_low():
    from strategies.oracle import FunctionOracle
    from strategies.surrogates import FunctionSurrogate

    def run(local_random: int) -> float:
        strategy = make_strategy("predictor", num_init=5, top_k=1, num_local=2, local_random=local_random)
        # a surrogate that has learnt the wrong lesson: it ranks every convolution as harmful
        wrong = FunctionSurrogate(lambda archs: [-float(a.count("nor_conv_3x3")) for a in archs])
        oracle = FunctionOracle(lambda arch: float(arch.count("nor_conv_3x3")))
        summary = run_search(NASBench201(), strategy, oracle, 40, seed=3, surrogate=wrong, progress=False)
        assert summary["evaluations"] == 40 and len({r["arch"] for r in summary["top"]}) == len(summary["top"])
        return summary["best"]["value"]

    by_score, at_random = run(0), run(2)
    # by score, neither the ranked picks nor the best cell's neighbours ever add a convolution
    assert by_score + 1 <= at_random
    with pytest.raises(ConfigError, match="local_random of predictor: 3 is more than num_local"):
        make_strategy("predictor", num_local=2, local_random=3)


def _value(arch: str) -> float:
    """A deterministic score in [0, 1) per architecture."""
    return (sum(map(ord, arch)) % 97) / 97


@pytest.mark.parametrize("oracle", [lambda a: 0.0, lambda a: -1.0 - _value(a), lambda a: _value(a) - 0.5],
                         ids=["zero", "negative", "around-zero"])
def test_predictor_search_works_with_any_finite_oracle_value_and_resumes(oracle, tmp_path):
    from strategies.oracle import FunctionOracle

    def run():
        return run_search(NASBench201(), make_strategy("predictor", num_init=5), FunctionOracle(oracle, name="f"), 12,
                          out_dir=tmp_path, progress=False, plots=False,
                          surrogate=OnlineSurrogate("nasbench201", refit_every=3, min_points=4, steps=10))

    first = run()
    assert first["evaluations"] == 12 and first["failed"] == 0
    assert first["best"]["value"] == max(r["value"] for r in first["top"])
    again = run()  # the resume refits on the same values: it must not crash either
    assert again["replayed_from_history"] == 12 and again["best"] == first["best"]


def test_online_surrogate_label_map_keeps_order_and_positive_values_as_they_are():
    import numpy as np

    from strategies.surrogates import label_map

    assert label_map(np.array([80.0, 93.5])) == (0.0, 1.0)  # accuracies: the tuned recipe, unchanged
    shift, scale = label_map(np.array([-3.0, -1.0, 0.0]))
    assert scale > 0 and shift + scale * -3.0 == pytest.approx(50.0) and shift + scale * 0.0 == pytest.approx(90.0)


def test_a_nan_from_the_oracle_stops_the_search_naming_the_arch_and_keeps_the_history(tmp_path):
    import json
    import math

    from strategies.oracle import FunctionOracle, OracleError

    calls = []

    def oracle(arch):
        calls.append(arch)
        if len(calls) == 3:
            return math.nan
        if len(calls) == 2:
            raise RuntimeError("out of memory")  # a failed run: recorded, the search goes on
        return 90.0

    with pytest.raises(OracleError, match=r"function oracle returned the value nan for '\|") as err:
        run_search(NASBench201(), make_strategy("random"), FunctionOracle(oracle), 6, out_dir=tmp_path,
                   progress=False, plots=False)
    assert calls[2] in str(err.value)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=lambda t: pytest.fail(f"{t} in the history")) for line in lines[1:]]
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert records[1]["value"] is None and records[1]["error"] == "RuntimeError: out of memory"
    assert not (tmp_path / "summary.json").exists() or "NaN" not in (tmp_path / "summary.json").read_text()


def test_the_summary_counts_bound_verdicts_that_rest_on_an_unsure_latency(tmp_path):
    from nas_predictor.latency_domain import DOMAIN_KEY
    from strategies.constraints import FunctionLatency, LatencyConstraint, PredictedLatency
    from strategies.oracle import FunctionOracle

    def search(source):
        return run_search(NASBench201(), make_strategy("random"), FunctionOracle(lambda a: float(len(a))), 5, seed=0,
                          constraint=LatencyConstraint(source, 1e6), progress=False)

    unchecked = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path))
    # as a checkpoint saved before issue 26: no training domain, so no verdict of it can be trusted
    unchecked.predictor.meta = {k: v for k, v in unchecked.predictor.meta.items() if k != DOMAIN_KEY}
    summary = search(unchecked)
    assert summary["evaluations"] == 5 and summary["latency_unsure"] >= 5
    # your own latency function is no prediction: nothing to be unsure of
    assert search(FunctionLatency(lambda archs: [1.0] * len(archs)))["latency_unsure"] == 0


def _plotted_lines(ax):
    """(label, x data) of each line on the axes, vertical markers included."""
    return [(line.get_label(), list(line.get_xdata())) for line in ax.get_lines()]


def test_plots_of_a_predictor_oracle_name_the_metric_mark_the_budget_and_draw_no_duplicate(tmp_path):
    from strategies.constraints import FunctionLatency, LatencyConstraint
    from strategies.oracle import PredictorOracle
    from strategies.runner import write_plots

    oracle = PredictorOracle("nb201-accuracy")
    assert oracle.value_label == oracle.report_label == "predicted CIFAR-10 accuracy (%)"
    bound = LatencyConstraint(FunctionLatency(lambda archs: [float(len(a) % 7) for a in archs], "titan_rtx_1"), 4.5)
    summary = run_search(NASBench201(), make_strategy("random"), oracle, 8, seed=0, constraint=bound,
                         out_dir=tmp_path, progress=False)
    assert (tmp_path / "best_so_far.png").is_file() and (tmp_path / "pareto.png").is_file()
    records = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()[1:]]
    figures = write_plots(summary, records, tmp_path, oracle.value_label, oracle.report_label)
    ax = figures["best_so_far"].axes[0]
    # the report repeats the predicted value: one line for it, none hidden under it; the budget marked
    assert [label for label, _ in _plotted_lines(ax)] == [oracle.value_label, "budget (8 evaluations)"]
    assert _plotted_lines(ax)[1][1] == [8, 8]
    assert ax.get_ylabel() == oracle.value_label and ax.get_xlabel() == "evaluations"
    assert "random on nasbench201 (seed 0)" in ax.get_title() and "4.5 ms on titan_rtx_1" in ax.get_title()
    pareto = figures["pareto"].axes[0]
    assert ("latency bound 4.5 ms", [4.5, 4.5]) in _plotted_lines(pareto)
    assert pareto.get_ylabel() == oracle.value_label and pareto.get_title()
    assert pareto.get_xlabel() == "latency on titan_rtx_1 (ms), from your latency function"


def test_the_report_line_is_drawn_where_it_differs_and_is_named(data_dir, tmp_path):
    from strategies.runner import write_plots

    oracle = NB201TableOracle("cifar10", data_dir)
    assert oracle.value_label == "CIFAR-10 validation accuracy (%)"
    assert oracle.report_label == "CIFAR-10 test accuracy (%)"
    summary = run_search(NASBench201(), make_strategy("random"), oracle, 5, seed=0, out_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()[1:]]
    figures = write_plots(summary, records, tmp_path, oracle.value_label, oracle.report_label)
    labels = [label for label, _ in _plotted_lines(figures["best_so_far"].axes[0])]
    assert labels == [oracle.value_label, "CIFAR-10 test accuracy (%) (reported, not searched)",
                      "budget (5 evaluations)"]
    assert "pareto" not in figures  # no latency, no Pareto plot
    assert NB201TableOracle("cifar100", data_dir).value_label == "CIFAR-100 test accuracy (%)"


@pytest.mark.parametrize("setting, source, label", [
    ("titan_rtx_1", "latency on titan_rtx_1 predicted by latency-help-b1",
     "latency on titan_rtx_1 (ms), predicted by latency-help-b1"),
    ("pixel3_1", "measured latency on pixel3_1", "latency on pixel3_1 (ms), measured"),
    ("cpu_1", "latency on cpu_1 predicted by p, mapped x1.2", "latency on cpu_1 (ms), predicted by p, mapped x1.2"),
])
def test_the_latency_axis_names_the_setting_and_the_source(setting, source, label):
    from strategies.runner import latency_axis_label

    assert latency_axis_label({"setting": setting, "max_ms": 9.0, "source": source}) == label
    assert latency_axis_label(None) == "latency (ms)"


def test_a_whole_network_space_is_ranked_whole_only_when_its_graphs_fit_in_memory():
    # beyond the space's graph memory every candidate of an exhaustive round would be exported again
    # each round (0.2-0.6 s apiece): the search falls back to its mutant + random pools
    from strategies.base import SearchContext
    from strategies.history import SearchHistory
    from strategies.oracle import FunctionOracle
    import numpy as np

    from tests.python_spaces import contract_space

    space = contract_space()
    strategy = make_strategy("predictor", num_parents=1, num_mutants=5, num_random=5)
    ctx = SearchContext(space=space, oracle=FunctionOracle(lambda a: 1.0), budget=10, rng=np.random.default_rng(0),
                        history=SearchHistory(None, {}), progress=False)
    assert len(strategy._candidates(ctx)) == len(space) == 252  # 252 graphs fit the default 256
    space.NETWORK_CACHE_SIZE = 100
    assert len(strategy._candidates(ctx)) <= 10


def test_pool_sizes_follow_the_space_unless_set_and_the_history_records_what_was_used():
    # a whole network's graph is read before it is scored (20-40 ms), a cell's tokens cost microseconds
    from strategies.predictor_search import CELL_POOL, NETWORK_POOL, PredictorSearch

    from tests.python_spaces import contract_space

    cells, networks = NASBench201(), contract_space()
    default = PredictorSearch()
    assert default.pool_sizes(cells) == (CELL_POOL["num_mutants"], CELL_POOL["num_random"]) == (100, 200)
    assert default.pool_sizes(networks) == (NETWORK_POOL["num_mutants"], NETWORK_POOL["num_random"]) == (30, 60)
    assert PredictorSearch(num_mutants=7, num_random=0).pool_sizes(networks) == (7, 0)
    # a cell search's identity is what it was before the network defaults existed (its histories resume)
    assert default.params(cells)["num_mutants"] == 100 and default.params(cells)["num_random"] == 200
    assert default.params(networks)["num_random"] == 60
    assert default.params()["num_mutants"] is None
    with pytest.raises(ConfigError, match="num_random"):
        PredictorSearch(num_random=-1)


def test_a_whole_network_round_reads_each_new_candidate_once_and_never_picks_an_evaluated_network(monkeypatch):
    from strategies.base import SearchContext
    from strategies.history import SearchHistory
    from strategies.oracle import FunctionOracle
    from strategies.surrogates import FunctionSurrogate
    import numpy as np

    from tests.python_spaces import contract_space

    space = contract_space()
    space.NETWORK_CACHE_SIZE = 10  # no exhaustive round: mutants + random, as on a large space
    reads: list[str] = []
    to_graph = space.to_graph
    monkeypatch.setattr(space, "to_graph", lambda a: reads.append(a) or to_graph(a))
    strategy = make_strategy("predictor", num_init=4, top_k=2, num_local=0, num_parents=2)
    tokens: dict[str, float] = {}

    def scored(arch: str) -> float:
        if arch not in tokens:
            tokens[arch] = float(space.to_graph(arch).num_nodes)
        return tokens[arch]

    ctx = SearchContext(space=space, oracle=FunctionOracle(lambda a: float(len(a))), budget=12,
                        rng=np.random.default_rng(0), history=SearchHistory(None, {}), progress=False,
                        # scored from each candidate's graph, kept by id, as the online surrogate keeps its tokens
                        surrogate=FunctionSurrogate(lambda archs: [scored(a) for a in archs]))
    strategy.run(ctx)
    records = ctx.records()
    keys = [space.equivalence_key(r["arch"]) for r in records]
    assert len(records) == 12 and len(set(keys)) == len(keys)  # no network evaluated twice
    # a candidate's graph is read to score it; only the picks are read again (for their key, once the
    # space's graph memory dropped them): reading every candidate for its key first read each pool twice
    assert len(reads) - len(set(reads)) <= len(records)
