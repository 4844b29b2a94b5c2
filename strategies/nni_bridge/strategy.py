"""An NNI 3.0 ``Strategy`` that runs our search through NNI's execution engine, on any NNI model space.

Our strategies (``strategies.PredictorSearch`` by default) decide what to evaluate through a
``SearchContext``; here its oracle is the engine: each architecture the search picks is mapped to the
NNI sample of that arch (:mod:`.mapping`), frozen from the experiment's model space
(``model_space.freeze(sample)``), submitted (``engine.submit_models``) and waited for
(``engine.wait_models``); the model's final metric is the value the search sees. Everything else (the
surrogate refits, the candidate pools, skipping evaluated or equivalent networks, the latency bound) is
the stand-alone search's own code, so with the same seed and the same values it walks the same path.

Which space the search walks:

- NAS-Bench-201 / NAS-Bench-101 labels (the hub's ``NasBench201``, a ``BenchmarkModelSpace``): their
  cells, arch strings of our ``nasbench201`` / ``nasbench101`` spaces, read by the cell predictors and
  tables;
- any other model space (``LayerChoice``, ``InputChoice``, ``Repeat``, ``nni.choice`` widths and
  kernels, mutable modules), or one of those two with ``whole_network=True``: whole networks
  (:mod:`strategies.nni_bridge.space`): each candidate is frozen by NNI and exported at ``input_shape``,
  and the online surrogate reads that graph. Continuous choices (``nni.uniform``) are refused.

One model at a time: each pick knows every earlier result, as in the stand-alone search (a parallel
engine runs one trial at a time under it). The experiment's budget is NNI's: the search stops when
``engine.budget_available()`` turns false (``max_trial_number`` / ``max_model_count``), or at this
strategy's own ``budget`` when one is given.

Checkpoints: :meth:`state_dict` holds the evaluations; a resumed experiment replays them (no engine call)
and continues from the first architecture it has no result for, as ``strategies.history`` does. NNI saves
that checkpoint only at an experiment's start and clean stop; ``history=`` (a JSONL file written as each
evaluation ends) is what survives a kill.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from strategies.nni_bridge import require_nni

require_nni()

from nni.nas.execution import ExecutionEngine, SequentialExecutionEngine  # noqa: E402
from nni.nas.space import ExecutableModelSpace, ModelStatus  # noqa: E402
from nni.nas.strategy.base import Strategy as NNIStrategy  # noqa: E402

from nas_predictor.errors import ConfigError  # noqa: E402
from strategies.base import BudgetExhausted, SearchContext, SearchStalled, Strategy, TargetReached  # noqa: E402
from strategies.constraints import LatencyConstraint  # noqa: E402
from strategies.history import SearchHistory  # noqa: E402
from strategies.nni_bridge.mapping import NetworkMapping, SampleMapping, mapping_for_space  # noqa: E402
from strategies.nni_bridge.space import model_class, nni_space  # noqa: E402
from strategies.oracle import Evaluation, Oracle  # noqa: E402
from strategies.surrogates import OnlineSurrogate, Surrogate  # noqa: E402

#: the search's own budget when NNI's engine is the only limit
UNLIMITED = 10 ** 12
#: seconds between looks at the running models when several train at once
CONCURRENT_POLL_SECONDS = 0.2


def split_metric(metric: Any) -> tuple[float | None, dict[str, float]]:
    """NNI final metric -> (value, report): a number, or a dict with ``default`` and other numbers."""
    if metric is None:
        return None, {}
    if isinstance(metric, dict):
        report = {k: float(v) for k, v in metric.items() if k != "default" and isinstance(v, (int, float))}
        value = metric.get("default")
        return (None if value is None else float(value)), report
    return float(metric), {}


@dataclass
class EngineContext(SearchContext):
    """A SearchContext whose budget is also the engine's: ``remaining`` is 0 once NNI's engine has no
    budget left, so a search stops there (without one more surrogate refit for a pick it cannot run)."""

    engine: Any = None

    @property
    def remaining(self) -> int:
        if self.engine is not None and not self.engine.budget_available():
            return 0
        return self.budget - self.spent


class EngineOracle(Oracle):
    """Evaluates an arch string by submitting its frozen model to the strategy's engine."""

    def __init__(self, strategy: "PredictorGuidedStrategy") -> None:
        self.strategy = strategy
        self.report_key = strategy.report_key

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:  # pragma: no cover - evaluate is overridden
        raise NotImplementedError

    def evaluate(self, arch: str) -> Evaluation:
        # not Oracle.evaluate: an engine error (continue_on_failure=False) must stop the experiment, as
        # for NNI's own strategies, and BudgetExhausted must reach the search
        s = self.strategy
        if not s.wait_for_resource():
            raise BudgetExhausted
        t0 = time.perf_counter()
        model = self.submit(arch)
        s.engine.wait_models(model)
        return self.result(model, arch, time.perf_counter() - t0)

    def submit(self, arch: str) -> Any:
        """Freeze ``arch``'s model and submit it to the engine (which may still be training others)."""
        s = self.strategy
        model = s.model_space.freeze(s.mapping.to_sample(arch))
        s.engine.submit_models(model)
        s.submitted.append(model)
        return model

    def result(self, model: Any, arch: str, seconds: float) -> Evaluation:
        """The Evaluation of ``arch`` from its trained (or failed) ``model``."""
        s = self.strategy
        value, report = split_metric(model.metric)
        if s.report is not None:
            report.update(s.report(arch))
        else:
            arch_report = getattr(model.evaluator, "arch_report", None)
            if callable(arch_report):
                # our table evaluators read the sample themselves (a whole-network search's ids are not
                # their arch strings)
                to_arch = getattr(model.evaluator, "to_arch", None)
                report.update(arch_report(to_arch(model.sample) if callable(to_arch) else arch))
        if model.status != ModelStatus.Trained or value is None or not math.isfinite(value):
            why = f"model {model.status.value}" if model.status != ModelStatus.Trained else f"metric {model.metric!r}"
            return Evaluation(math.nan, report, seconds, why)
        return Evaluation(value, report, seconds)

    def describe(self) -> str:
        return "NNI execution engine"


