"""Surrogates: what predictor-guided strategies rank candidates with.

- :class:`FixedSurrogate`: a trained predictor (a shipped one such as ``nb201-accuracy``, or a
  checkpoint), used as it is. On a benchmark it was trained on, it has seen the table: fine for users,
  not for judging a search strategy (the benchmark uses the online one).
- :class:`OnlineSurrogate`: a NAR-Former V2 refit from scratch on everything this search has evaluated,
  every ``refit_every`` new evaluations (``nas_predictor.online``: ~2-5 s on one CPU thread), on cell
  tokens or, for a space of whole networks (FBNet, OFA, a ``PythonSpace``), on whole-network tokens.
  Any finite search value works (accuracies, negated losses, zero, negative scores): see :func:`label_map`.
"""

from __future__ import annotations

import abc
import math
from collections import OrderedDict
from typing import Sequence

import numpy as np

from nas_predictor.config import ExperimentConfig
from nas_predictor.encoding import size_batches
from nas_predictor.errors import ConfigError
from nas_predictor.graph import ArchGraph
from nas_predictor.online import ONLINE_STEPS, fit_online, online_config, proxies_on_networks, whole_network_space
from nas_predictor.predictor import DEFAULT_BATCH_SIZE
from nas_predictor.proxy_features import ProxyScaler
from nas_predictor.zero_cost_store import attach_proxies
from nas_predictor.spaces import get_space

