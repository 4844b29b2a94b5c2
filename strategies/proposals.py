"""Ask/tell for every strategy: the next architecture to evaluate, while other evaluations are still running.

Many workers share one search (an Optuna study, strategies/study.py): each asks for an architecture when it
is free, knowing the results that have arrived and the architectures other workers are evaluating now. A
strategy here is a loop that calls ``ctx.evaluate``; :func:`propose` runs it on a :class:`ProposalContext`
that already holds every finished evaluation (as if this run had made them) and treats the pending ones as
known, and stops it at the first new architecture it asks to evaluate: that is the proposal.

So a strategy proposes exactly what it would evaluate next in a sequential run that had seen those results,
with pending architectures never proposed twice. What each strategy makes of the shared results is its own
rule: the predictor-guided search refits its surrogate on all of them and ranks a pool that excludes the
pending ones; regularized evolution's population is the last successful evaluations; random search draws an
architecture nobody has. Workers stay apart because each proposal draws from its own random stream (seeded
by the worker and the trial): the Thompson acquisition of the predictor-guided search samples a different
ranking each time, and mutations and random draws differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from strategies.base import BudgetExhausted, SearchContext, SearchStalled, Strategy
from strategies.history import SearchHistory
from strategies.oracle import Oracle

PENDING = "pending"  # the status of a pending architecture's stand-in record


class Proposal(Exception):
    """Raised by ProposalContext.evaluate: the strategy asked to evaluate this new architecture."""

    def __init__(self, arch: str, predicted: float | None) -> None:
        super().__init__(arch)
        self.arch = arch
        self.predicted = predicted


class _NoOracle(Oracle):
    """A proposal context never evaluates anything."""

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:  # pragma: no cover - never reached
        raise RuntimeError("a proposal context does not evaluate")


@dataclass
class ProposalContext(SearchContext):
    """A SearchContext holding a shared search's finished evaluations (``records``, in the order they
    finished) and its pending architectures; ``evaluate`` of a new architecture raises Proposal."""

    pending: dict = field(default_factory=dict)  # canonical arch -> stand-in record

    @classmethod
    def of(cls, space: Any, records: Sequence[dict], pending: Sequence[str], budget: int, rng: np.random.Generator,
           constraint=None, surrogate=None) -> "ProposalContext":
        ctx = cls(space=space, oracle=_NoOracle(), budget=budget, rng=rng, history=SearchHistory(None, {}),
                  constraint=constraint, surrogate=surrogate, progress=False)
        for record in records:
            arch = space.canonical(record["arch"])
            if ctx._known(arch) is None:
                ctx._charged[arch] = record
                if ctx._by_network is not None:
                    ctx._by_network[space.equivalence_key(arch)] = record
        for arch in pending:
            arch = space.canonical(arch)
            if ctx._known(arch) is None:
                stand_in = {"arch": arch, "value": None, "status": PENDING, "report": {}, "latency_ms": None}
                ctx.pending[arch] = stand_in
                if ctx._by_network is not None:
                    ctx._by_network.setdefault(space.equivalence_key(arch), stand_in)
        # what may still be claimed: a pending evaluation counts against the budget until it ends
        ctx.spent = len(ctx._charged) + len(ctx.pending)
        return ctx

    def _known(self, arch: str) -> dict | None:
        return super()._known(arch) or self.pending.get(arch)

    def known_id(self, arch: str) -> dict | None:
        arch = self.space.canonical(arch)
        return self._charged.get(arch) or self.pending.get(arch)

    def _evaluation(self, arch: str, latency: float | None, predicted: float | None) -> dict:
        raise Proposal(arch, predicted)


def propose(strategy: Strategy, ctx: ProposalContext) -> Proposal | None:
    """The architecture ``strategy`` evaluates next given what ``ctx`` holds (its predicted value where the
    strategy ranked it), or None when it has nothing left to propose: the budget is taken by finished and
    pending evaluations, the space is exhausted within the bound, or the search stalled."""
    try:
        strategy.run(ctx)
    except Proposal as proposal:
        return proposal
    except (BudgetExhausted, SearchStalled):
        return None
    finally:
        ctx.close()
    return None
