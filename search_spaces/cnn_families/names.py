"""The names of the network families and their variant spaces, in a module that imports nothing heavy, so
``nas-predictor dataset --help`` lists them without importing torch (search_spaces.cnn_families.variants
builds the networks)."""

from __future__ import annotations

NNLQP_FAMILIES: tuple[str, ...] = ("alexnet", "efficientb0", "googlenet", "mnasnet", "mobilenetv2", "mobilenetv3",
                                   "nasbench201", "resnet18", "squeezenet", "vgg16")
# The modern families (issue 27): transformers, windowed attention, MLPs, MetaFormers, hybrids and the CNN
# designs NNLQP lacks. Each lives in the module of its name, which defines ``SPEC`` (a FamilySpec); they are
# imported on first use, so the NNLQP families never pay for (or depend on) them.
MODERN_FAMILIES: tuple[str, ...] = ("vit", "swin", "convnext", "mixer", "poolformer", "mobilevit", "regnet",
                                    "densenet", "shufflenet", "ghostnet", "hrnet")
FAMILIES: tuple[str, ...] = NNLQP_FAMILIES + MODERN_FAMILIES
SPACES = ("nnlqp", "extended")
EXTENDED_RESOLUTIONS = tuple(range(160, 257, 16))
MAC_WINDOW = (0.2, 3.0)  # accepted MACs, relative to the family's base network
