"""Surrogates: what predictor-guided strategies rank candidates with.

- :class:`FixedSurrogate`: a trained predictor (a shipped one such as ``nb201-accuracy``, or a
  checkpoint), used as it is. On a benchmark it was trained on, it has seen the table: fine for users,
  not for judging a search strategy (the benchmark uses the online one).
- :class:`OnlineSurrogate`: a NAR-Former V2 refit from scratch on everything this search has evaluated,
  every ``refit_every`` new evaluations (``nas_predictor.online``: ~2-5 s on one CPU thread). Any finite
  search value works (accuracies, negated losses, zero, negative scores): see :func:`label_map`.
"""

from __future__ import annotations

import abc
import math
from typing import Sequence

import numpy as np

from nas_predictor.errors import ConfigError
from nas_predictor.online import ONLINE_STEPS, fit_online, online_config
from nas_predictor.spaces import get_space


def label_map(values: np.ndarray) -> tuple[float, float]:
    """(shift, scale) of the increasing map ``label = shift + scale * value`` the online predictor is fit on.

    Its value loss is relative (``pred / label - 1``, nas_predictor.train), which needs positive labels,
    and its recipe was tuned on accuracies in percent. Positive values are fit as they are (so searches on
    accuracies are unchanged); values reaching zero or below are mapped onto 50..90, the range of such
    accuracies. The map is increasing, so the ranking is the same, and scores are mapped back to values.
    """
    lo, hi = float(np.min(values)), float(np.max(values))
    if lo > 0:
        return 0.0, 1.0
    scale = 40.0 / (hi - lo) if hi > lo else 1.0
    return 50.0 - scale * lo, scale


class Surrogate(abc.ABC):
    #: seconds spent fitting so far
    fit_seconds: float = 0.0
    fits: int = 0

    def update(self, records: Sequence[dict]) -> None:
        """Learn from this search's evaluation records (default: nothing to learn)."""

    @abc.abstractmethod
    def ready(self) -> bool:
        """Whether ``score`` can be called yet."""

    @abc.abstractmethod
    def score(self, archs: Sequence[str]) -> np.ndarray:
        """Higher is better."""

    def member_scores(self, archs: Sequence[str]) -> np.ndarray:
        """(members, len(archs)) scores of each ensemble member; their spread is the uncertainty an
        exploring acquisition (Thompson sampling) draws from. Default: one member, :meth:`score`."""
        return self.score(archs)[None, :]

    def describe(self) -> str:
        return type(self).__name__


class FixedSurrogate(Surrogate):
    def __init__(self, predictor: str, device: str = "cpu") -> None:
        from nas_predictor.predictor import load_predictor

        self.name = predictor
        self.predictor = load_predictor(predictor, device=device)
        self._memo: dict[str, float] = {}  # a fixed model: each architecture is scored once per search

    def ready(self) -> bool:
        return True

    def score(self, archs: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(a for a in archs if a not in self._memo))
        if todo:
            self._memo.update(zip(todo, map(float, self.predictor.predict(todo))))
        return np.array([self._memo[a] for a in archs], dtype=np.float64)

    def describe(self) -> str:
        return f"predictor {self.name} (fixed)"


class FunctionSurrogate(Surrogate):
    """Any scorer ``list[arch] -> scores`` (a zero-cost proxy, another model)."""

    def __init__(self, fn, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")

    def ready(self) -> bool:
        return True

    def score(self, archs: Sequence[str]) -> np.ndarray:
        return np.asarray(self.fn(list(archs)), dtype=np.float64)

    def describe(self) -> str:
        return f"function {self.name}"


class OnlineSurrogate(Surrogate):
    def __init__(self, space: str, refit_every: int = 10, min_points: int = 10, steps: int = ONLINE_STEPS,
                 seed: int = 0, ensemble: int = 1, bootstrap: bool = False, overrides: dict | None = None) -> None:
        if ensemble < 1:
            raise ConfigError(f"surrogate ensemble must be at least 1, got {ensemble}")
        self.space = space
        # each member fit on a bootstrap resample of the evaluations (bagging, as BANANAS does), so the
        # members disagree where few evaluations back a prediction
        self.bootstrap = bootstrap
        self.refit_every = refit_every
        self.min_points = min_points
        self.steps = steps
        self.seed = seed
        self.ensemble = ensemble
        self.overrides = overrides or {}
        self.cfg = online_config(overrides)
        self._models: list = []
        self._fitted_on = 0
        # every refit shares one tokenizer, so candidates are turned into tokens once per search
        # (graphs + tokens took half of scoring the 15,625 NB201 cells)
        self._rows: dict[str, int] = {}
        self._tokens = None
        self._map = (0.0, 1.0)  # label_map of the values the current models were fit on
        self.fit_seconds = 0.0
        self.fits = 0

    def update(self, records: Sequence[dict]) -> None:
        ok = [r for r in records if r["status"] == "ok" and math.isfinite(r["value"])]
        if len(ok) < self.min_points or np.unique([r["value"] for r in ok]).size < 2:
            return
        if self._models and len(ok) - self._fitted_on < self.refit_every:
            return
        archs, values = [r["arch"] for r in ok], np.array([r["value"] for r in ok], dtype=np.float64)
        self._map = label_map(values)
        values = self._map[0] + self._map[1] * values
        self._models = []
        for m in range(self.ensemble):
            # the seed depends on how much is known, so each refit differs but a rerun repeats exactly
            seed = self.seed * 7919 + len(ok) + 104729 * m
            rows = np.arange(len(ok))
            if self.bootstrap:
                rows = np.random.default_rng(seed).integers(0, len(ok), len(ok))
                if np.unique(values[rows]).size < 2:  # a resample with one value cannot be ranked
                    rows = np.arange(len(ok))
            model, seconds = fit_online(self.space, [archs[i] for i in rows], values[rows], self.cfg, seed=seed,
                                        steps=self.steps)
            self._models.append(model)
            self.fit_seconds += seconds
        self.fits += 1
        self._fitted_on = len(ok)

    def ready(self) -> bool:
        return bool(self._models)

    def score(self, archs: Sequence[str]) -> np.ndarray:
        return self.member_scores(archs).mean(axis=0)

    def member_scores(self, archs: Sequence[str]) -> np.ndarray:
        shift, scale = self._map
        return (self._fitted_scores(list(archs)) - shift) / scale  # back in the search's own values

    def _fitted_scores(self, archs: list[str]) -> np.ndarray:
        if self.cfg.predict.average_equivalent:
            return np.stack([m.predict(archs) for m in self._models])
        import torch

        from nas_predictor.encoding import GraphBatch

        new = [a for a in dict.fromkeys(archs) if a not in self._rows]
        if new:
            space = get_space(self.space)
            encoded = self._models[0].tokenizer.encode([space.to_graph(a) for a in new])
            self._tokens = encoded if self._tokens is None else GraphBatch.concat([self._tokens, encoded])
            self._rows.update((a, len(self._rows)) for a in new)
        rows = torch.tensor([self._rows[a] for a in archs])
        chunks = [rows[i:i + 1024] for i in range(0, len(rows), 1024)]
        return np.stack([np.concatenate([m.predict_batch(self._tokens.select(c)) for c in chunks]) / m.label_scale
                         for m in self._models])

    def describe(self) -> str:
        extra = f", ensemble of {self.ensemble}{' on bootstrap resamples' if self.bootstrap else ''}" \
            if self.ensemble > 1 else ""
        changed = f", settings {self.overrides}" if self.overrides else ""
        return f"online NAR-Former V2 (refit every {self.refit_every} evaluations, {self.steps} steps{extra}{changed})"
