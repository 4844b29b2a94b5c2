"""FamilySpec: how one family of generated networks is drawn and built (see ``search_spaces.cnn_families``).

Kept apart from the package's ``__init__`` so each family module can define its ``SPEC`` without a
circular import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

__all__ = ["FamilySpec", "network"]


def network(cls: type[nn.Module]) -> Callable[[dict, int, int], nn.Module]:
    """A ``build`` for a module class whose constructor takes (config, resolution, num_classes)."""
    return lambda config, resolution, num_classes: cls(config, resolution, num_classes)


@dataclass(frozen=True)
class FamilySpec:
    name: str
    base: Callable[[], dict]
    sample: Callable[[np.random.Generator, bool], dict]
    build: Callable[[dict, int, int], nn.Module]  # (config, resolution, num_classes) -> module
    resolution: int = 224
    min_resolution: int = 32
    num_classes: int = 1000
    windowed: bool = True  # a MAC window applies
    varies_resolution: bool = True  # in the extended space
    # accepted MACs relative to the base network; None: the package's MAC_WINDOW (0.2x-3x)
    mac_window: tuple[float, float] | None = None
