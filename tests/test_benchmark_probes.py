"""benchmarks/probes.py: time-to-tau curves recorded by an epoch callback, outside the training loop."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from nas_predictor.config import load_config
from nas_predictor.train_data import PreparedData
from search_spaces import NASBench201


@pytest.fixture()
def probes(load_benchmark):
    """benchmarks/probes.py imported under its own name (load_benchmark put benchmarks/ on sys.path),
    so its CurveProbe pickles into worker processes."""
    sys.modules.pop("probes", None)
    yield importlib.import_module("probes")
    sys.modules.pop("probes", None)


def _prepared(nb201_table, n_train=32, n_valid=16):
    space = NASBench201()
    archs = nb201_table.arch_strs[: n_train + n_valid + 50]
    idx = np.arange(len(archs))
    labels = nb201_table.column("c10valid_valid_200ep")[: len(archs)]
    return PreparedData(archs, [space.to_graph(a) for a in archs], idx[:n_train], idx[n_train : n_train + n_valid],
                        idx, labels, labels, space.op_vocab)


BASE = ["model.hidden=64", "model.num_blocks=2", "data.n_train=32", "data.n_valid=16", "train.batch_size=16"]


def test_the_curve_records_the_averaged_tau_and_the_plain_one(probes, nb201_table):
    data = _prepared(nb201_table)
    cfg = load_config(None, [*BASE, "train.epochs=1", "predict.average_equivalent=true"])
    result = probes.run_with_curve(cfg, data, 1, progress=False)
    assert result["kendall_tau"] != result["kendall_tau_plain"]
    # the time-to-tau curve records the same averaged metric as the final result, and the plain one
    assert len(result["curve"]) == 1 and result["curve"][0]["epoch"] == 0
    assert result["curve"][0]["kendall_tau"] != result["curve"][0]["kendall_tau_plain"]
    # after the only epoch the probed model is the one kept: the same plain tau (the averaged ones differ:
    # the curve averages over the class members among the test cells, the predictor over the whole space)
    assert result["curve"][0]["kendall_tau_plain"] == pytest.approx(result["kendall_tau_plain"], abs=2e-3)
    assert probes.run_with_curve(cfg, data, 0, progress=False)["curve"] == []


def test_the_probe_travels_to_parallel_members_and_the_curve_times_grow(probes, nb201_table):
    data = _prepared(nb201_table)
    base = [*BASE, "train.epochs=4", "train.ensemble=2", "train.threads=2"]
    seq = probes.run_with_curve(load_config(None, base), data, 2, progress=False)
    par = probes.run_with_curve(load_config(None, [*base, "train.workers=2"]), data, 2, progress=False)
    for run in (seq, par):
        assert [e["epoch"] for e in run["curve"]] == [1, 3]
        assert run["curve"][1]["train_seconds"] > run["curve"][0]["train_seconds"]
    # the same members (up to the float error of one thread against two)
    np.testing.assert_allclose([e["kendall_tau"] for e in par["curve"]], [e["kendall_tau"] for e in seq["curve"]],
                               atol=2e-3)
