"""Run one search into an output folder: ``history.jsonl`` (every evaluation, appended as it happens),
``summary.json``, ``best_so_far.png`` and, when latencies are known, ``pareto.png``. Re-running with the
same folder resumes (see strategies.history); a bigger budget extends a finished search. One process
at a time works in a folder (a lock, ``.search.lock``): a second one fails at once instead of paying for
the same evaluations again."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas_predictor.errors import ConfigError
from nas_predictor.io import atomic_write_json
from nas_predictor.jsonl import exclusive_lock
from nas_predictor.registry import Registry
from strategies.base import BudgetExhausted, SearchContext, SearchStalled, Strategy, TargetReached
from strategies.constraints import LatencyConstraint
from strategies.evolution import RegularizedEvolution
from strategies.history import SearchHistory
from strategies.names import LOCK_NAME
from strategies.oracle import Oracle
from strategies.predictor_search import PredictorSearch
from strategies.random_search import RandomSearch
from strategies.surrogates import Surrogate
from strategies.tpe import TPESearch


# CLI name -> builder(guided, params); random search takes no parameters.
STRATEGY_BUILDERS: Registry[Callable[[bool, dict[str, Any]], Strategy]] = Registry("strategy")
STRATEGY_BUILDERS.add("random", lambda guided, params: RandomSearch())
STRATEGY_BUILDERS.add("evolution", lambda guided, params: RegularizedEvolution(guided=guided, **params))
STRATEGY_BUILDERS.add("tpe", lambda guided, params: TPESearch(guided=guided, **params))
STRATEGY_BUILDERS.add("predictor", lambda guided, params: PredictorSearch(**params))


def make_strategy(name: str, guided: bool = False, **params: Any) -> Strategy:
    """A strategy by CLI name; ``guided`` makes evolution / TPE predictor-guided."""
    if guided and name in ("random", "predictor"):
        raise ConfigError(f"{name} search has no predictor-guided variant")
    return STRATEGY_BUILDERS.get(name)(guided, params)


def strategy_label(strategy: Strategy) -> str:
    return f"{strategy.name}-guided" if getattr(strategy, "guided", False) else strategy.name


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (latency, value) no other point beats on both (lower latency, higher value)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def best_so_far(records: list[dict], report_key: str | None) -> list[dict]:
    """After each evaluation: the best value so far and the report of that architecture."""
    out, best = [], None
    for n, r in enumerate(records, 1):
        if r["status"] == "ok" and (best is None or r["value"] > best["value"]):
            best = r
        out.append({"evaluations": n, "value": None if best is None else best["value"],
                    "report": None if best is None or report_key is None else best["report"].get(report_key),
                    "arch": None if best is None else best["arch"]})
    return out


def run_search(
    space: Any, strategy: Strategy, oracle: Oracle, budget: int, seed: int = 0, out_dir: str | Path | None = None,
    constraint: LatencyConstraint | None = None, surrogate: Surrogate | None = None, progress: bool = True,
    plots: bool = True, top: int = 10, target: float | None = None,
) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary (also written to ``out_dir/summary.json``).
    While it runs it holds ``out_dir/.search.lock``: another search on the same folder fails at once."""
    if strategy.needs_surrogate and surrogate is None:
        raise ConfigError(f"strategy {strategy_label(strategy)!r} needs a predictor (a surrogate)")
    out = Path(out_dir) if out_dir is not None else None
    held = exclusive_lock(out / LOCK_NAME, f"search folder {out}") if out is not None else contextlib.nullcontext()
    with held:
        return _run_search(space, strategy, oracle, budget, seed, out, constraint, surrogate, progress, plots, top,
                           target)


