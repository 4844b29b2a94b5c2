"""Oracles: the NAS-Bench-201 table (real accuracies) and user functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas_predictor.errors import ConfigError
from strategies.oracle import FunctionOracle, NB201TableOracle

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_table_oracle_shows_validation_and_reports_test(data_dir):
    oracle = NB201TableOracle("cifar10", data_dir)
    ev = oracle.evaluate(BEST)
    assert ev.ok
    assert ev.value == pytest.approx(91.606667, abs=1e-5)  # cifar10-valid validation accuracy
    assert ev.report["test_accuracy"] == pytest.approx(94.373333, abs=1e-5)
    opt = oracle.global_optimum()
    assert opt["arch"] == BEST and opt["test_accuracy"] == pytest.approx(94.373333, abs=1e-5)


def test_table_oracle_on_cifar100_searches_test_accuracy(data_dir):
    oracle = NB201TableOracle("cifar100", data_dir)
    opt = oracle.global_optimum()
    assert opt["search_value"] == opt["test_accuracy"] == pytest.approx(73.513333, abs=1e-5)


def test_table_oracle_errors_name_the_problem(data_dir):
    with pytest.raises(ConfigError, match="unknown NAS-Bench-201 dataset"):
        NB201TableOracle("cifar11", data_dir)
    ev = NB201TableOracle("cifar10", data_dir).evaluate("|conv~0|")
    assert not ev.ok and "malformed NAS-Bench-201 arch" in ev.error


def test_function_oracle_records_failures_instead_of_raising():
    assert FunctionOracle(lambda a: (1.5, {"loss": 0.2})).evaluate("x").report == {"loss": 0.2}
    boom = FunctionOracle(lambda a: 1 / 0).evaluate("x")
    assert not boom.ok and boom.error.startswith("ZeroDivisionError")
    with pytest.raises(ConfigError):
        FunctionOracle(3)


@pytest.mark.parametrize("value", [0.0, -3.5, -1e9, 1e-12])
def test_any_finite_value_is_a_result(value):
    ev = FunctionOracle(lambda a: (value, {"loss": -value})).evaluate("x")
    assert ev.ok and ev.value == value and ev.report == {"loss": -value}


@pytest.mark.parametrize("out, said", [
    (math.nan, "returned the value nan for 'arch-7'"),
    (math.inf, "returned the value inf for 'arch-7'"),
    ("abc", "returned the value 'abc' for 'arch-7': not a number"),
    ((90.0, {"test_accuracy": math.nan}), "reported test_accuracy=nan for 'arch-7'"),
])
def test_a_non_finite_oracle_answer_is_an_error_naming_the_architecture(out, said):
    from strategies.oracle import OracleError

    with pytest.raises(OracleError, match=said.replace("(", r"\(")) as err:
        FunctionOracle(lambda a: out, name="train").evaluate("arch-7")
    assert "function train" in str(err.value) and "\n" not in str(err.value)


def test_nb101_subset_oracle_finds_a_cell_by_its_hash(data_dir):
    from nas_predictor.data.nb101 import load_nb101_subset
    from search_spaces.nasbench101 import NASBench101
    from strategies.oracle import NB101TableOracle

    oracle = NB101TableOracle(data_dir=str(data_dir))
    table = load_nb101_subset(str(data_dir)).merged()
    space = NASBench101()
    # a cell with several topological orders: any relabelling is the same cell of the table
    i = next(i for i, a in enumerate(table.arch_strs) if len(space.equivalent_archs(a)) > 1)
    for arch in space.equivalent_archs(table.arch_strs[i]):
        ev = oracle.evaluate(arch)
        assert ev.ok and ev.value == pytest.approx(table.valid_acc[i])
        assert ev.report == {"validation_accuracy": pytest.approx(table.valid_acc[i])}
    assert oracle.report_key == "validation_accuracy" and "292 cells" in oracle.describe()
    missing = next(a for a in (space.sample(np.random.default_rng(s)) for s in range(100))
                   if space.equivalence_key(a) not in set(table.hashes))
    failed = oracle.evaluate(missing)
    assert not failed.ok and "is not among the 292 cells" in failed.error and "tfrecord" in failed.error


def test_nb101_tfrecord_oracle_searches_validation_and_reports_test(tmp_path):
    from strategies.oracle import NB101TableOracle
    from strategies.runner import make_strategy, run_search
    from tests.nas_predictor.data.nb101_synthetic import cell_accuracy, write_random_nb101

    path = tmp_path / "nasbench_only108.tfrecord"
    cells = write_random_nb101(path, 30, seed=1)
    oracle = NB101TableOracle(str(path), progress=False)
    assert oracle.report_key == "test_accuracy"
    from nas_predictor.nb101_cell import format_arch

    ev = oracle.evaluate(format_arch(cells[3]))
    assert ev.value == pytest.approx(100 * (cell_accuracy(cells[3]) + 0.001))
    assert ev.report["test_accuracy"] == pytest.approx(ev.value - 1.0)

    from search_spaces.nasbench101 import NASBench101

    class FileSpace(NASBench101):  # proposes the file's cells only, so every one is in the table
        def sample(self, rng):
            return format_arch(cells[int(rng.integers(len(cells)))])

    summary = run_search(FileSpace(), make_strategy("random"), oracle, 10, seed=0, progress=False, plots=False)
    assert summary["evaluations"] == 10 and summary["failed"] == 0
