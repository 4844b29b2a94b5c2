"""The NNLQP family generators: base networks vs torchvision, MACs vs published figures, reproducibility, export."""

import functools
import json
import warnings

import numpy as np
import onnx
import pytest
import torch

from nas_predictor.network_encoding import ALIASES, EXTRA_OPS, INPUT_OP, REFERENCE_OPS
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.costs import numel
from search_spaces.cnn_families import (
    EXTENDED_RESOLUTIONS,
    FAMILIES,
    MAC_WINDOW,
    base_variant,
    family_spec,
    generate,
)
from search_spaces.cnn_families import mobile
from search_spaces.cnn_families.blocks import meta_params
from search_spaces.onnx_export import count_macs, export_onnx

# torchvision's parameter counts (weights tables); NNLQP's families are squeezenet 1.0 (nn-Meter's
# generator has the 96-channel 7x7 stem and 3 / 4 / 1 fires) and MobileNetV3-Small (spring_mobilenet_v3_small)
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "vgg16": 138_357_544, "alexnet": 61_100_840, "squeezenet": 1_248_424,
    "googlenet": 6_624_904, "mobilenetv2": 3_504_872, "mobilenetv3": 2_542_856, "mnasnet": 4_383_312,
    "efficientb0": 5_288_548,
}
MOBILENET_V3_LARGE_PARAMS = 5_483_032
# published GMACs at 224 (shared/docs/latency-measurement.md; torchvision's "GFLOPS" are these MACs)
PUBLISHED_GMACS = {"resnet18": 1.814, "vgg16": 15.47, "mobilenetv2": 0.301, "efficientb0": 0.386}
KNOWN_OPS = set(REFERENCE_OPS) | set(EXTRA_OPS) | set(ALIASES) | {INPUT_OP}


def _params(variant):
    spec = family_spec(variant.family)
    return meta_params(lambda: spec.build(variant.config, variant.config["resolution"], spec.num_classes))


@pytest.mark.parametrize("family", sorted(TORCHVISION_PARAMS))
def test_base_networks_have_torchvision_parameter_counts(family):
    assert _params(base_variant(family)) == TORCHVISION_PARAMS[family]


def test_mobilenet_v3_large_table_matches_torchvision():
    config = mobile.mobilenetv3_base("large")
    assert meta_params(lambda: mobile.mobilenetv3_build(config, 224, 1000)) == MOBILENET_V3_LARGE_PARAMS


def test_base_macs_match_published_figures():
    for family, gmacs in PUBLISHED_GMACS.items():
        variant = base_variant(family)
        assert variant.input_shape == (1, 3, 224, 224)
        assert variant.macs / 1e9 == pytest.approx(gmacs, rel=5e-3), family


def _conv_gemm_macs(graph):
    """MACs (+1 per output of a biased layer) from the cost model's Conv / Gemm FLOPs = out * (2K - 1 + bias)."""
    total = 0.0
    for op, attrs, shape in zip(graph.ops, graph.attrs, graph.shapes):
        if op in ("Conv", "Gemm"):
            bias = attrs.get("bias", 0)
            total += (attrs["flops"] + numel(shape) * (1 + bias)) / 2
    return total


@pytest.mark.parametrize("family", ["resnet18", "mobilenetv2", "efficientb0"])
def test_onnx_cost_model_reproduces_published_macs(family):
    # The cost model counts FLOPs (a multiply-add is 2) of every op; its Conv / Gemm part is exactly our
    # MACs, and its total / 2 adds BN, activations, pools and adds (0.2 % for ResNet-18, ~3 % for the
    # depthwise nets). VGG-16 (15.5 GMACs, a 10 s trace on one thread) is covered by the meta count above.
    variant = base_variant(family)
    spec = family_spec(family)
    with torch.device("meta"):
        module = spec.build(variant.config, 224, spec.num_classes)
    module = module.to_empty(device="cpu")  # structure only: the weight-free export ignores the values
    graph = onnx_to_graph(export_onnx(module, variant.input_shape))
    assert _conv_gemm_macs(graph) == pytest.approx(variant.macs, rel=1e-9)
    assert graph.scalars["flops"] / 2e9 == pytest.approx(PUBLISHED_GMACS[family], rel=0.04)


