"""The SearchSpace interface every space implements (one contract test suite runs against all)."""

from __future__ import annotations

import abc
from collections import OrderedDict
from typing import TYPE_CHECKING, Iterator

import numpy as np

from nas_predictor.graph import ArchGraph

if TYPE_CHECKING:
    import torch


class SearchSpace(abc.ABC):
    """A finite or sampled space of architectures identified by canonical strings."""

    name: str = ""
    #: op types the tokenizer of this space's predictors must know, in label-code order
    op_vocab: tuple[str, ...] = ()

    @abc.abstractmethod
    def to_graph(self, arch: str) -> ArchGraph:
        """The ArchGraph of an architecture (raises ArchError for a malformed one)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> str:
        """A uniformly random architecture."""

    @abc.abstractmethod
    def mutate(self, arch: str, rng: np.random.Generator) -> str:
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

    def canonical(self, arch: str) -> str:
        """The canonical string of ``arch`` (raises ArchError when malformed); default: as given."""
        return arch

    # -- whole networks (latency prediction) -------------------------------------------------------
    #: exported graphs kept in memory per space (exports take 0.05-1 s; searches revisit archs)
    NETWORK_CACHE_SIZE = 256

    def build_network(self, arch: str) -> "torch.nn.Module":
        """The PyTorch network of ``arch``; spaces that describe whole networks override this."""
        raise NotImplementedError(f"search space {self.name!r} cannot build whole networks")

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, ...]:
        raise NotImplementedError(f"search space {self.name!r} cannot build whole networks")

    def network_graph(self, arch: str) -> ArchGraph:
        """The whole network of ``arch`` as an ArchGraph: its weight-free ONNX export at batch 1,
        read by nas_predictor.onnx (the ops that run: unfused BN, residual adds, ...)."""
        from nas_predictor.onnx import onnx_to_graph
        from search_spaces.onnx_export import export_onnx

        key = self.canonical(arch)
        cache = self.__dict__.setdefault("_network_graphs", OrderedDict())
        graph = cache.get(key)
        if graph is None:
            graph = onnx_to_graph(export_onnx(self.build_network(key), self.network_input_shape(key)))
            cache[key] = graph
            if len(cache) > self.NETWORK_CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return graph

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
