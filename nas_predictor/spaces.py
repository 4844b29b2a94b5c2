"""Finding search spaces by name without importing them (they register through entry points)."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from nas_predictor.errors import ConfigError

GROUP = "nas_predictor.search_spaces"


def available_spaces() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


@lru_cache(maxsize=None)
def get_space(name: str) -> Any:
    """An instance of the search space registered under ``name`` (e.g. "nasbench201")."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()()
    raise ConfigError(
        f"unknown search space {name!r}; installed: {', '.join(available_spaces()) or 'none'} "
        "(is the nas-predictor package installed with `pip install -e .`?)"
    )
