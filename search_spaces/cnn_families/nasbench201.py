"""The nasbench201 family: NB201 CIFAR macro networks (``search_spaces.nb201_network``) of random cells.

A variant is a uniformly random NB201 cell (``NASBench201().sample(rng)``, each of the 6 edges one of the
5 ops). nn-Meter's NB201 generator config (``configs/nasbench201.json``) builds every cell with C = 16,
N = 5 and 10 classes at 32x32, and NNLQP's labels give no sign of other sizes, so C and N stay fixed
in the default space; the extended space also draws C in {8, 16, 24, 32} and N in {1, ..., 5}.
The base variant is the ResNet-like cell that heads nn-Meter's config (and this project's NB201 docs).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from search_spaces.cnn_families.blocks import choice
from search_spaces.nasbench201 import NASBench201
from search_spaces.nb201_network import build_nb201_network

BASE_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
BASE_C, BASE_N = 16, 5
CHANNELS = (8, 16, 24, 32)
CELLS = (1, 2, 3, 4, 5)


def base() -> dict:
    return {"arch": BASE_ARCH, "C": BASE_C, "N": BASE_N}


def sample(rng: np.random.Generator, extended: bool) -> dict:
    arch = NASBench201().sample(rng)
    c, n = (choice(rng, CHANNELS), choice(rng, CELLS)) if extended else (BASE_C, BASE_N)
    return {"arch": arch, "C": c, "N": n}


def build(config: dict, resolution: int, num_classes: int) -> nn.Module:
    return build_nb201_network(config["arch"], num_classes=num_classes, C=config["C"], N=config["N"])
