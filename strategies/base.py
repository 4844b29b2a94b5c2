"""What every strategy shares: the evaluation bookkeeping (budget, latency bound, duplicates,
history, resume) lives in :class:`SearchContext`, so a strategy only decides what to try next.

Duplicates are ids with one canonical string; in a space of whole networks (FBNet, OFA, a
``PythonSpace``) also ids with one ``equivalence_key``, which there means one network (FBNet's
identity skips placed differently, a Python space's choice its export drops): training it again
would repeat an evaluation. A cell space's equivalent cells stay separate evaluations, as before
(NAS-Bench-201 tables hold each one's own training run).
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from nas_predictor.errors import ConfigError
from nas_predictor.online import whole_network_space
from strategies.constraints import LatencyConstraint
from strategies.history import SearchHistory
from strategies.oracle import Oracle
from strategies.surrogates import Surrogate


def checked_int(strategy: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``, else a ConfigError naming the parameter. Strategies
    check their parameters when they are built, so a bad one fails before the first (paid) evaluation."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"strategy_params.{name} of {strategy} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"strategy_params.{name} of {strategy} must be at least {minimum}, got {value}")
    return int(value)


def checked_bool(strategy: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"strategy_params.{name} of {strategy} must be true or false, got {value!r}")
    return bool(value)


class BudgetExhausted(Exception):
    """Raised inside a strategy when the oracle budget is spent; the runner catches it."""


class TargetReached(Exception):
    """Raised when an evaluation reaches the context's target value; the runner catches it."""


class SearchStalled(Exception):
    """The strategy proposed only known or infeasible architectures for too long."""


