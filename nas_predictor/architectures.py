"""The predictor networks a config's ``model.architecture`` names, and :func:`build_model`.

It sits above model.py (NAR-Former V2) and baselines.py (the NNLP-style GNN), so neither imports the
other's module to build the right one.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from nas_predictor.baselines import NNLPGNN
from nas_predictor.model import NARFormerV2
from nas_predictor.model_config import ModelConfig
from nas_predictor.registry import Registry

ARCHITECTURES: Registry[Callable[[ModelConfig], nn.Module]] = Registry("model architecture")
ARCHITECTURES.add("narformer_v2", NARFormerV2)
ARCHITECTURES.add("nnlp_gnn", NNLPGNN)  # NNLQP's design; latency only


def build_model(cfg: ModelConfig) -> nn.Module:
    """The predictor network a config names (NAR-Former V2, or the NNLP-style GNN baseline)."""
    return ARCHITECTURES.get(cfg.architecture)(cfg)
