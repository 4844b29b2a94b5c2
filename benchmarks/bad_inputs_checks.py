"""The bad-input suite's result checks and the Python-API cases it runs in process."""

from __future__ import annotations

import json
import math
import shutil
from typing import Any, Callable

from bad_inputs_fixtures import NB201_ARCH, NON_FINITE, Fixtures

# -- result checks ----------------------------------------------------------------------------------------
def finite_json(stdout: str, _: Fixtures) -> str:
    json.loads(stdout)  # strict parse: NaN would be rejected by the check below
    if NON_FINITE.search(stdout):
        raise AssertionError("non-finite number in the JSON")
    return "stdout is strict JSON with finite numbers only"


def search_summary(budget: int, finished: Callable[[dict], str] | None = None):
    def check(stdout: str, fx: Fixtures) -> str:
        summary = json.loads(stdout)
        if summary["evaluations"] != budget:
            raise AssertionError(f"{summary['evaluations']} evaluations, expected {budget}")
        if summary["best"] is None or not math.isfinite(summary["best"]["value"]):
            raise AssertionError("no finite best value")
        extra = finished(summary) if finished else ""
        return f"all {budget} evaluations made, finite best value {summary['best']['value']:.3f}{extra}"
    return check


# -- the Python API cases ---------------------------------------------------------------------------------
def _raises(fn: Callable[[], Any]) -> str:
    """Run ``fn``; it must raise; the exception is re-raised for the judge."""
    fn()
    raise AssertionError("no error was raised")


def _arch(space: str, arch: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.spaces import get_space

        sp = get_space(space)
        return _raises(lambda: sp.to_graph(sp.canonical(arch)))
    return run


def _graph(**kwargs: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.graph import ArchGraph

        return _raises(lambda: ArchGraph(**kwargs))
    return run


def _onnx_api(name: str) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.onnx import onnx_to_graph

        return _raises(lambda: onnx_to_graph(fx.path(name)))
    return run


def _search(values: Callable[[str], Any], budget: int = 14, expect_failed: int | None = None,
            strategy: str = "predictor") -> Callable[[Fixtures], str]:
    """A predictor-in-the-loop search on NB201 with a user oracle and a small, fast online surrogate."""
    def run(fx: Fixtures) -> str:
        from nas_predictor.spaces import get_space
        from strategies.oracle import FunctionOracle
        from strategies.runner import make_strategy, run_search
        from strategies.surrogates import OnlineSurrogate

        out = fx.root / f"api_search_{abs(hash(values)) % 10**8}"
        shutil.rmtree(out, ignore_errors=True)
        # a small candidate pool (not the whole 15,625-cell space) keeps each round well under a second
        params = {"num_init": 6, "exhaustive_below": 0, "num_random": 40, "num_mutants": 10,
                  "num_parents": 3} if strategy == "predictor" else {}
        surrogate = OnlineSurrogate("nasbench201", refit_every=3, min_points=4, steps=20)
        summary = run_search(get_space("nasbench201"), make_strategy(strategy, **params), FunctionOracle(values),
                             budget, out_dir=out, surrogate=surrogate, progress=False, plots=False)
        text = (out / "summary.json").read_text() + (out / "history.jsonl").read_text()
        if NON_FINITE.search(text):
            raise AssertionError("non-finite number in summary.json or history.jsonl")
        if summary["evaluations"] != budget:
            raise AssertionError(f"{summary['evaluations']} evaluations of {budget}")
        failed = summary["failed"]
        if expect_failed is not None and failed != expect_failed:
            raise AssertionError(f"{failed} failed evaluations, expected {expect_failed}")
        # a resume replays everything (the refit must not crash there either)
        again = run_search(get_space("nasbench201"), make_strategy(strategy, **params), FunctionOracle(values),
                           budget, out_dir=out, surrogate=OnlineSurrogate("nasbench201", refit_every=3,
                                                                         min_points=4, steps=20),
                           progress=False, plots=False)
        if again["replayed_from_history"] != budget:
            raise AssertionError("the resume did not replay the history")
        best = summary["best"]["value"] if summary["best"] else None
        return (f"{budget} evaluations ({failed} failed, recorded with their error), surrogate refits "
                f"{summary['surrogate_fits']}, best {best}, resume replayed all; strict JSON outputs")
    return run


def _oracle_error(value: Any, budget: int = 12) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.spaces import get_space
        from strategies.oracle import FunctionOracle
        from strategies.runner import make_strategy, run_search

        out = fx.root / f"api_oracle_{abs(hash(repr(value))) % 10**8}"
        shutil.rmtree(out, ignore_errors=True)
        calls = []

        def oracle(arch: str) -> Any:
            calls.append(arch)
            return value if len(calls) == 5 else 80.0 + len(calls) * 0.1

        try:
            run_search(get_space("nasbench201"), make_strategy("random"), FunctionOracle(oracle), budget,
                       out_dir=out, progress=False, plots=False)
        except Exception:
            kept = len((out / "history.jsonl").read_text().splitlines()) - 1
            if kept != 4:
                raise AssertionError(f"{kept} evaluations kept in the history, expected the 4 before it") from None
            raise
        raise AssertionError("the search accepted the value")
    return run


def _predict_api(name: str) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.predictor import load_predictor

        return _raises(lambda: load_predictor(fx.path(name)).predict([NB201_ARCH]))
    return run


def _nan_in_memory_prediction(_: Fixtures) -> str:
    """A model that went NaN in memory (no file check can see it): predict must refuse to return numbers."""
    import torch

    from nas_predictor.predictor import load_predictor

    p = load_predictor("nb201-accuracy")
    with torch.no_grad():
        next(t for t in p.models[0].parameters() if t.dim() == 2).view(-1)[0] = math.nan
    return _raises(lambda: p.predict([NB201_ARCH]))


def _huge_graph_latency(_: Fixtures) -> str:
    """A graph with absurd global costs (1e30 FLOPs): a finite latency or an error, never NaN."""
    import numpy as np

    from nas_predictor.graph import ArchGraph
    from nas_predictor.predictor import load_predictor

    p = load_predictor("latency-help-b1")
    g = ArchGraph(ops=("Conv",), edges=(), scalars={"flops": 1e30, "params": 1e30, "memory": 1e30})
    out = p.predict_latency([g])
    if not np.isfinite(out).all():
        raise AssertionError(f"non-finite prediction returned: {out}")
    return f"finite prediction {float(out[0]):.4g} ms returned"


def _config_api(tree: dict) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.config import validate_config

        return _raises(lambda: validate_config(tree, "api"))
    return run


def _strategy_api(name: str, **params: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from strategies.runner import make_strategy

        return _raises(lambda: make_strategy(name, **params))
    return run


def _lock_api(fx: Fixtures) -> str:
    """A second run_search on a folder another process holds fails before any evaluation."""
    import filelock

    from nas_predictor.spaces import get_space
    from strategies.oracle import FunctionOracle
    from strategies.runner import LOCK_NAME, make_strategy, run_search

    out = fx.root / "api_locked"
    out.mkdir(exist_ok=True)
    calls = []
    with filelock.FileLock(str(out / LOCK_NAME)):  # as another process would hold it
        try:
            run_search(get_space("nasbench201"), make_strategy("random"),
                       FunctionOracle(lambda a: calls.append(a) or 1.0), 3, out_dir=out, progress=False)
        finally:
            if calls:
                raise AssertionError(f"{len(calls)} evaluations made despite the lock")
    raise AssertionError("no error")


# -- the cases --------------------------------------------------------------------------------------------
