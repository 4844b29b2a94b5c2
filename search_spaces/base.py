"""The SearchSpace interface every space implements (one contract test suite runs against all)."""

from __future__ import annotations

import abc
from typing import Iterator

import numpy as np

from nas_predictor.graph import ArchGraph


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