#: whole networks' unpadded tokens kept between scoring calls, counted in node rows (~200 floats each,
#: so about 160 MB); the networks scored longest ago are dropped first
TOKEN_CACHE_NODES = 200_000


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
        self._cell_cfg = online_config(overrides)  # checked here: bad settings fail before anything is spent
        self._network_cfg = None
        self._models: list = []
        self._fitted_on = 0
        # every refit shares one tokenizer, so candidates are turned into tokens once per search
        # (graphs + tokens took half of scoring the 15,625 NB201 cells)
        self._rows: dict[str, int] = {}
        self._tokens = None
        # whole networks: each one's tokens unpadded (runtime graph, (node, static) features), scored in
        # batches of similar size; one padded batch of all candidates grows with the square of the
        # largest network (OFA: ~350 nodes, 0.5 MB of adjacency per candidate)
        self._network_tokens: OrderedDict[str, tuple] = OrderedDict()
        self._network_nodes = 0
        # and the evaluated networks' graphs, which every refit reads again: the space keeps only its
        # last 128-256 exports, which scoring a pool of candidates replaces
        self._graphs: dict[str, ArchGraph] = {}
        self._whole_network: bool | None = None
        # encoding.proxies: cells' graphs with their zero-cost proxies (read from the space's proxy cache
        # once per search), and the scaler of the first fit
        self._proxy_graphs: dict[str, ArchGraph] = {}
        self._proxy_scaler: ProxyScaler | None = None
        self._map = (0.0, 1.0)  # label_map of the values the current models were fit on
        self._scores: dict[str, np.ndarray] = {}  # arch -> the current models' scores (one per member)
        self.fit_seconds = 0.0
        self.fits = 0
        if self._cell_cfg.encoding.proxies:
            try:
                get_space(space)
            except ConfigError:
                pass  # a space defined in Python after its surrogate: checked at the first update
            else:
                self._check_proxies()

    def _check_proxies(self) -> None:
        """Proxies asked of a whole-network space: refused before the search spends an evaluation."""
        if self._cell_cfg.encoding.proxies and self.whole_network:
            raise proxies_on_networks(self.space)

    def update(self, records: Sequence[dict]) -> None:
        if not self.fits:
            self._check_proxies()
        ok = [r for r in records if r["status"] == "ok" and math.isfinite(r["value"])]
        if len(ok) < self.min_points or np.unique([r["value"] for r in ok]).size < 2:
            return
        if self._models and len(ok) - self._fitted_on < self.refit_every:
            return
        archs, values = [r["arch"] for r in ok], np.array([r["value"] for r in ok], dtype=np.float64)
        self._map = label_map(values)
        values = self._map[0] + self._map[1] * values
        graphs = None
        if self.whole_network:
            space = get_space(self.space)
            for a in archs:
                if a not in self._graphs:
                    self._graphs[a] = space.to_graph(a)
            graphs = [self._graphs[a] for a in archs]
        elif self.cfg.encoding.proxies:
            graphs = self._cell_graphs(archs)
            if self._proxy_scaler is None:
                # fixed at the first fit (never refit): the candidates' cached tokens hold scaled proxies
                self._proxy_scaler = ProxyScaler.fit(self.cfg.encoding.proxies, graphs,
                                                     batch_size=self.cfg.encoding.proxy_batch_size)
        self._models = []
        self._scores = {}
        for m in range(self.ensemble):
            # the seed depends on how much is known, so each refit differs but a rerun repeats exactly
            seed = self.seed * 7919 + len(ok) + 104729 * m
            rows = np.arange(len(ok))
            if self.bootstrap:
                rows = np.random.default_rng(seed).integers(0, len(ok), len(ok))
                if np.unique(values[rows]).size < 2:  # a resample with one value cannot be ranked
                    rows = np.arange(len(ok))
            model, seconds = fit_online(self.space, [archs[i] for i in rows], values[rows], self.cfg, seed=seed,
                                        steps=self.steps, graphs=None if graphs is None else [graphs[i] for i in rows],
                                        proxy_scaler=self._proxy_scaler)
            self._models.append(model)
            self.fit_seconds += seconds
        self.fits += 1
        self._fitted_on = len(ok)

    def _cell_graphs(self, archs: Sequence[str]) -> list[ArchGraph]:
        """The cells' graphs with their zero-cost proxies, read (or computed) once per search."""
        new = [a for a in dict.fromkeys(archs) if a not in self._proxy_graphs]
        if new:
            space = get_space(self.space)
            attached = attach_proxies(space, new, [space.to_graph(a) for a in new],
                                      batch_size=self.cfg.encoding.proxy_batch_size)
            self._proxy_graphs.update(zip(new, attached))
        return [self._proxy_graphs[a] for a in archs]

    @property
    def whole_network(self) -> bool:
        """Whether the space's graphs are whole networks (``nas_predictor.online.whole_network_space``);
        asked on first use, so a space defined in Python may be made after its surrogate."""
        if self._whole_network is None:
            self._whole_network = whole_network_space(get_space(self.space))
        return self._whole_network

    @property
    def cfg(self) -> ExperimentConfig:
        """The online recipe the refits use (for whole networks: with ONLINE_NETWORK_DEFAULTS)."""
        if not self.whole_network:
            return self._cell_cfg
        if self._network_cfg is None:
            self._network_cfg = online_config(self.overrides, whole_network=True)
        return self._network_cfg

    def ready(self) -> bool:
        return bool(self._models)

    def score(self, archs: Sequence[str]) -> np.ndarray:
        return self.member_scores(archs).mean(axis=0)

    def member_scores(self, archs: Sequence[str]) -> np.ndarray:
        # Scores are kept until the next refit: a search asks again for candidates it ranked before (the
        # whole of NAS-Bench-201 each round; every proposal of a shared search, strategies/proposals.py)
        archs = list(archs)
        missing = [a for a in dict.fromkeys(archs) if a not in self._scores]
        if missing:
            shift, scale = self._map
            fresh = (self._fitted_scores(missing) - shift) / scale  # back in the search's own values
            self._scores.update(zip(missing, fresh.T))
        return np.stack([self._scores[a] for a in archs], axis=1)

    def _fitted_scores(self, archs: list[str]) -> np.ndarray:
        if self.cfg.predict.average_equivalent:
            return np.stack([m.predict(archs) for m in self._models])
        if self.whole_network:
            return self._network_scores(archs)
        import torch

        from nas_predictor.encoding import GraphBatch

        new = [a for a in dict.fromkeys(archs) if a not in self._rows]
        if new:
            space = get_space(self.space)
            graphs = self._cell_graphs(new) if self.cfg.encoding.proxies else [space.to_graph(a) for a in new]
            encoded = self._models[0].tokenizer.encode(graphs)
            self._tokens = encoded if self._tokens is None else GraphBatch.concat([self._tokens, encoded])
            self._rows.update((a, len(self._rows)) for a in new)
        rows = torch.tensor([self._rows[a] for a in archs])
        chunks = [rows[i:i + 1024] for i in range(0, len(rows), 1024)]
        return np.stack([np.concatenate([m.predict_batch(self._tokens.select(c)) for c in chunks]) / m.label_scale
                         for m in self._models])

    def _network_scores(self, archs: list[str]) -> np.ndarray:
        """_fitted_scores of whole networks: cached unpadded tokens, batches of similar size (as
        Predictor.predict_graphs makes them), each batch padded once for all members."""
        tokenizer = self._models[0].tokenizer
        unique = list(dict.fromkeys(archs))
        for a in unique:
            if a in self._network_tokens:
                self._network_tokens.move_to_end(a)
                continue
            graph = self._graphs[a] if a in self._graphs else get_space(self.space).to_graph(a)
            runtime, (nodes, static) = tokenizer.runtime_features(graph)
            self._network_tokens[a] = (runtime, (nodes.astype(np.float32), static))
            self._network_nodes += runtime.num_nodes
        entries = [self._network_tokens[a] for a in unique]
        sizes = np.array([g.num_nodes for g, _ in entries])
        device = self._models[0].device.type
        scores = np.empty((len(self._models), len(unique)))
        for part in size_batches(np.argsort(sizes, kind="stable"), sizes, DEFAULT_BATCH_SIZE.get(device, 1024), device):
            batch = tokenizer.encode([entries[i][0] for i in part], [entries[i][1] for i in part])
            for k, m in enumerate(self._models):
                scores[k, part] = m.predict_batch(batch) / m.label_scale
        while self._network_nodes > TOKEN_CACHE_NODES and len(self._network_tokens) > 1:
            _, (graph, _) = self._network_tokens.popitem(last=False)
            self._network_nodes -= graph.num_nodes
        column = {a: i for i, a in enumerate(unique)}
        return scores[:, [column[a] for a in archs]]

    def describe(self) -> str:
        extra = f", ensemble of {self.ensemble}{' on bootstrap resamples' if self.bootstrap else ''}" \
            if self.ensemble > 1 else ""
        changed = f", settings {self.overrides}" if self.overrides else ""
        return f"online NAR-Former V2 (refit every {self.refit_every} evaluations, {self.steps} steps{extra}{changed})"
