"""Search spaces: one module per space, each turning its architectures into ArchGraphs."""

from __future__ import annotations

import importlib
from typing import Any

# imported on first use (PEP 562), so `nas-predictor --help` (which loads the dataset command from this
# package) imports no space; SearchSpace itself is the core's protocol, nas_predictor.spaces
_LAZY = {"NASBench101": "search_spaces.nasbench101", "NASBench201": "search_spaces.nasbench201",
         "SearchSpace": "nas_predictor.spaces"}

__all__ = ["NASBench101", "NASBench201", "SearchSpace"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
