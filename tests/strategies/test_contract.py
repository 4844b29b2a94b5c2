"""The strategy contract, run against every strategy and every search space: seeded runs repeat
exactly, the budget is respected, no evaluation breaks the latency bound, an interrupted search
resumes with no duplicate evaluations, and a failing oracle is recorded while the search goes on.

Oracle, latency and surrogate are deterministic functions of the arch string (a stand-in for a
training run and a measurement), so the suite runs on any space in seconds; the online NAR-Former V2
surrogate has its own tests in test_predictor_search.py.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from nas_predictor.errors import ConfigError
from search_spaces.fbnet import FBNetSpace
from search_spaces.nasbench101 import NASBench101
from search_spaces.nasbench201 import NASBench201
from search_spaces.ofa_mbv3 import OFAMobileNetV3Space
from strategies.constraints import FunctionLatency, LatencyConstraint
from strategies.oracle import FunctionOracle
from strategies.runner import make_strategy, run_search
from strategies.surrogates import FunctionSurrogate
from tests.python_spaces import NAME as PYTHON_SPACE
from tests.python_spaces import contract_space

SPACES = {"nasbench201": NASBench201, "nasbench101": NASBench101, "fbnet": FBNetSpace,
          "ofa_mbv3": OFAMobileNetV3Space, PYTHON_SPACE: contract_space}
try:  # an NNI model space (search_spaces.nni_space), where the [nni] extra is installed
    from tests.nni_spaces import NAME as NNI_SPACE
    from tests.nni_spaces import contract_space as nni_contract_space

    SPACES[NNI_SPACE] = nni_contract_space
except ImportError:
    pass
STRATEGIES = [("random", False), ("evolution", False), ("evolution", True), ("tpe", False), ("tpe", True),
              ("predictor", False), ("predictor-proxy", False)]
BUDGET = 24


def unit(arch: str, salt: str) -> float:
    """A deterministic pseudo-random number in [0, 1) per architecture."""
    return int(hashlib.sha256((salt + arch).encode()).hexdigest()[:12], 16) / 16**12


def value_of(arch: str) -> float:
    return 100 * unit(arch, "value")


def latency_of(arch: str) -> float:
    return 10 * unit(arch, "latency")


class CountingOracle(FunctionOracle):
    """Records every architecture that reaches it; optionally raises KeyboardInterrupt (a kill) on a call."""

    def __init__(self, fn=value_of, kill_at: int | None = None) -> None:
        super().__init__(fn, name="synthetic")
        self.calls: list[str] = []
        self.kill_at = kill_at

    def _evaluate(self, arch):
        self.calls.append(arch)
        if self.kill_at is not None and len(self.calls) == self.kill_at:
            raise KeyboardInterrupt
        return super()._evaluate(arch)


def has_proxy(space_name: str) -> bool:
    space = SPACES[space_name]()
    try:
        space.proxy_score(space.sample(np.random.default_rng(0)))
    except NotImplementedError:
        return False
    return True


def make(space_name, strategy_name, guided, bound=None):
    if strategy_name == "predictor-proxy":  # the predictor search with a warm start from the proxy score
        strategy = make_strategy("predictor", warm_start="proxy", proxy_tournament=4, **_small("predictor"))
    else:
        strategy = make_strategy(strategy_name, guided=guided, **_small(strategy_name))
    surrogate = FunctionSurrogate(lambda archs: [value_of(a) + 20 * unit(a, "noise") for a in archs], "noisy truth") \
        if strategy.needs_surrogate else None
    constraint = LatencyConstraint(FunctionLatency(lambda archs: [latency_of(a) for a in archs]), bound) if bound else None
    return SPACES[space_name](), strategy, surrogate, constraint


def _small(name):
    """Small pools and populations: the contract does not depend on them, and CI stays fast."""
    if name == "evolution":
        return {"population": 8, "sample_size": 3, "num_mutants": 10}
    if name == "predictor":
        return {"num_init": 6, "top_k": 3, "num_mutants": 10, "num_random": 30, "exhaustive_below": 0}
    if name == "tpe":
        return {"num_candidates": 6, "n_startup_trials": 5}
    return {}


# every strategy on every space; the proxy warm start on the spaces that have a proxy score
CASES = [pytest.param(space, s, g, id=f"{space}-{s}{'-guided' if g else ''}")
         for space in sorted(SPACES) for s, g in STRATEGIES if s != "predictor-proxy" or has_proxy(space)]
cases = pytest.mark.parametrize("space_name,strategy_name,guided", CASES)


@cases
def test_seeded_runs_repeat_and_respect_the_budget(space_name, strategy_name, guided):
    runs = []
    for _ in range(2):
        space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
        oracle = CountingOracle()
        summary = run_search(space, strategy, oracle, BUDGET, seed=3, surrogate=surrogate, progress=False)
        assert summary["evaluations"] == BUDGET
        assert len(oracle.calls) == BUDGET
        assert len(set(oracle.calls)) == BUDGET  # never pays twice for one architecture
        runs.append(oracle.calls)
    assert runs[0] == runs[1]
    space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
    other = CountingOracle()
    run_search(space, strategy, other, BUDGET, seed=4, surrogate=surrogate, progress=False)
    assert other.calls != runs[0]


@cases
def test_no_evaluation_breaks_the_latency_bound(space_name, strategy_name, guided):
    space, strategy, surrogate, constraint = make(space_name, strategy_name, guided, bound=3.0)
    oracle = CountingOracle()
    summary = run_search(space, strategy, oracle, BUDGET, seed=0, surrogate=surrogate, constraint=constraint,
                         progress=False)
    assert len(oracle.calls) == BUDGET
    assert all(latency_of(a) <= 3.0 for a in oracle.calls)
    # a 3 ms bound on a uniform 0-10 ms latency rejects most candidates: the strategies did meet some
    assert summary["rejected_over_bound"] > 0
    assert all(r["latency_ms"] <= 3.0 for r in summary["top"])


@cases
def test_resume_after_a_kill_has_no_duplicate_evaluations(tmp_path, space_name, strategy_name, guided):
    space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
    reference = CountingOracle()
    run_search(space, strategy, reference, BUDGET, seed=1, surrogate=surrogate, progress=False)

    out = tmp_path / "search"
    space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
    killed = CountingOracle(kill_at=11)
    with pytest.raises(KeyboardInterrupt):
        run_search(space, strategy, killed, BUDGET, seed=1, surrogate=surrogate, out_dir=out, progress=False)
    lines = (out / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 10  # header + the ten finished evaluations

    space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
    resumed = CountingOracle()
    summary = run_search(space, strategy, resumed, BUDGET, seed=1, surrogate=surrogate, out_dir=out, progress=False)
    assert summary["replayed_from_history"] == 10
    assert resumed.calls == reference.calls[10:]  # the interrupted evaluation and the rest, nothing twice
    archs = [json.loads(line)["arch"] for line in (out / "history.jsonl").read_text().splitlines()[1:]]
    assert archs == reference.calls
    assert summary["best"]["arch"] == max(reference.calls, key=value_of)


@cases
def test_a_failing_oracle_is_recorded_and_the_search_goes_on(space_name, strategy_name, guided):
    calls = []

    def flaky(arch):
        calls.append(arch)
        if len(calls) % 5 == 0:
            raise RuntimeError("CUDA out of memory")
        if len(calls) % 7 == 0:  # a failed run raises; a NaN returned is an error (test_runner)
            raise FloatingPointError("the loss diverged")
        return value_of(arch)

    space, strategy, surrogate, _ = make(space_name, strategy_name, guided)
    summary = run_search(space, strategy, FunctionOracle(flaky), BUDGET, seed=2, surrogate=surrogate, progress=False)
    assert len(calls) == BUDGET
    assert summary["failed"] == sum(1 for n in range(1, BUDGET + 1) if n % 5 == 0 or n % 7 == 0)
    assert summary["best"] is not None and math.isfinite(summary["best"]["value"])
    assert all(math.isfinite(r["value"]) for r in summary["top"])


def test_the_proxy_warm_start_prefers_high_proxy_archs_and_needs_a_proxy():
    space = NASBench201()
    picked = {}
    for warm in ("random", "proxy"):
        strategy = make_strategy("predictor", warm_start=warm, proxy_tournament=10, **_small("predictor"))
        oracle = CountingOracle()
        run_search(space, strategy, oracle, 6, seed=0, surrogate=make("nasbench201", "predictor", False)[2],
                   progress=False)
        picked[warm] = np.mean([space.proxy_score(a) for a in oracle.calls])
    assert picked["proxy"] > 1.5 * picked["random"]
    without = SPACES["nasbench101"]()
    oracle = CountingOracle()
    with pytest.raises(ConfigError, match="warm_start 'proxy' needs a proxy score"):
        run_search(without, make_strategy("predictor", warm_start="proxy"), oracle, 6, seed=0,
                   surrogate=make("nasbench101", "predictor", False)[2], progress=False)
    assert oracle.calls == []
    with pytest.raises(ValueError, match="warm_start"):
        make_strategy("predictor", warm_start="zero-cost")
