"""Regularized (ageing) evolution (Real et al., AAAI 2019), plain and predictor-guided.

Plain: keep the last ``population`` evaluated architectures; each step draw ``sample_size`` of them,
mutate the best one, evaluate the child, drop the oldest. Predictor-guided: the best parent spawns
``num_mutants`` children (mutated once or twice), the surrogate scores them, and only the top-scored new
one within the latency bound is evaluated (a refit surrogate learns from every evaluation).
"""

from __future__ import annotations

import numpy as np

from nas_predictor.errors import ConfigError
from strategies.base import SearchContext, Strategy, checked_bool, checked_int


class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(self, population: int = 20, sample_size: int = 5, guided: bool = False, num_mutants: int = 50,
                 max_mutations: int = 2) -> None:
        population = checked_int(self.name, "population", population, 1)
        sample_size = checked_int(self.name, "sample_size", sample_size, 1)
        if not 1 <= sample_size <= population:
            raise ConfigError(f"evolution needs 1 <= sample_size ({sample_size}) <= population ({population})")
        self.population = population
        self.sample_size = sample_size
        self.guided = checked_bool(self.name, "guided", guided)
        self.num_mutants = checked_int(self.name, "num_mutants", num_mutants, 1)
        self.max_mutations = checked_int(self.name, "max_mutations", max_mutations, 1)

    @property
    def needs_surrogate(self) -> bool:  # type: ignore[override]
        return self.guided

    def _child(self, ctx: SearchContext, parent: str) -> str:
        """A new architecture within the bound, mutated once from ``parent`` (plain), or the best-scored
        of many mutants (guided)."""
        if not self.guided or ctx.surrogate is None or not ctx.surrogate.ready():
            for _ in range(1000):
                child = ctx.space.canonical(ctx.space.mutate(parent, ctx.rng))
                if ctx.known(child) is None and ctx.feasible([child])[0]:
                    return child
                ctx.idle_step()
            return ctx.sample_new()
        mutants = []
        for _ in range(self.num_mutants):
            child = parent
            for _ in range(int(ctx.rng.integers(1, self.max_mutations + 1))):
                child = ctx.space.mutate(child, ctx.rng)
            mutants.append(ctx.space.canonical(child))
        mutants = [m for m in dict.fromkeys(mutants) if ctx.known(m) is None]
        if not mutants:
            return ctx.sample_new()
        scores = ctx.surrogate.score(mutants)
        ordered = [mutants[i] for i in np.argsort(-scores, kind="stable")]
        for child in ordered:
            if ctx.feasible([child])[0]:
                return child
        return ctx.sample_new()

    def run(self, ctx: SearchContext) -> None:
        # The population is the last ``population`` successful evaluations the context knows, in order: the
        # same ageing queue a loop of its own would keep, and it also holds the results of other workers
        # when the context is a shared study's (strategies/proposals.py), where this run proposes one child.
        while ctx.remaining > 0:
            population = ctx.ok_records()[-self.population:]
            if len(population) < self.population:
                ctx.evaluate(ctx.sample_new())
                continue
            break
        while ctx.remaining > 0:
            if ctx.surrogate is not None and self.guided:
                ctx.surrogate.update(ctx.records())
            population = ctx.ok_records()[-self.population:]
            if not population:
                ctx.evaluate(ctx.sample_new())
                continue
            picks = ctx.rng.choice(len(population), size=min(self.sample_size, len(population)), replace=False)
            parent = max((population[int(i)] for i in picks), key=lambda r: r["value"])["arch"]
            ctx.evaluate(self._child(ctx, parent))
