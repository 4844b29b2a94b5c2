"""Predictor-in-the-loop search (NPENAS / BANANAS style).

Start with ``num_init`` random evaluations; then repeat: refit the surrogate on everything evaluated,
build a candidate pool (``num_mutants`` mutants, one to ``max_mutations`` steps, of the
``num_parents`` best evaluated architectures, plus ``num_random`` fresh samples; or, for a space of
at most ``exhaustive_below`` architectures, the whole space), rank it by the surrogate, and evaluate
the ``top_k`` best new candidates within the latency bound. Candidates that compute the same function
as an evaluated architecture are skipped (``skip_equivalent``). With ``num_local`` > 0, each round also
evaluates that many of the best-scored new neighbours of the best architecture found so far.
"""

from __future__ import annotations

import numpy as np

from strategies.base import SearchContext, Strategy


class PredictorSearch(Strategy):
    name = "predictor"
    needs_surrogate = True

    def __init__(self, num_init: int = 10, top_k: int = 5, num_parents: int = 10, num_mutants: int = 100,
                 max_mutations: int = 2, num_random: int = 200, exhaustive_below: int = 20000,
                 skip_equivalent: bool = True, num_local: int = 0) -> None:
        self.num_init = num_init
        self.top_k = top_k
        self.num_parents = num_parents
        self.num_mutants = num_mutants
        self.max_mutations = max_mutations
        self.num_random = num_random
        self.exhaustive_below = exhaustive_below
        self.skip_equivalent = skip_equivalent
        self.num_local = num_local

    def _pool(self, ctx: SearchContext) -> list[str]:
        pool = self._candidates(ctx)
        if self.skip_equivalent:
            # an architecture computing the same function as one already evaluated (NAS-Bench-201: dead
            # ops, none edges, identity skips) would cost a real evaluation to learn nothing new
            seen = {ctx.space.equivalence_key(r["arch"]) for r in ctx.records()}
            pool = [a for a in pool if ctx.space.equivalence_key(a) not in seen]
        return pool

    def _candidates(self, ctx: SearchContext) -> list[str]:
        space = ctx.space
        try:
            size = space.__len__()
        except TypeError:
            size = None
        if size is not None and size <= self.exhaustive_below:
            pool = [a for a in space if ctx.known(a) is None]
            return pool
        best = sorted(ctx.ok_records(), key=lambda r: -r["value"])[: self.num_parents]
        pool = []
        for record in best:
            for _ in range(self.num_mutants):
                child = record["arch"]
                for _ in range(int(ctx.rng.integers(1, self.max_mutations + 1))):
                    child = space.mutate(child, ctx.rng)
                pool.append(space.canonical(child))
        pool += [space.canonical(space.sample(ctx.rng)) for _ in range(self.num_random)]
        return [a for a in dict.fromkeys(pool) if ctx.known(a) is None]

    def run(self, ctx: SearchContext) -> None:
        while ctx.remaining > 0 and len(ctx.records()) < self.num_init:
            ctx.evaluate(ctx.sample_new())
        while ctx.remaining > 0:
            ctx.surrogate.update(ctx.records())
            if not ctx.surrogate.ready():  # too few distinct values yet to learn from
                ctx.evaluate(ctx.sample_new())
                continue
            pool = self._pool(ctx)
            if not pool:
                return
            picked_keys: set[str] = set()
            chosen = self._evaluate_best(ctx, pool, ctx.surrogate.score(pool), min(self.top_k, ctx.remaining),
                                         picked_keys)
            if self.num_local and ctx.remaining > 0 and ctx.best() is not None:
                # local exploitation: the best-scored new neighbours of the best cell found so far
                local = [a for a in ctx.space.neighbours(ctx.best()["arch"]) if ctx.known(a) is None]
                if self.skip_equivalent:
                    seen = {ctx.space.equivalence_key(r["arch"]) for r in ctx.records()}
                    local = [a for a in local if ctx.space.equivalence_key(a) not in seen]
                if local:
                    chosen += self._evaluate_best(ctx, local, ctx.surrogate.score(local),
                                                  min(self.num_local, ctx.remaining), picked_keys)
            if chosen == 0:
                return  # nothing left within the bound

    def _evaluate_best(self, ctx: SearchContext, pool: list[str], scores: np.ndarray, want: int,
                       picked_keys: set[str]) -> int:
        """Evaluate the ``want`` best-scored candidates of ``pool`` within the bound; how many it did."""
        order = np.argsort(-scores, kind="stable")
        chosen = 0
        step = 4 * max(want, 1)
        for start in range(0, len(order), step):
            # the bound is checked a chunk at a time: a predicted latency exports each network once
            chunk = order[start:start + step]
            for i, ok in zip(chunk, ctx.feasible([pool[i] for i in chunk])):
                if not ok or chosen >= want:
                    continue
                if self.skip_equivalent:  # nor two of one function in the same batch
                    key = ctx.space.equivalence_key(pool[i])
                    if key in picked_keys:
                        continue
                    picked_keys.add(key)
                ctx.evaluate(pool[i], predicted=float(scores[i]))
                chosen += 1
            if chosen >= want:
                break
        return chosen
