"""Search spaces: one module per space, each turning its architectures into ArchGraphs."""

from __future__ import annotations

from nas_predictor.lazy import lazy_exports

# imported on first use (PEP 562), so `nas-predictor --help` (which loads the dataset command from this
# package) imports no space; SearchSpace itself is the core's protocol, nas_predictor.spaces
_LAZY = {"NASBench101": "search_spaces.nasbench101", "NASBench201": "search_spaces.nasbench201",
         "SearchSpace": "nas_predictor.spaces"}

__all__ = ["NASBench101", "NASBench201", "SearchSpace"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
