"""The SearchSpace interface every space implements, and finding spaces by name without importing them (they
register through the ``nas_predictor.search_spaces`` entry points). Interfaces live in the core, so the core
reaches spaces through this typed protocol and never imports ``search_spaces``."""

from __future__ import annotations

import abc
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Iterator

from nas_predictor.errors import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    import numpy as np
    import onnx
    import torch

    from nas_predictor.graph import ArchGraph

GROUP = "nas_predictor.search_spaces"


class SearchSpace(abc.ABC):
    """A finite or sampled space of architectures identified by canonical strings.

    Lifecycle, as the rest of the project calls it:

    - a space is registered under ``[project.entry-points."nas_predictor.search_spaces"]`` and built once
      per process, with no arguments, by :func:`get_space` (so it must be cheap to build and may cache);
    - strategies draw architectures with :meth:`sample`, move with :meth:`mutate` / :meth:`neighbours`
      (or, for samplers of independent choices such as TPE, :meth:`choices` / :meth:`from_choices`, and
      :meth:`to_choices` back), and compare them by :meth:`canonical` strings; every method takes an
      explicit ``rng``, never global state;
    - predictors read an architecture as :meth:`to_graph` (an ArchGraph), and a latency predictor reads its
      whole network: :meth:`build_network` at :meth:`network_input_shape`, exported to ONNX by the core
      (``nas_predictor.data.latency_graphs.network_graph``, which caches the graphs), or
      :meth:`network_onnx` where a space writes its ONNX faster than the exporter;
    - optional hooks have defaults: :meth:`proxy_score` (a training-free prior for warm starts),
      :meth:`equivalence_key` / :meth:`equivalent_archs` (architectures known to compute the same function),
      ``__len__`` / ``__iter__`` for finite spaces.

    A malformed architecture is an ``ArchError`` that says what is wrong. tests/search_spaces/test_contract.py
    runs one contract suite against every registered space.
    """

    name: str = ""
    #: op types the tokenizer of this space's predictors must know, in label-code order
    op_vocab: tuple[str, ...] = ()
    #: exported whole-network graphs kept in memory per space (exports take 0.05-1 s; searches revisit archs)
    NETWORK_CACHE_SIZE = 256

    @abc.abstractmethod
    def to_graph(self, arch: str) -> "ArchGraph":
        """The ArchGraph of an architecture (raises ArchError for a malformed one)."""

    @abc.abstractmethod
    def sample(self, rng: "np.random.Generator") -> str:
        """A uniformly random architecture."""

    @abc.abstractmethod
    def mutate(self, arch: str, rng: "np.random.Generator") -> str:
        """A random neighbour that differs from ``arch``."""

    @abc.abstractmethod
    def neighbours(self, arch: str) -> list[str]:
        """Every architecture one mutation away from ``arch``."""

    # -- categorical view (Optuna TPE and other samplers of independent choices) -------------------
    def choices(self) -> list[tuple[str, tuple]]:
        """(name, allowed values) of each independent decision.

        A space may reject some combinations (NAS-Bench-101: a cell without an input-output path):
        ``from_choices`` then raises ArchError, and a strategy must treat that as "ask again"."""
        raise NotImplementedError(f"search space {self.name!r} has no categorical view")

    def from_choices(self, values: dict) -> str:
        """The canonical arch string of one value per decision of :meth:`choices` (ArchError when the
        combination is not an architecture of the space)."""
        raise NotImplementedError(f"search space {self.name!r} has no categorical view")

    def to_choices(self, arch: str) -> dict:
        """One value per decision of :meth:`choices` (each among that decision's allowed values) whose
        ``from_choices`` is ``canonical(arch)``: how a sampler of independent choices (an Optuna sampler)
        names an architecture another strategy picked. The values are the very objects of the allowed
        tuples (an int stays an int), since samplers compare them; decisions the canonical form ignores
        get an allowed value all the same. ArchError when ``arch`` is malformed."""
        raise NotImplementedError(f"search space {self.name!r} has no categorical view")

    def canonical(self, arch: str) -> str:
        """The canonical string of ``arch`` (raises ArchError when malformed); default: as given."""
        return arch

    @property
    def cache_key(self) -> str:
        """What disk caches of this space's networks are filed under (default: the name; a space whose
        definition can change under one name adds a fingerprint of it)."""
        return self.name

    # -- whole networks (latency prediction) -------------------------------------------------------
    def build_network(self, arch: str) -> "torch.nn.Module":
        """The PyTorch network of ``arch``; spaces that describe whole networks override this."""
        raise NotImplementedError(f"search space {self.name!r} cannot build whole networks")

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, ...]:
        """The input shape :meth:`build_network`'s network is exported at."""
        raise NotImplementedError(f"search space {self.name!r} cannot build whole networks")

    def network_onnx(self, arch: str) -> "onnx.ModelProto | None":
        """Optional fast path: ``arch``'s whole network written straight as ONNX at batch 1, which
        ``onnx_to_graph`` must read exactly as the export of :meth:`build_network` (the contract suite
        compares them). ``None`` (the default): the core exports :meth:`build_network`."""
        return None

    def zero_cost_table(self) -> "Traversable | None":
        """A packaged table of this space's zero-cost proxies (nas_predictor/zero_cost_store.py reads it
        before computing any), or None (the default): every network is scored on first use."""
        return None

    def proxy_score(self, arch: str) -> float:
        """A training-free prior of how good ``arch`` is, higher = expected better (a zero-cost proxy;
        warm starts of the predictor search use it). Spaces without one raise NotImplementedError."""
        raise NotImplementedError(f"search space {self.name!r} has no training-free proxy score")

    def equivalence_key(self, arch: str) -> str:
        """Architectures that compute the same function share a key (default: none are known equal)."""
        return arch

    def equivalent_archs(self, arch: str) -> list[str]:
        """Every architecture of the space with ``arch``'s equivalence key, ``arch`` included."""
        return [arch]

    def __len__(self) -> int:  # pragma: no cover - finite spaces override
        raise TypeError(f"{self.name} is not enumerable")

    def __iter__(self) -> Iterator[str]:  # pragma: no cover - finite spaces override
        raise TypeError(f"{self.name} is not enumerable")


