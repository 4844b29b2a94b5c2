"""Optuna TPE over a space's categorical view, plain and surrogate-assisted (Optuna 5 ask/tell API).

Plain: each trial's choices become an architecture; one over the latency bound is told to Optuna
as infeasible (``trial.set_constraint``, with the worst value seen, so TPE learns where the bound
lies) without reaching the oracle; a repeat is told its known value at no cost.
Surrogate-assisted: each step asks ``num_candidates`` trials (constant liar keeps them apart), the
surrogate ranks them, the best new feasible one is evaluated and told, the others are told FAIL
(TPE ignores failed trials). A combination the space rejects (``from_choices`` raising ArchError)
is told FAIL and asked again.
"""

from __future__ import annotations

import logging

import numpy as np

from nas_predictor.errors import ArchError
from strategies.base import SearchContext, Strategy, checked_bool, checked_int

CONSTRAINT = "latency"


class TPESearch(Strategy):
    name = "tpe"

    def __init__(self, guided: bool = False, num_candidates: int = 24, n_startup_trials: int = 10) -> None:
        self.guided = checked_bool(self.name, "guided", guided)
        self.num_candidates = checked_int(self.name, "num_candidates", num_candidates, 1)
        self.n_startup_trials = checked_int(self.name, "n_startup_trials", n_startup_trials, 0)

    @property
    def needs_surrogate(self) -> bool:  # type: ignore[override]
        return self.guided

    def run(self, ctx: SearchContext) -> None:
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        seed = int(ctx.rng.integers(2**31 - 1))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                             multivariate=True, constant_liar=True)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        choices = ctx.space.choices()
        worst = [np.inf]

        def ask() -> tuple:
            while True:
                trial = study.ask()
                values = {name: trial.suggest_categorical(name, list(options)) for name, options in choices}
                try:
                    return trial, ctx.space.from_choices(values)
                except ArchError:
                    # not an architecture of the space (NAS-Bench-101: no input-output path, too many
                    # edges): TPE ignores failed trials, so ask again; idle_step stops an endless loop
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    ctx.idle_step()

        def tell(trial, arch: str) -> bool:
            """Evaluate ``arch`` and tell ``trial``; False when it broke the bound."""
            record = ctx.evaluate(arch)
            if record is None:
                over = float(ctx.constraint.latency([arch])[0] - ctx.constraint.max_ms)
                trial.set_constraint(CONSTRAINT, max(over, 1e-9))
                study.tell(trial, worst[0] if np.isfinite(worst[0]) else 0.0)
                return False
            if ctx.constraint is not None:
                trial.set_constraint(CONSTRAINT, min(float(record["latency_ms"]) - ctx.constraint.max_ms, 0.0))
            if record["status"] != "ok":
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return True
            worst[0] = min(worst[0], record["value"])
            study.tell(trial, record["value"])
            return True

        while ctx.remaining > 0:
            guided = self.guided and ctx.surrogate is not None
            if guided:
                ctx.surrogate.update(ctx.records())
            if not guided or not ctx.surrogate.ready():
                tell(*ask())
                continue
            asked = [ask() for _ in range(self.num_candidates)]
            new = [i for i, (_, arch) in enumerate(asked) if ctx.known(arch) is None]
            feasible = [i for i in new if ctx.feasible([asked[i][1]])[0]]
            pick = None
            if feasible:
                scores = ctx.surrogate.score([asked[i][1] for i in feasible])
                pick = feasible[int(np.argmax(scores))]
            elif new:
                pick = new[0]  # all over the bound: tell TPE so it moves away
            for i, (trial, arch) in enumerate(asked):
                if i != pick:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if pick is None:
                ctx.idle_step()
                continue
            tell(*asked[pick])