def _run_search(
    space: Any, strategy: Strategy, oracle: Oracle, budget: int, seed: int, out: Path | None,
    constraint: LatencyConstraint | None, surrogate: Surrogate | None, progress: bool, plots: bool, top: int,
    target: float | None,
) -> dict[str, Any]:
    identity = {"space": space.name, "strategy": strategy_label(strategy), "params": strategy.params(space),
                "seed": seed, "oracle": oracle.describe(),
                "constraint": None if constraint is None else constraint.identity(),
                "surrogate": None if surrogate is None else surrogate.describe()}
    history = SearchHistory(out / "history.jsonl" if out else None, identity)
    resumable = len(history)
    ctx = SearchContext(space=space, oracle=oracle, budget=budget, rng=np.random.default_rng(seed), history=history,
                        constraint=constraint, surrogate=surrogate, progress=progress, target=target)
    t0 = time.perf_counter()
    stop_reason = "budget"
    try:
        strategy.run(ctx)
    except BudgetExhausted:
        pass
    except TargetReached:
        stop_reason = "target reached"
    except SearchStalled as exc:
        stop_reason = f"stalled: {exc}"
    finally:
        ctx.close()
    if stop_reason == "budget" and ctx.spent < budget:
        stop_reason = "space exhausted within the bound"
    wall = time.perf_counter() - t0
    records = ctx.records()
    ok = sorted(ctx.ok_records(), key=lambda r: -r["value"])
    summary = {
        **identity, "budget": budget, "evaluations": ctx.spent, "failed": sum(r["status"] != "ok" for r in records),
        "rejected_over_bound": ctx.rejected, "replayed_from_history": ctx.replayed,
        # bound verdicts that rest on the FLOPs/memory fallback (outside the latency predictor's training
        # domain) or on a predictor without a domain summary
        "latency_unsure": len(constraint.unsure()) if constraint is not None else 0,
        "history_records_before": resumable, "stop": stop_reason, "wall_seconds": wall,
        "surrogate_fits": getattr(surrogate, "fits", 0),
        "surrogate_fit_seconds": getattr(surrogate, "fit_seconds", 0.0),
        "report_key": oracle.report_key,
        "best": ok[0] if ok else None, "top": ok[:top],
        "best_so_far": best_so_far(records, oracle.report_key),
        "evaluated_archs": [r["arch"] for r in records],
    }
    latencies = [(r["latency_ms"], r["value"]) for r in ok if r.get("latency_ms") is not None]
    if latencies:
        front = pareto_front(latencies)
        with_lat = [r for r in ok if r.get("latency_ms") is not None]
        summary["pareto"] = [{"arch": with_lat[i]["arch"], "latency_ms": with_lat[i]["latency_ms"],
                              "value": with_lat[i]["value"], "report": with_lat[i]["report"]} for i in front]
    if out is not None:
        atomic_write_json(summary, out / "summary.json")
        if plots:
            write_plots(summary, records, out, oracle.value_label, oracle.report_label)
    return summary


def latency_axis_label(constraint: dict | None) -> str:
    """The latency axis of a constraint's identity: "latency on titan_rtx_1 (ms), predicted by
    latency-help-b1" from the source "latency on titan_rtx_1 predicted by latency-help-b1"."""
    if not constraint:
        return "latency (ms)"
    head = f"latency on {constraint['setting']}"
    source = constraint["source"]
    if source.startswith(head):  # a predictor: "... predicted by <name>[, mapped ...]"
        how = source[len(head):].strip(" ,")
    elif source.endswith(head):  # a table or your function: "measured ..." / "user ..."
        kind = source[: -len(head)].strip()
        how = "from your latency function" if kind == "user" else kind
    else:
        how = source
    return f"{head} (ms)" + (f", {how}" if how else "")


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, path: Path):
    """Label, title and save one plot, then free it (the figure is returned for tests to read)."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def write_plots(
    summary: dict, records: list[dict], out: Path, value_label: str = "value", report_label: str | None = None,
) -> dict[str, Any]:
    """Draw ``best_so_far.png`` and, when latencies are known, ``pareto.png`` into ``out``; returns the
    (closed) figures by file stem. ``value_label`` and ``report_label`` say what the oracle's value and
    report are (Oracle.value_label / report_label): arguments, not summary keys, so the summary stays
    what it was."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    constraint = summary["constraint"]
    run = f"{summary['strategy']} on {summary['space']} (seed {summary['seed']})"
    curve = [p for p in summary["best_so_far"] if p["value"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if curve:
        steps = [p["evaluations"] for p in curve]
        ax.step(steps, [p["value"] for p in curve], where="post", label=value_label)
        # The report line only where it says something else (a table's test accuracy beside the searched
        # validation accuracy); a predictor's report repeats its value and would hide under it.
        if summary["report_key"] and any(p["report"] is not None and p["report"] != p["value"] for p in curve):
            ax.step(steps, [p["report"] for p in curve], where="post",
                    label=f"{report_label or summary['report_key']} (reported, not searched)")
    ax.axvline(summary["budget"], color="grey", ls=":", label=f"budget ({summary['budget']} evaluations)")
    bound = f"\nlatency ≤ {constraint['max_ms']:g} ms on {constraint['setting']}" if constraint else ""
    figures["best_so_far"] = _finish(fig, ax, "evaluations", value_label, f"Best architecture so far: {run}{bound}",
                                     out / "best_so_far.png")
    if summary.get("pareto"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        pts = [(r["latency_ms"], r["value"]) for r in records
               if r["status"] == "ok" and r.get("latency_ms") is not None]
        front = summary["pareto"]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, alpha=0.5, label="evaluated")
        ax.plot([r["latency_ms"] for r in front], [r["value"] for r in front], "o-", color="C3", label="Pareto front")
        if constraint:
            ax.axvline(constraint["max_ms"], color="grey", ls="--", label=f"latency bound {constraint['max_ms']:g} ms")
        figures["pareto"] = _finish(fig, ax, latency_axis_label(constraint), value_label, f"Pareto front: {run}",
                                    out / "pareto.png")
    return figures