# spaces made in this process (search_spaces.python_space.PythonSpace registers itself), by name
_MADE_HERE: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    """Make a space built in this process known to :func:`get_space` by its name, so the core's graph
    caches and latency sources, which look spaces up by name, reach it like an installed one. A later
    space of the same name replaces it (a notebook cell run again); an installed name cannot be taken."""
    if space.name in _installed_names():
        raise ConfigError(f"search space name {space.name!r} is taken by an installed space; choose another")
    _MADE_HERE[space.name] = space
    return space


def cache_key(name: str) -> str:
    """What disk caches of ``name``'s networks are filed under: a space made in this process gives its
    ``cache_key`` (name + fingerprint of its definition), anything else its name."""
    space = _MADE_HERE.get(name)
    return space.cache_key if space is not None else name


@lru_cache(maxsize=1)
def _installed_names() -> frozenset[str]:
    return frozenset(ep.name for ep in entry_points(group=GROUP))


def available_spaces() -> list[str]:
    """The names of every search space: the installed ones and those made in this process."""
    return sorted(_installed_names() | set(_MADE_HERE))


def get_space(name: str) -> SearchSpace:
    """The search space named ``name`` (e.g. "nasbench201"): one made in this process, else an installed one."""
    if name in _MADE_HERE:
        return _MADE_HERE[name]
    return _installed_space(name)


@lru_cache(maxsize=None)
def _installed_space(name: str) -> SearchSpace:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()()
    raise ConfigError(
        f"unknown search space {name!r}; installed: {', '.join(available_spaces()) or 'none'} "
        "(is the nas-predictor package installed with `pip install -e .`?)"
    )