class PredictorGuidedStrategy(NNIStrategy):
    """Our search as an NNI strategy.

    Parameters
    ----------
    search
        One of our strategies (``strategies.make_strategy(...)`` or its name); default
        ``PredictorSearch()``, the predictor-in-the-loop search with its benchmark defaults.
    surrogate
        What a predictor-guided search ranks with: ``"online"`` (default: a NAR-Former V2 refit on this
        search's evaluations, ``OnlineSurrogate(space, seed=seed)``), a ``strategies.Surrogate``
        (``FixedSurrogate("nb201-accuracy")``, ...), or None for a search that needs none.
    seed
        Seeds the search's random generator (and the online surrogate's refits).
    budget
        At most this many evaluations; default: until NNI's engine has no budget left.
    constraint
        A latency bound the search respects itself (over-bound candidates are skipped at no cost):
        a ``strategies.LatencyConstraint`` or a :class:`~strategies.nni_bridge.LatencyFilter`.
    target
        Stop once an evaluation's value reaches it (a known optimum, an accuracy goal).
    report
        ``arch -> dict`` of values the search must not see (test accuracy, ...), kept in the records;
        by default the evaluator's own ``arch_report`` where it has one (our table evaluators do).
    report_key
        The report entry ``summary()["best_so_far"]`` follows.
    progress
        A progress bar (only with a ``budget``).
    input_shape
        The batch-1 input shape candidates are exported at, e.g. ``(1, 3, 32, 32)``: needed by any model
        space other than NAS-Bench-101/201 (searched as whole networks).
    space_name
        The whole-network space's name (default ``nni-<model class>``): histories, checkpoints and graph
        caches are filed under it.
    whole_network
        Search a NAS-Bench-101/201 space as whole networks too (ids of its labels, each candidate exported)
        instead of through its cells.
    history
        A JSONL file each evaluation is appended to as it finishes (the stand-alone search's history
        format). A strategy given a file that holds this search (same space, strategy, settings and seed)
        replays its evaluations (no engine call) and continues: what survives a kill, where NNI saves its
        own checkpoint (``state_dict``) only when an experiment starts and when it stops cleanly. A file
        of another search is refused.
    """

    def __init__(self, search: Strategy | str | None = None, surrogate: Surrogate | str | None = "online",
                 seed: int = 0, budget: int | None = None, constraint: Any = None, target: float | None = None,
                 report: Callable[[str], dict] | None = None, report_key: str | None = "test_accuracy",
                 progress: bool = False, input_shape: tuple[int, ...] | None = None, space_name: str | None = None,
                 whole_network: bool = False, history: str | os.PathLike | None = None) -> None:
        super().__init__()
        if search is None:
            from strategies.predictor_search import PredictorSearch

            search = PredictorSearch()
        elif isinstance(search, str):
            from strategies.runner import make_strategy

            name, guided = search.removesuffix("-guided"), search.endswith("-guided")
            search = make_strategy(name, guided=guided)
        if not isinstance(search, Strategy):
            raise ConfigError("search must be one of our strategies (strategies.Strategy), "
                              f"got {type(search).__name__}")
        if isinstance(surrogate, str) and surrogate != "online":
            raise ConfigError(f"surrogate must be 'online', a strategies.Surrogate or None, got {surrogate!r}")
        if budget is not None and budget < 1:
            raise ConfigError(f"the budget must be at least one evaluation, got {budget}")
        self.search = search
        self.surrogate = surrogate
        self.seed = int(seed)
        self.budget = budget
        self.constraint = constraint
        self.target = target
        self.report = report
        self.report_key = report_key
        self.progress = progress
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.space_name = space_name
        self.whole_network = bool(whole_network)
        self.history_path = history
        self.mapping: SampleMapping | NetworkMapping | None = None
        self.submitted: list[ExecutableModelSpace] = []
        self.stop_reason: str | None = None
        self.wall_seconds = 0.0
        self._history: SearchHistory | None = None
        self._ctx: SearchContext | None = None
        self._surrogate: Surrogate | None = None

    def extra_repr(self) -> str:
        return f"search={self.search.name!r}, seed={self.seed}, budget={self.budget}"

    # -- NNI's Strategy interface ------------------------------------------------------------------
    def _initialize(self, model_space: ExecutableModelSpace, engine: ExecutionEngine) -> ExecutableModelSpace:
        self.mapping = None if self.whole_network else mapping_for_space(model_space)
        if self.mapping is None:
            self.mapping = self._network_mapping(model_space)
        space = self.mapping.space
        wants_surrogate = self.search.needs_surrogate or getattr(self.search, "guided", False)
        if self.surrogate == "online":
            self._surrogate = OnlineSurrogate(space.name, seed=self.seed) if wants_surrogate else None
        else:
            self._surrogate = self.surrogate
        if self.search.needs_surrogate and self._surrogate is None:
            raise ConfigError(f"search {self.search.name!r} needs a surrogate (a predictor)")
        self._history = SearchHistory(self.history_path, self._identity())
        return model_space

    def _network_mapping(self, model_space: ExecutableModelSpace) -> NetworkMapping:
        if self.input_shape is None:
            what = "searched as whole networks (whole_network=True)" if self.whole_network else "not NAS-Bench-101/201"
            raise ConfigError(f"model space {model_class(model_space).__name__} is {what}: pass "
                              "input_shape=(1, 3, H, W) so candidates can be exported")
        return NetworkMapping(nni_space(model_space, self.input_shape, self.space_name))

    def _identity(self) -> dict:
        return {"space": self.mapping.space_name, "strategy": self.search.name, "params": self.search.params(self.mapping.space),
                "seed": self.seed}

    def _constraint(self) -> LatencyConstraint | None:
        if self.constraint is None or isinstance(self.constraint, LatencyConstraint):
            return self.constraint
        as_constraint = getattr(self.constraint, "as_constraint", None)
        if as_constraint is None:
            raise ConfigError("constraint must be a strategies.LatencyConstraint or a LatencyFilter, "
                              f"got {type(self.constraint).__name__}")
        return as_constraint(self.mapping.space_name)

    def _run(self) -> None:
        ctx = EngineContext(space=self.mapping.space, oracle=EngineOracle(self), budget=self.budget or UNLIMITED,
                            rng=np.random.default_rng(self.seed), history=self._history,
                            constraint=self._constraint(), surrogate=self._surrogate,
                            progress=self.progress and self.budget is not None, target=self.target,
                            engine=self.engine)
        self._ctx = ctx
        t0 = time.perf_counter()
        self.stop_reason = "search ended"
        try:
            if isinstance(self.engine, SequentialExecutionEngine):
                self.search.run(ctx)
            else:
                self._run_concurrent(ctx)
        except BudgetExhausted:
            self.stop_reason = "budget"
        except TargetReached:
            self.stop_reason = "target reached"
        except SearchStalled as exc:
            self.stop_reason = f"stalled: {exc}"
        finally:
            ctx.close()
            self.wall_seconds = time.perf_counter() - t0
        if self.stop_reason == "search ended" and (ctx.remaining <= 0 or not self.engine.budget_available()):
            self.stop_reason = "budget"

    def _run_concurrent(self, ctx: EngineContext) -> None:
        """Keep every idle worker of the engine busy (NNI's ``trial_concurrency``): each free worker gets the
        architecture the search proposes given every finished trial, with the running ones excluded
        (strategies/proposals.py); results are counted as they arrive, and the surrogate refits on them
        as the search's own rule says. The evaluations of a resumed search (history file or checkpoint)
        are counted first."""
        from strategies.proposals import ProposalContext, propose

        for record in list(self._history):
            arch = ctx.space.canonical(record["arch"])
            if ctx.known(arch) is None and ctx.spent < ctx.budget:
                ctx.replayed += 1
                ctx.accept(arch, record)
        oracle: EngineOracle = ctx.oracle  # type: ignore[assignment]
        running: list[tuple[Any, str, float | None, float | None, float]] = []  # model, arch, latency, predicted, t0
        asked = 0
        while True:
            exhausted = False  # the search has nothing left to propose within the budget and the bound
            while (ctx.spent + len(running) < ctx.budget and self.engine.budget_available()
                   and self.engine.idle_worker_available()):
                proposal = propose(self.search, ProposalContext.of(
                    ctx.space, ctx.records(), [arch for _, arch, *_ in running], ctx.budget,
                    np.random.default_rng([self.seed, asked]), ctx.constraint, ctx.surrogate))
                asked += 1
                if proposal is None:
                    exhausted = True
                    break
                latency = float(ctx.constraint.latency([proposal.arch])[0]) if ctx.constraint is not None else None
                running.append((oracle.submit(proposal.arch), proposal.arch, latency, proposal.predicted,
                                time.perf_counter()))
            if not running:
                if exhausted or ctx.spent >= ctx.budget or not self.wait_for_resource():
                    return
                continue  # no idle worker yet, nothing of ours training (a training service starting up)
            while not any(model.status.completed() for model, *_ in running):
                time.sleep(CONCURRENT_POLL_SECONDS)
            still, finished = [], []
            for item in running:  # one look at each status: a model finishing meanwhile waits for the next round
                (finished if item[0].status.completed() else still).append(item)
            running = still
            for model, arch, latency, predicted, t0 in finished:
                ctx.accept(arch, ctx.new_record(arch, oracle.result(model, arch, time.perf_counter() - t0),
                                                latency, predicted))

    def state_dict(self) -> dict:
        return {"identity": self._identity() if self.mapping is not None else None,
                "records": [dict(r) for r in self._history] if self._history is not None else []}

    def load_state_dict(self, state_dict: dict) -> None:
        if self._history is None:
            raise RuntimeError("load_state_dict needs an initialized strategy (call initialize first)")
        if state_dict.get("identity") not in (None, self._identity()):
            raise ConfigError(f"the checkpoint holds another search: {state_dict['identity']} (this one: "
                              f"{self._identity()})")
        for record in state_dict.get("records", []):
            if self._history.get(record["arch"]) is None:
                self._history.add(dict(record))

    # -- results -----------------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """This run's evaluations in order (arch, value, report, status, ...), replayed ones included."""
        return self._ctx.records() if self._ctx is not None else []

    def best(self) -> dict | None:
        return self._ctx.best() if self._ctx is not None else None

    def summary(self, top: int = 10) -> dict:
        from strategies.runner import best_so_far

        if self._ctx is None:
            raise RuntimeError("the strategy has not run")
        records = self.records()
        ok = sorted(self._ctx.ok_records(), key=lambda r: -r["value"])
        return {**self._identity(), "evaluations": self._ctx.spent, "stop": self.stop_reason,
                "failed": sum(r["status"] != "ok" for r in records), "rejected_over_bound": self._ctx.rejected,
                "latency_unsure": len(self._ctx.constraint.unsure()) if self._ctx.constraint is not None else 0,
                "replayed_from_checkpoint": self._ctx.replayed, "wall_seconds": self.wall_seconds,
                "surrogate_fits": getattr(self._surrogate, "fits", 0),
                "surrogate_fit_seconds": getattr(self._surrogate, "fit_seconds", 0.0),
                "best": ok[0] if ok else None, "top": ok[:top],
                "best_so_far": best_so_far(records, self.report_key),
                "evaluated_archs": [r["arch"] for r in records]}
