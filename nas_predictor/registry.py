"""Name -> implementation lookups (strategies, model architectures, data loaders), written once.

A :class:`Registry` maps the names a user types (a CLI choice, a config value) to what they build, in
the order they were added; an unknown name is a ConfigError that lists the known ones, so every lookup
fails with the same kind of message. Plug-ins that ship as packages (search spaces) use entry points
instead (nas_predictor.spaces); a registry is for the project's own closed sets of names.
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from nas_predictor.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one ``kind`` (as the error message says it, e.g. "strategy") and what each builds."""

    def __init__(self, kind: str, error: type[Exception] = ConfigError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; a name taken twice is a bug, so it raises at import."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        """What ``name`` builds; an unknown name raises ``error`` naming the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a config file
            raise self.error(f"unknown {self.kind} {name!r}; choose from {', '.join(self._items)}") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style ``pattern``, in the order they were added."""
        return [name for name in self._items if fnmatch.fnmatchcase(name, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
