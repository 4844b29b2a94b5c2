"""The ten NNLQP network families as reproducible generators of plain torch modules.

NNLQP (Liu et al., ICPP'22; github.com/ModelTC/NNLQP) timed 2,000 "transform" variants of each of 10
families (``FAMILIES``; keys as in ``shared/data/nnlqp_gt_labels``) at batch 1, input 224x224 (32x32 for
nasbench201). Its generator is not public; its file names say where the variants come from:
``nnmeter_{alexnet,mnasnet,mobilenetv2,resnet18,squeezenet,vgg16}`` are nn-Meter's model generators
(github.com/microsoft/nn-Meter, ``nn_meter/dataset/generator``: ``configs/*.yaml`` and
``networks/tf_network/*.py``), ``spring_{efficientnet_b0,googlenet,mobilenet_v3_small}`` come from
SenseTime's (internal) spring model zoo, ``nasbench201`` are NB201 cells. nn-Meter's generators keep
each family's depth and input size and resample, per layer or block, the output channels (base width
x a multiplier from 0.2, 0.3, ..., 1.8; 0.2..1.2 for ResNet), the kernel size (from {1, 3, 5, 7} or
{3, 5, 7}) and the expansion ratio of inverted-residual blocks. The family modules follow those
generators (their docstrings give each family's ranges) on torchvision's layer layouts, so each base
network has torchvision's parameter count; the two spring families without an nn-Meter generator
borrow the ranges of the closest one (GoogLeNet: nn-Meter's googlenet; EfficientNet-B0: its MnasNet).
Note that NNLQP's mobilenetv3 family is MobileNetV3-*Small* and its squeezenet nn-Meter's 1.0 layout.

Two spaces (``generate(..., space=...)``):

- ``"nnlqp"`` (default): as NNLQP / nn-Meter: fixed depth and resolution (224, or 32 for nasbench201),
  widths, kernels and expansions drawn;
- ``"extended"``: also the depth (blocks / convs per stage: base - 1, base or base + 1, at least 1;
  ResNet-18 1-3 blocks per stage; nasbench201 C in {8, 16, 24, 32} and N in 1..5) and the input
  resolution (``EXTENDED_RESOLUTIONS``, 160..256 in steps of 16; nasbench201 stays at 32). NNLQP did
  not vary these (its README lists one input size per family); use it for more diverse training data.

Size window: a draw whose MACs fall outside ``MAC_WINDOW`` (0.2x-3x the family's base network at its
base resolution) is rejected and drawn again from the same generator, so VGG-16's variants stay under
3 x 15.5 GMACs (NNLQP's unconstrained draws went further: its VGG-16 latencies reach 4.4x their
median). nasbench201 is not windowed (every NB201 cell is a valid variant). The config records the
number of draws made (``"draw"``, 0 = the first was accepted).

Reproducibility: every choice of ``generate(family, seed)`` comes from
``numpy.random.default_rng([FAMILIES.index(family), seed])`` (``[index, seed, 1]`` in the extended
space), drawn in a fixed order, never from global state; ``FAMILIES``' order is part of this contract
(append, never reorder). MACs (``FamilyVariant.macs``) are counted on the meta device, with
``search_spaces.onnx_export.count_macs``' convention (conv / linear multiply-adds plus biases).
"""

from __future__ import annotations

from nas_predictor.lazy import lazy_exports
from search_spaces.cnn_families.names import (
    EXTENDED_RESOLUTIONS,
    FAMILIES,
    MAC_WINDOW,
    MODERN_FAMILIES,
    NNLQP_FAMILIES,
    SPACES,
)

__all__ = ["EXTENDED_RESOLUTIONS", "FAMILIES", "MAC_WINDOW", "MODERN_FAMILIES", "NNLQP_FAMILIES", "SPACES", "FamilySpec",
           "FamilyVariant", "base_variant", "family_spec", "generate"]
# the generators import torch: loaded on first use (PEP 562), so the names above cost nothing
_LAZY = {"FamilySpec": "search_spaces.cnn_families.spec", "FamilyVariant": "search_spaces.cnn_families.variants",
         "base_variant": "search_spaces.cnn_families.variants", "family_spec": "search_spaces.cnn_families.variants",
         "generate": "search_spaces.cnn_families.variants", "MAX_DRAWS": "search_spaces.cnn_families.variants"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
