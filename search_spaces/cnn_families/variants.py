"""The family generators (the package docstring, search_spaces.cnn_families, tells what they draw): each
family's spec, ``generate`` and ``base_variant``."""

from __future__ import annotations

import copy
import functools
import importlib
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from search_spaces.cnn_families import classic, googlenet, mobile, names, nasbench201, resnet
from search_spaces.cnn_families.blocks import choice, meta_macs
from search_spaces.cnn_families.spec import FamilySpec
from search_spaces.cnn_families.spec import network as _network

MAX_DRAWS = 1000

_SPECS: dict[str, FamilySpec] = {spec.name: spec for spec in (
    FamilySpec("alexnet", classic.alexnet_base, classic.alexnet_sample, _network(classic.AlexNet), min_resolution=64),
    FamilySpec("efficientb0", mobile.efficientnet_base, mobile.efficientnet_sample, mobile.efficientnet_build),
    FamilySpec("googlenet", googlenet.base, googlenet.sample, _network(googlenet.GoogLeNet)),
    FamilySpec("mnasnet", mobile.mnasnet_base, mobile.mnasnet_sample, mobile.mnasnet_build),
    FamilySpec("mobilenetv2", mobile.mobilenetv2_base, mobile.mobilenetv2_sample, mobile.mobilenetv2_build),
    FamilySpec("mobilenetv3", mobile.mobilenetv3_base, mobile.mobilenetv3_sample, mobile.mobilenetv3_build),
    FamilySpec("nasbench201", nasbench201.base, nasbench201.sample, nasbench201.build, resolution=32,
               min_resolution=8, num_classes=10, windowed=False, varies_resolution=False),
    FamilySpec("resnet18", resnet.base, resnet.sample, _network(resnet.ResNet)),
    FamilySpec("squeezenet", classic.squeezenet_base, classic.squeezenet_sample, _network(classic.SqueezeNet)),
    FamilySpec("vgg16", classic.vgg16_base, classic.vgg16_sample, _network(classic.VGG)),
)}
assert tuple(sorted(_SPECS)) == names.NNLQP_FAMILIES


def _spec(family: str) -> FamilySpec:
    """The family's spec; a modern family's module is imported the first time it is asked for."""
    spec = _SPECS.get(family)
    if spec is None and family in names.MODERN_FAMILIES:
        spec = importlib.import_module(f"search_spaces.cnn_families.{family}").SPEC
        if not isinstance(spec, FamilySpec) or spec.name != family:
            raise TypeError(f"search_spaces.cnn_families.{family}.SPEC must be the FamilySpec of {family!r}")
        _SPECS[family] = spec
    return spec


@dataclass(frozen=True)
class FamilyVariant:
    """One network of a family: every choice in ``config`` (JSON-serialisable), its input and its MACs."""

    family: str
    seed: int | None  # None for the base network
    config: dict
    input_shape: tuple[int, int, int, int]
    macs: int

    @property
    def num_classes(self) -> int:
        return _spec(self.family).num_classes

    def build(self) -> nn.Module:
        """A fresh module (default init, eval mode); its output has shape (batch, num_classes)."""
        spec = _spec(self.family)
        return spec.build(self.config, self.config["resolution"], spec.num_classes).eval()

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "seed": self.seed, "config": copy.deepcopy(self.config),
                "input_shape": list(self.input_shape), "macs": self.macs}


def family_spec(family: str) -> FamilySpec:
    if family not in names.FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(names.FAMILIES)}")
    return _spec(family)


def _shape(resolution: int) -> tuple[int, int, int, int]:
    return (1, 3, int(resolution), int(resolution))


def _macs(spec: FamilySpec, config: dict, resolution: int) -> int:
    return meta_macs(lambda: spec.build(config, resolution, spec.num_classes), _shape(resolution))


def _check_resolution(spec: FamilySpec, resolution: Any) -> int:
    if isinstance(resolution, (bool, np.bool_)):
        raise ValueError(f"resolution must be an int, got {resolution!r}")
    try:
        r = operator.index(resolution)
    except TypeError:
        raise ValueError(f"resolution must be an int, got {resolution!r}") from None
    if r < spec.min_resolution:
        raise ValueError(f"{spec.name} needs a resolution of at least {spec.min_resolution}, got {r}")
    return r


@functools.lru_cache(maxsize=None)
def _base_macs(family: str) -> int:
    spec = _spec(family)
    return _macs(spec, spec.base(), spec.resolution)


def base_variant(family: str, resolution: int | None = None) -> FamilyVariant:
    """The unmodified base network (torchvision's layout; e.g. ResNet-18 at 224, NB201 C16 N5 at 32)."""
    spec = family_spec(family)
    r = spec.resolution if resolution is None else _check_resolution(spec, resolution)
    config = {"space": "base", "resolution": r, **spec.base(), "draw": 0}
    return FamilyVariant(family, None, config, _shape(r), _macs(spec, config, r))


def generate(family: str, seed: int, *, space: str = "nnlqp", resolution: int | None = None) -> FamilyVariant:
    """Variant ``seed`` (>= 0) of ``family``, exactly reproducible from (family, seed, space).

    ``resolution`` overrides the input size after the draw (the architecture stays the one drawn, the
    MAC window is judged at the drawn resolution), e.g. to export small test graphs.
    """
    spec = family_spec(family)
    if space not in names.SPACES:
        raise ValueError(f"unknown space {space!r}; choose one of {', '.join(names.SPACES)}")
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}") from None
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    override = None if resolution is None else _check_resolution(spec, resolution)
    extended = space == "extended"
    rng = np.random.default_rng([names.FAMILIES.index(family), seed] + ([1] if extended else []))
    window = spec.mac_window or names.MAC_WINDOW
    low, high = (window[0] * _base_macs(family), window[1] * _base_macs(family)) if spec.windowed else (0, np.inf)
    for draw in range(MAX_DRAWS):
        body = spec.sample(rng, extended)
        r = choice(rng, names.EXTENDED_RESOLUTIONS) if extended and spec.varies_resolution else spec.resolution
        config = {"space": space, "resolution": r, **body, "draw": draw}
        macs = _macs(spec, config, r)
        if low <= macs <= high:
            break
    else:  # pragma: no cover - the windows accept most draws
        raise RuntimeError(f"{family} seed {seed}: no draw within {window} x base MACs in {MAX_DRAWS} tries")
    if override is not None and override != r:
        config["resolution"] = override
        macs = _macs(spec, config, override)
    return FamilyVariant(family, seed, config, _shape(config["resolution"]), macs)
