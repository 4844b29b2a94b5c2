"""Our BenchmarkEvaluator subclasses: NAS-Bench-201 / NAS-Bench-101 samples scored from our tables and
by our predictors, called directly and through NNI's engine."""

from __future__ import annotations

import numpy as np
import pytest

from tests.strategies.nni_support import import_nni

import_nni()

from nni.nas.benchmark import BenchmarkModelSpace, NasBench101Benchmark  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402

from nas_predictor.errors import ConfigError  # noqa: E402
from search_spaces.nasbench101 import NASBench101  # noqa: E402
from strategies.nni_bridge import (  # noqa: E402
    NB101PredictorBenchmark, NB101TableBenchmark, NB201PredictorBenchmark, NB201TableBenchmark,
    nb101_arch_to_sample, nb201_arch_to_sample,
)

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def nb201(data_dir):
    return NB201TableBenchmark("cifar10", data_dir=str(data_dir))


def test_nb201_table_scores_validation_and_reports_test(nb201, data_dir):
    sample = nb201_arch_to_sample(BEST)
    assert nb201.evaluate(sample) == pytest.approx(91.606667, abs=1e-5)  # cifar10-valid validation
    assert nb201.arch_report(BEST) == {"test_accuracy": pytest.approx(94.373333, abs=1e-5)}
    test = NB201TableBenchmark("cifar10", metric="test", data_dir=str(data_dir), scale=0.01)
    assert test.evaluate({f"cell/{k}": v for k, v in sample.items()}) == pytest.approx(0.94373333, abs=1e-7)
    with pytest.raises(ConfigError, match="metric must be"):
        NB201TableBenchmark(metric="valid", data_dir=str(data_dir))


def test_nb201_table_through_the_engine(nb201):
    space = BenchmarkModelSpace(nb201)
    engine = SequentialExecutionEngine()
    models = [space.freeze(nb201_arch_to_sample(a)) for a in (BEST, nb201.oracle.arch_strs[7])]
    engine.submit_models(*models)
    assert [m.metric for m in models] == [pytest.approx(nb201.score(a)) for a in (BEST, nb201.oracle.arch_strs[7])]
    assert all(m.status.value == "trained" for m in models)


def test_nb201_space_validation(nb201):
    from nni.nas.hub.pytorch import NasBench201

    BenchmarkModelSpace(NasBench201(), nb201)  # the hub space is this benchmark's space
    with pytest.raises(ValueError, match="Expect space"):
        BenchmarkModelSpace(BenchmarkModelSpace(NasBench101Benchmark()), nb201)
    assert set(nb201.default_space()) == set(nb201_arch_to_sample(BEST))


def test_nb201_predictor_benchmark_is_the_shipped_predictor():
    from nas_predictor.predictor import load_predictor

    evaluator = NB201PredictorBenchmark()
    archs = [BEST, "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"]
    expected = load_predictor("nb201-accuracy").predict(archs)
    assert [evaluator.evaluate(nb201_arch_to_sample(a)) for a in archs] == pytest.approx(list(expected))
    assert evaluator.score_many(archs) == pytest.approx(list(expected))
    with pytest.raises(ConfigError, match="predict"):
        NB201PredictorBenchmark(predictor=object())


def test_nb101_table_scores_subset_cells_and_names_missing_ones(data_dir):
    from nas_predictor.data.nb101 import load_nb101_subset

    evaluator = NB101TableBenchmark(data_dir=str(data_dir))
    table = load_nb101_subset(str(data_dir)).merged()
    for i in (0, 5, 17):
        sample = nb101_arch_to_sample(table.arch_strs[i])
        assert evaluator.evaluate(sample) == pytest.approx(table.valid_acc[i])
        assert evaluator.arch_report(table.arch_strs[i]) == {"validation_accuracy": pytest.approx(table.valid_acc[i])}
    # through NNI's space: its validated sample carries 'final', which the mapping reads past
    space = BenchmarkModelSpace(evaluator)
    model = space.freeze(nb101_arch_to_sample(table.arch_strs[5]))
    SequentialExecutionEngine().submit_models(model)
    assert model.metric == pytest.approx(table.valid_acc[5])
    space101, hashes = NASBench101(), set(table.hashes)
    missing = next(a for a in (space101.sample(np.random.default_rng(s)) for s in range(100))
                   if space101.equivalence_key(a) not in hashes)
    with pytest.raises(ConfigError, match="is not among the 292 cells"):
        evaluator.evaluate(nb101_arch_to_sample(missing))


def test_nb101_predictor_benchmark_with_a_fitted_predictor(data_dir):
    from nas_predictor.data.nb101 import load_nb101_subset
    from nas_predictor.online import fit_online

    table = load_nb101_subset(str(data_dir)).merged()
    predictor, _ = fit_online("nasbench101", table.arch_strs[:40], table.valid_acc[:40], steps=20)
    evaluator = NB101PredictorBenchmark(predictor)
    arch = NASBench101().sample(np.random.default_rng(3))
    value = evaluator.evaluate(nb101_arch_to_sample(arch))
    assert value == pytest.approx(float(predictor.predict([arch])[0]))
    model = BenchmarkModelSpace(evaluator).freeze(nb101_arch_to_sample(arch))
    SequentialExecutionEngine().submit_models(model)
    assert model.metric == pytest.approx(value)
