"""nas-predictor: NAR-Former V2 surrogate predictors of accuracy and latency for NAS."""

from nas_predictor.graph import ArchGraph
from nas_predictor.predictor import Predictor, list_pretrained, load_predictor, load_pretrained

__all__ = ["ArchGraph", "Predictor", "list_pretrained", "load_predictor", "load_pretrained"]
__version__ = "0.1.0"
