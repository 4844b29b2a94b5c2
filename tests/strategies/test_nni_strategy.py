"""PredictorGuidedStrategy: our search driving NNI's execution engine, in a NasExperiment on the hub's
NasBench201 (FunctionalEvaluator) and on BenchmarkModelSpace (NAS-Bench-201 and -101)."""

from __future__ import annotations

import pytest

from tests.strategies.nni_support import import_nni

nni = import_nni()

import torch  # noqa: E402
from nni.nas.benchmark import BenchmarkModelSpace  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.strategy.middleware import Chain, Filter  # noqa: E402

from nas_predictor.errors import ConfigError  # noqa: E402
from search_spaces.nasbench201 import NASBench201  # noqa: E402
from strategies import FunctionSurrogate, LatencyConstraint, OnlineSurrogate, PredictorSearch, TableLatency  # noqa: E402
from strategies.nni_bridge import (  # noqa: E402
    LatencyFilter, NB101PredictorBenchmark, NB201TableBenchmark, PredictorGuidedStrategy, current_arch,
)
from strategies.nni_bridge.strategy import split_metric  # noqa: E402
from strategies.oracle import NB201TableOracle  # noqa: E402
from strategies.runner import run_search  # noqa: E402

PIXEL3_BOUND = 10.6756


def conv_count(archs):
    """A cheap deterministic surrogate: more 3x3 convolutions, then more 1x1, score higher."""
    return [a.count("nor_conv_3x3") + 0.4 * a.count("nor_conv_1x1") for a in archs]


def small_search() -> PredictorSearch:
    return PredictorSearch(num_init=6, top_k=2, num_local=1)


def table_trial(model, oracle):
    """A FunctionalEvaluator function: it gets the built network and reads its arch off NNI."""
    assert isinstance(model, torch.nn.Module)
    nni.report_final_result(float(oracle.evaluate(current_arch()).value))


@pytest.fixture(scope="module")
def oracle(data_dir):
    return NB201TableOracle("cifar10", str(data_dir))


@pytest.fixture(scope="module")
def table(data_dir):
    return NB201TableBenchmark("cifar10", data_dir=str(data_dir))


def test_in_a_nas_experiment_on_the_hub_space(oracle, tmp_path):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.hub.pytorch import NasBench201

    strategy = PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count), seed=3)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 12
    config.experiment_working_directory = str(tmp_path)
    exp = NasExperiment(NasBench201(), FunctionalEvaluator(table_trial, oracle=oracle), strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    records = strategy.records()
    assert len(records) == 12 and len({r["arch"] for r in records}) == 12
    assert all(r["status"] == "ok" and r["value"] == pytest.approx(oracle.evaluate(r["arch"]).value)
               for r in records)
    assert strategy.summary()["stop"] == "budget"
    best = max(records, key=lambda r: r["value"])
    top = exp.export_top_models(top_k=1, formatter="dict")[0]
    assert strategy.mapping.to_arch(top) == best["arch"]
    assert list((tmp_path / exp.id / "checkpoint").glob("state.ckpt*"))  # state_dict was saved


def test_walks_the_stand_alone_path(table, oracle):
    """Same seed, same values, same surrogate: the NNI strategy evaluates what run_search evaluates."""
    def online():
        return OnlineSurrogate("nasbench201", seed=5, steps=30, refit_every=4)

    search = PredictorSearch(num_init=8, top_k=2, num_local=1)
    alone = run_search(NASBench201(), search, oracle, 16, seed=5, surrogate=online(), progress=False, plots=False)
    strategy = PredictorGuidedStrategy(PredictorSearch(num_init=8, top_k=2, num_local=1), surrogate=online(), seed=5)
    strategy(BenchmarkModelSpace(table), SequentialExecutionEngine(max_model_count=16))
    assert strategy.summary()["evaluated_archs"] == alone["evaluated_archs"]
    assert strategy.summary()["surrogate_fits"] == alone["surrogate_fits"] > 0
    # the table evaluator's test accuracy lands in the records' reports
    best = strategy.best()
    assert best["report"]["test_accuracy"] == pytest.approx(oracle.evaluate(best["arch"]).report["test_accuracy"])


def test_budget_target_and_named_search(table, oracle):
    strategy = PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count), budget=5)
    engine = SequentialExecutionEngine(max_model_count=50)
    strategy(BenchmarkModelSpace(table), engine)
    assert len(list(engine.list_models())) == 5 and strategy.summary()["stop"] == "budget"

    # a surrogate that knows the table picks the optimum right after the random starts
    optimum = oracle.global_optimum()
    cheat = FunctionSurrogate(lambda archs: [oracle.evaluate(a).value for a in archs])
    strategy = PredictorGuidedStrategy(small_search(), surrogate=cheat, target=optimum["search_value"])
    engine = SequentialExecutionEngine(max_model_count=50)
    strategy(BenchmarkModelSpace(table), engine)
    assert strategy.summary()["stop"] == "target reached"
    assert strategy.best()["arch"] == optimum["arch"] and len(list(engine.list_models())) < 50

    strategy = PredictorGuidedStrategy("evolution", seed=1)  # our regularized evolution, needs no surrogate
    strategy(BenchmarkModelSpace(table), SequentialExecutionEngine(max_model_count=25))
    assert len(strategy.records()) == 25 and strategy.summary()["surrogate_fits"] == 0