def test_meta_mac_count_matches_the_forward_hook_count():
    for family, seed in (("googlenet", 3), ("mobilenetv3", 1), ("nasbench201", 2)):
        variant = generate(family, seed, resolution=64 if family != "nasbench201" else None)
        assert variant.macs == count_macs(variant.build(), variant.input_shape)


@functools.lru_cache(maxsize=None)
def _generated(family, seed, space="nnlqp"):
    return generate(family, seed, space=space)


@pytest.mark.parametrize("space", ["nnlqp", "extended"])
def test_generation_is_reproducible_and_seeds_differ(space):
    for family in FAMILIES:
        again = generate(family, 0, space=space)
        variants = [_generated(family, s, space) for s in range(5)]
        assert again == variants[0] and json.loads(json.dumps(again.config)) == again.config
        assert len({json.dumps(v.config, sort_keys=True) for v in variants}) == 5, family
        spec = family_spec(family)
        if spec.windowed:
            low, high = spec.mac_window or MAC_WINDOW
            base = base_variant(family).macs
            assert all(low * base <= v.macs <= high * base for v in variants), family


def test_same_seed_same_state_dict_shapes():
    for family in ("resnet18", "mobilenetv2", "squeezenet", "nasbench201"):
        a, b = (generate(family, 11, resolution=64 if family != "nasbench201" else None).build() for _ in range(2))
        assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_nnlqp_space_keeps_depth_and_resolution_extended_varies_them():
    for family in FAMILIES:
        variants = [_generated(family, s) for s in range(5)]
        resolution = family_spec(family).resolution
        assert {v.input_shape for v in variants} == {(1, 3, resolution, resolution)}
        assert {v.config["resolution"] for v in variants} == {resolution}
    base_depths = [len(stage["kernels"]) for stage in base_variant("resnet18").config["stages"]]
    assert all([len(st["kernels"]) for st in _generated("resnet18", s).config["stages"]] == base_depths
               for s in range(5))
    extended = [_generated("resnet18", s, "extended").config for s in range(5)]
    assert len({c["resolution"] for c in extended}) > 1 and {c["resolution"] for c in extended} <= set(EXTENDED_RESOLUTIONS)
    assert len({tuple(len(st["kernels"]) for st in c["stages"]) for c in extended}) > 1
    assert {_generated("nasbench201", s, "extended").config["resolution"] for s in range(5)} == {32}


def test_resolution_override_changes_only_the_input():
    full, small = generate("alexnet", 5), generate("alexnet", 5, resolution=64)
    assert small.input_shape == (1, 3, 64, 64) and small.macs < full.macs
    assert {**small.config, "resolution": 224} == full.config


def _export_checked(variant):
    module = variant.build()
    assert not module.training
    with torch.no_grad():
        assert tuple(module(torch.zeros(variant.input_shape)).shape) == (1, variant.num_classes)
    data = export_onnx(module, variant.input_shape)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert not model.graph.initializer  # weight-free
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = onnx_to_graph(data)
    assert set(graph.ops) <= KNOWN_OPS, set(graph.ops) - KNOWN_OPS
    return graph


@pytest.mark.parametrize("family", FAMILIES)
def test_variants_export_to_weight_free_onnx(family):
    # small inputs keep the traces fast (nasbench201 runs at its native 32x32); every family supports them
    resolution = {"nasbench201": None, "vgg16": 32}.get(family, 64)
    for seed in range(3):
        graph = _export_checked(generate(family, seed, resolution=resolution))
        assert graph.scalars["flops"] > 0


def test_base_and_extended_variants_export():
    _export_checked(base_variant("resnet18", resolution=64))
    _export_checked(generate("mobilenetv3", 0, space="extended", resolution=64))
    _export_checked(generate("squeezenet", 0, space="extended", resolution=64))


def test_errors():
    with pytest.raises(ValueError, match="alexnet.*vgg16"):
        generate("resnet50", 0)
    with pytest.raises(ValueError, match="unknown family"):
        base_variant("mobilenet_v3_small")
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed"):
            generate("resnet18", bad)
    with pytest.raises(ValueError, match="space"):
        generate("resnet18", 0, space="nnmeter")
    with pytest.raises(ValueError, match="at least 64"):
        generate("alexnet", 0, resolution=48)
    assert generate("resnet18", np.int64(3)) == generate("resnet18", 3)
