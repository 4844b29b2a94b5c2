"""nas-predictor: NAR-Former V2 surrogate predictors of accuracy and latency for NAS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas_predictor.lazy import lazy_exports

if TYPE_CHECKING:
    from nas_predictor.graph import ArchGraph
    from nas_predictor.predictor import Predictor, list_pretrained, load_predictor, load_pretrained

# the public names, imported on first use (PEP 562): importing the package, as every `nas-predictor`
# command does, must not import torch
_LAZY = {"ArchGraph": "nas_predictor.graph", "Predictor": "nas_predictor.predictor",
         "list_pretrained": "nas_predictor.predictor", "load_predictor": "nas_predictor.predictor",
         "load_pretrained": "nas_predictor.predictor"}

__all__ = ["ArchGraph", "Predictor", "list_pretrained", "load_predictor", "load_pretrained"]
__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
