"""Oracles: the NAS-Bench-201 table (real accuracies) and user functions."""

from __future__ import annotations

import math

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
    nan = FunctionOracle(lambda a: math.nan).evaluate("x")
    assert not nan.ok and "nan" in nan.error
    boom = FunctionOracle(lambda a: 1 / 0).evaluate("x")
    assert not boom.ok and boom.error.startswith("ZeroDivisionError")
    with pytest.raises(ConfigError):
        FunctionOracle(3)
