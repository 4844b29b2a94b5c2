"""MeasuredLatency: each candidate's network timed on this machine with the project's protocol, once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas_predictor.cli import main
from nas_predictor.latency import MeasurementError, Outcome
from search_spaces.python_space import PythonSpace
from strategies.constraints import LatencyConstraint
from strategies.measured_latency import MeasuredLatency
from tests.nas_predictor.latency.conftest import QUICK
from tests.python_spaces import plain_cnn

SMALL = "depth=1|width=8|kernel=3|act=relu"
BIG = "depth=3|width=64|kernel=7|act=relu"


@pytest.fixture
def space():
    return PythonSpace("measured_cnn", {"depth": (1, 3), "width": (8, 64), "kernel": (3, 7), "act": ("relu",)},
                       plain_cnn, (1, 3, 32, 32))


def test_each_network_is_measured_once_and_a_resumed_search_reads_it_back(space, tmp_path):
    source = MeasuredLatency(space.name, tmp_path, protocol=QUICK, progress=False)
    first = source.latency_ms([SMALL, BIG])
    # three 7x7 convs of 64 channels at 32x32 against one 3x3 conv of 8: tens of times the work
    assert 0 < first[0] < first[1] and source.measured == 2 and source.kind == "measured"
    assert source.describe() == "measured latency on cpu_ort_1t"
    assert np.array_equal(source.latency_ms([BIG, SMALL, BIG]), first[[1, 0, 1]]) and source.measured == 2
    lines = [json.loads(line) for line in source.path.read_text().splitlines()]
    assert source.path.name == f"{space.cache_key}-measured.jsonl" and [r["arch"] for r in lines] == [SMALL, BIG]
    assert lines[0]["context"]["cpu_model"] and lines[0]["label"]["label_ms"] == first[0]

    again = MeasuredLatency(space.name, tmp_path, protocol=QUICK, progress=False)
    assert np.array_equal(again.latency_ms([SMALL, BIG]), first) and again.measured == 0
    # another protocol (or machine, or onnxruntime) never takes these numbers for its own
    other = MeasuredLatency(space.name, tmp_path, protocol=QUICK.__class__(**{**QUICK.to_dict(), "min_pairs": 4}),
                            progress=False)
    assert other.labels == {}
    memory_only = MeasuredLatency(space.name, tmp_path / "none", persist=False, protocol=QUICK, progress=False)
    assert memory_only.path is None and not (tmp_path / "none").exists()


def test_a_bound_on_measured_latency(space, tmp_path):
    source = MeasuredLatency(space.name, tmp_path, protocol=QUICK, progress=False)
    small, big = source.latency_ms([SMALL, BIG])
    bound = LatencyConstraint(source, (small + big) / 2)
    assert bound.feasible([SMALL, BIG]).tolist() == [True, False]
    assert bound.identity()["source"] == "measured latency on cpu_ort_1t" and bound.unsure() == []


class _FailingMeasurer:
    """Stands in for a Measurer on a machine too busy for the protocol: every measurement fails."""

    protocol = QUICK

    def measure_many(self, sources):
        for i, _ in enumerate(sources):
            yield Outcome(i, "<bytes>", error=MeasurementError("too few pairs passed the gate"))

    def measure(self, source):
        raise MeasurementError("still too few pairs")


def test_a_network_that_cannot_be_measured_is_an_error_naming_it(space, tmp_path):
    source = MeasuredLatency(space.name, tmp_path, measurer=_FailingMeasurer(), progress=False)
    with pytest.raises(MeasurementError, match=r"could not measure depth=1\|width=8.* \(twice: too few pairs passed "
                                               r"the gate; then still too few pairs\); is it very busy\?"):
        source.latency_ms([SMALL])


def test_search_cli_bounds_measured_latency(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("nas_predictor.latency.measurer.DEFAULT_PROTOCOL", QUICK)
    monkeypatch.setenv("NAS_PREDICTOR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "s"
    assert main(["search", "--strategy", "random", "--budget", "2", "--oracle", "predictor", "--quiet",
                 "--latency-source", "measured", "--max-latency-ms", "1000", "--out", str(out)]) == 0
    assert "latency bound: 1000 ms, measured latency on cpu_ort_1t" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["constraint"]["setting"] == "cpu_ort_1t"
    assert all(0 < r["latency_ms"] <= 1000 for r in summary["top"])
    measured = (tmp_path / "cache" / "nasbench201-measured.jsonl").read_text().splitlines()
    assert {json.loads(line)["arch"] for line in measured} >= set(summary["evaluated_archs"])


@pytest.mark.parametrize("argv, said", [
    (["--setting", "pixel3"], "latency_setting 'pixel3' is another device's: leave it out"),
    (["--latency-calibrate", "t.csv"], "latency_calibrate rescales a latency predictor; latency_source measured"),
])
def test_measured_latency_refuses_another_setting_or_a_calibration(argv, said, tmp_path, capsys):
    assert main(["search", "--latency-source", "measured", "--max-latency-ms", "5", "--out", str(tmp_path / "s"),
                 *argv]) == 2
    assert said in capsys.readouterr().err