def test_resumes_from_its_state_dict(table):
    def make(seed=2):
        return PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count), seed=seed)

    first = make()
    first(BenchmarkModelSpace(table), SequentialExecutionEngine(max_model_count=10))
    state = first.state_dict()
    resumed, engine = make(), SequentialExecutionEngine(max_model_count=6)
    resumed.initialize(BenchmarkModelSpace(table), engine)
    resumed.load_state_dict(state)
    resumed.run()
    assert [r["arch"] for r in resumed.records()[:10]] == [r["arch"] for r in first.records()]
    assert resumed.summary()["replayed_from_checkpoint"] == 10
    assert len(list(engine.list_models())) == 6 and len(resumed.records()) == 16
    other = make(seed=9)
    other.initialize(BenchmarkModelSpace(table), SequentialExecutionEngine())
    with pytest.raises(ConfigError, match="another search"):
        other.load_state_dict(state)


def test_latency_bound_inside_the_search_and_as_a_chained_filter(table, data_dir):
    latency = TableLatency("pixel3", data_dir=str(data_dir))
    strategy = PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count),
                                       constraint=LatencyFilter(PIXEL3_BOUND, latency))
    strategy(BenchmarkModelSpace(table), SequentialExecutionEngine(max_model_count=15))
    archs = strategy.summary()["evaluated_archs"]
    assert len(archs) == 15 and max(latency.latency_ms(archs)) <= PIXEL3_BOUND
    assert strategy.summary()["rejected_over_bound"] > 0  # conv-heavy picks are over the bound
    # a LatencyConstraint works the same
    strategy = PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count),
                                       constraint=LatencyConstraint(latency, PIXEL3_BOUND))
    strategy(BenchmarkModelSpace(table), SequentialExecutionEngine(max_model_count=5))
    assert max(latency.latency_ms(strategy.summary()["evaluated_archs"])) <= PIXEL3_BOUND

    # NNI's Filter below it: rejected models never reach the engine; the search records them failed
    chained = Chain(PredictorGuidedStrategy(small_search(), surrogate=FunctionSurrogate(conv_count)),
                    Filter(LatencyFilter(PIXEL3_BOUND, latency)))
    engine = SequentialExecutionEngine(max_model_count=10)
    chained(BenchmarkModelSpace(table), engine)
    ran = [table.to_arch(m.sample) for m in engine.list_models()]
    assert len(ran) == 10 and max(latency.latency_ms(ran)) <= PIXEL3_BOUND
    failed = [r for r in chained[0].records() if r["status"] == "failed"]
    assert failed and all(r["error"] == "model invalid" for r in failed)


def test_on_nb101_benchmark_space(data_dir):
    from nas_predictor.data.nb101 import load_nb101_subset
    from nas_predictor.online import fit_online
    from search_spaces.nasbench101 import NASBench101

    cells = load_nb101_subset(str(data_dir)).merged()
    predictor, _ = fit_online("nasbench101", cells.arch_strs[:40], cells.valid_acc[:40], steps=20)
    evaluator = NB101PredictorBenchmark(predictor)
    strategy = PredictorGuidedStrategy(PredictorSearch(num_init=5, top_k=2, num_local=1, num_mutants=10,
                                                       num_random=20),
                                       surrogate=FunctionSurrogate(lambda a: predictor.predict(list(a))), seed=4)
    engine = SequentialExecutionEngine(max_model_count=12)
    strategy(BenchmarkModelSpace(evaluator), engine)
    assert strategy.mapping.space_name == "nasbench101"
    records = strategy.records()
    space = NASBench101()
    assert len(records) == 12 and len({space.equivalence_key(r["arch"]) for r in records}) == 12
    assert [r["value"] for r in records] == pytest.approx(list(predictor.predict([r["arch"] for r in records])))


def test_other_spaces_need_an_input_shape(table):
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from nni.nas.space import RawFormatModelSpace

    class Tiny(ModelSpace):
        def __init__(self):
            super().__init__()
            self.layer = LayerChoice([torch.nn.Linear(2, 2), torch.nn.Identity()], label="layer")

        def forward(self, x):
            return self.layer(x)

    space = RawFormatModelSpace.from_model(Tiny(), table)
    with pytest.raises(ConfigError, match="model space Tiny is not NAS-Bench-101/201: pass input_shape"):
        PredictorGuidedStrategy().initialize(space, SequentialExecutionEngine())
    # with one, it is searched as whole networks (tests/strategies/test_nni_space.py)
    strategy = PredictorGuidedStrategy(input_shape=(1, 2))
    strategy.initialize(space, SequentialExecutionEngine())
    assert strategy.mapping.space_name == "nni-Tiny" and dict(strategy.mapping.space.choices()) == {"layer": (0, 1)}
    with pytest.raises(ConfigError, match="one of our strategies"):
        PredictorGuidedStrategy(search=object())


def test_metric_forms():
    assert split_metric(0.5) == (0.5, {})
    assert split_metric({"default": 91.0, "test": 93.5, "note": "x"}) == (91.0, {"test": 93.5})
    assert split_metric(None) == (None, {})
