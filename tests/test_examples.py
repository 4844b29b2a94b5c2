"""The examples run as a user runs them (.ci/run runs examples/nni_nb201.py after the tests): here the
reduced CI version of examples/own_space_digits.py (its NNI run with two trials at once on NNI's local
training service), and its NNI model space."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _in_ci

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _require_sklearn() -> None:
    """The digits ship inside scikit-learn (installed with the [dev] and [nni] extras)."""
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        if _in_ci():
            pytest.fail(f"scikit-learn is required in CI: {exc}", pytrace=False)
        pytest.skip(f"scikit-learn not installed: {exc}")


def test_digits_example_quick_trains_searches_within_the_bound_and_writes_its_outputs(tmp_path):
    _require_sklearn()
    out = tmp_path / "out"
    env = {**os.environ, "NAS_PREDICTOR_CACHE": str(tmp_path / "cache")}
    # the NNI run on NNI's local training service, two trials at once, each in its own process
    argv = [str(EXAMPLES / "own_space_digits.py"), "--quick", "--quiet", "--nni", "--concurrency", "2", "--out", str(out)]
    run = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "random networks are over it" in run.stdout and "best validation" in run.stdout
    example = json.loads((out / "example.json").read_text())
    bound = example["bound"]["max_ms"]
    assert example["bound"]["source"] == "latency on cpu_ort_1t predicted by latency-cpu-ort"
    assert example["sample"]["over_bound"] >= 1  # the bound leaves part of the space out
    values = {}
    for strategy in ("predictor", "random", "nni"):
        folder = out / f"{strategy}-seed0"
        for name in ("history.jsonl", "summary.json", "best_so_far.png", "pareto.png"):
            assert (folder / name).is_file(), f"{strategy}: {name}"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["evaluations"] == 6 and summary["failed"] == 0
        records = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()[1:]]
        assert len(records) == 6
        for r in records:  # the bound was checked before each training run, on the latency recorded
            assert r["latency_ms"] <= bound
            assert set(r["report"]) == {"test_accuracy", "train_seconds", "params"}
            assert 0 <= r["value"] <= 100 and r["report"]["train_seconds"] > 0
            values.setdefault(r["arch"], set()).add(round(r["value"], 6))
        # real training: the networks differ (one epoch on 400 images is far from chance for some)
        assert max(r["value"] for r in records) > 30
    predictor = json.loads((out / "predictor-seed0" / "summary.json").read_text())
    assert predictor["surrogate_fits"] >= 1  # the quick run reaches the predictor-guided rounds
    # the NNI run (NasExperiment over the space as an NNI ModelSpace, our strategy on whole networks) trains
    # the same networks to the same numbers as the stand-alone searches
    assert all(len(v) == 1 for v in values.values())
    nni_run = json.loads((out / "nni-seed0" / "summary.json").read_text())
    assert nni_run["space"] == "digits_cnn_nni" and nni_run["surrogate_fits"] >= 1 and nni_run["stop"] == "budget"
    # our strategy kept both of NNI's workers busy: NNI's manager saw two trials running at once
    assert nni_run["nni_trials"] == {"concurrency": 2, "trials": 6, "most_running_at_once": 2}


def test_the_nni_model_space_builds_the_networks_of_the_python_space(monkeypatch):
    from tests.strategies.nni_support import import_nni

    import_nni()
    import numpy as np

    monkeypatch.syspath_prepend(str(EXAMPLES))
    import own_space_digits as example
    from own_space_digits_nni import DigitsModelSpace

    space = example.make_space()
    model_space = DigitsModelSpace()
    assert set(model_space.simplify()) == set(example.CHOICES)
    rng = np.random.RandomState(0)
    for _ in range(4):
        sample: dict = {}
        net = model_space.random(sample, rng)
        arch = space.arch_of(sample)  # an NNI sample is a config of the PythonSpace
        mine = space.build_network(arch)
        assert [tuple(p.shape) for p in net.net.parameters()] == [tuple(p.shape) for p in mine.parameters()]
        assert str(net.net) == str(mine)