@dataclass
class SearchContext:
    space: Any  # a nas_predictor.spaces.SearchSpace
    oracle: Oracle
    budget: int
    rng: np.random.Generator
    history: SearchHistory
    constraint: LatencyConstraint | None = None
    surrogate: Surrogate | None = None
    progress: bool = True
    #: stop as soon as an evaluation reaches this value (e.g. a known optimum, an accuracy goal)
    target: float | None = None
    #: proposals in a row that cost nothing (known or over the bound) before the search gives up
    max_idle_proposals: int = 20000
    spent: int = 0
    _rejected: set = field(default_factory=set)
    replayed: int = 0
    _charged: dict = field(default_factory=dict)
    _idle: int = 0
    _bar: Any = None
    #: whole-network spaces: this run's records by equivalence key (one network, one evaluation)
    _by_network: dict | None = None

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError(f"the budget must be at least one evaluation, got {self.budget}")
        if whole_network_space(self.space):
            self._by_network = {}
        self._bar = tqdm(total=self.budget, desc="search", unit="eval", disable=not self.progress, dynamic_ncols=True)

    # -- what strategies call ----------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return self.budget - self.spent

    def feasible(self, archs: Sequence[str]) -> np.ndarray:
        """Which of ``archs`` satisfy the latency bound (all, without one)."""
        if self.constraint is None:
            return np.ones(len(archs), dtype=bool)
        ok = self.constraint.feasible(list(archs))
        self._rejected.update(a for a, good in zip(archs, ok) if not good)
        return ok

    @property
    def rejected(self) -> int:
        """Distinct candidates found over the latency bound (none of them reached the oracle)."""
        return len(self._rejected)

    def known(self, arch: str) -> dict | None:
        """This search's record of ``arch`` if it, or the same network under another id, was already
        evaluated in this run."""
        return self._known(self.space.canonical(arch))

    def known_id(self, arch: str) -> dict | None:
        """This search's record of ``arch`` under this very id (no graph is read: the cheap half of
        ``known``, for ranking a pool before the graph-keyed check of the few it picks)."""
        return self._charged.get(self.space.canonical(arch))

    def _known(self, arch: str) -> dict | None:
        """``known`` of a canonical string."""
        record = self._charged.get(arch)
        if record is None and self._by_network is not None:
            record = self._by_network.get(self.space.equivalence_key(arch))
        return record

    def evaluate(self, arch: str, predicted: float | None = None) -> dict | None:
        """Evaluate one architecture; returns its record, or None when it breaks the latency bound
        (it never reaches the oracle and costs nothing). A known architecture returns its record
        again at no cost. Raises BudgetExhausted when nothing is left to spend."""
        arch = self.space.canonical(arch)
        known = self._known(arch)
        if known is not None:
            self.idle_step()
            return known
        latency = None
        if self.constraint is not None:
            latency = float(self.constraint.latency([arch])[0])
            if not latency <= self.constraint.max_ms:
                self._rejected.add(arch)
                self.idle_step()
                return None
        if self.spent >= self.budget:
            raise BudgetExhausted
        record = self._evaluation(arch, latency, predicted)
        self.accept(arch, record)
        return record

    def accept(self, arch: str, record: dict) -> None:
        """Count ``record``, the finished evaluation of ``arch`` (canonical), as this search's: what evaluate
        does after the oracle answers, and what a caller that evaluated it elsewhere (several NNI trials at
        once) does itself. Raises TargetReached when it reaches the target."""
        self.spent += 1
        self._idle = 0
        self._charged[arch] = record
        if self._by_network is not None:
            self._by_network[self.space.equivalence_key(arch)] = record
        self._bar.update()
        best = self.best()
        if best is not None:
            self._bar.set_postfix(best=f"{best['value']:.3f}")
        if self.target is not None and record["status"] == "ok" and record["value"] >= self.target:
            raise TargetReached

    def _evaluation(self, arch: str, latency: float | None, predicted: float | None) -> dict:
        """The record of a new evaluation of ``arch`` (canonical, within the bound, budget left): from the
        history when a resumed search has it, else from the oracle, appended to the history."""
        record = self.history.get(arch)
        if record is not None:  # resumed search: answered from the file, the same evaluation as before
            self.replayed += 1
            return record
        return self.new_record(arch, self.oracle.evaluate(arch), latency, predicted)

    def new_record(self, arch: str, ev: Any, latency: float | None, predicted: float | None) -> dict:
        """The history record of evaluation ``ev`` (an oracle's Evaluation) of ``arch``, appended to the history."""
        # a failed evaluation has no value: null in the (strict JSON) history, its error says why
        record = {"index": len(self.history), "arch": arch, "value": ev.value if ev.ok else None,
                  "report": ev.report,
                  "status": "ok" if ev.ok else "failed", "error": ev.error, "latency_ms": latency,
                  "predicted": None if predicted is None else float(predicted), "seconds": ev.seconds,
                  "time": time.time()}
        self.history.add(record)
        return record

    def records(self) -> list[dict]:
        """This run's evaluations, in order."""
        return list(self._charged.values())

    def ok_records(self) -> list[dict]:
        return [r for r in self._charged.values() if r["status"] == "ok" and math.isfinite(r["value"])]

    def best(self) -> dict | None:
        ok = self.ok_records()
        return max(ok, key=lambda r: r["value"]) if ok else None

    def sample_new(self, max_tries: int = 1000) -> str:
        """A random architecture not evaluated yet and within the latency bound."""
        for _ in range(max_tries):
            arch = self.space.canonical(self.space.sample(self.rng))
            if self._known(arch) is None and self.feasible([arch])[0]:
                return arch
            self.idle_step()
        raise SearchStalled(f"no new architecture within the bound in {max_tries} random samples")

    def idle_step(self) -> None:
        self._idle += 1
        if self._idle > self.max_idle_proposals:
            raise SearchStalled(
                f"{self._idle} proposals in a row were already evaluated or over the latency bound; "
                "the bound may leave too few architectures"
            )

    def close(self) -> None:
        self._bar.close()


class Strategy(abc.ABC):
    """Decides which architectures to evaluate; ``run`` returns when the budget is spent."""

    name: str = ""
    #: whether the strategy needs a surrogate (a predictor) to run
    needs_surrogate: bool = False

    def params(self, space: Any = None) -> dict[str, Any]:
        """Settings that change the search path (part of the history's identity); ``space``: the space
        searched, for settings whose default depends on it (PredictorSearch's pool sizes)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @abc.abstractmethod
    def run(self, ctx: SearchContext) -> None:
        """Evaluate architectures through ``ctx.evaluate`` until BudgetExhausted is raised."""
