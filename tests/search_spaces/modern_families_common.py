"""What the modern-family tests (test_modern_families_attention / _conv) share: cached variants, graph look-ups, checks."""

import functools
import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort

from nas_predictor.latency.prepare import prepare_model
from nas_predictor.onnx import onnx_to_graph
from search_spaces.cnn_families import family_spec, generate
from search_spaces.cnn_families.blocks import meta_params
from search_spaces.cnn_families.dataset import variant_onnx

SPACES = ("nnlqp", "extended")
ARTEFACTS = {"Constant", "Identity"}  # exporter artefacts, left out of the op types compared


# draws and exports are cached: several tests look at the same variants and an export takes ~1 s
@functools.lru_cache(maxsize=None)
def generated(family, seed, space):
    return generate(family, seed, space=space)


@functools.lru_cache(maxsize=None)
def extended_onnx(family, seed):
    """``variant_onnx`` of the extended-space draw: (info, ONNX bytes)."""
    return variant_onnx(family, seed, space="extended")


def producers_of(model):
    return {o: n for n in model.graph.node for o in n.output}


def input_names(model):
    return {i.name for i in model.graph.input}


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def op_types(model):
    return {n.op_type for n in model.graph.node} - ARTEFACTS


def check_reproducible_and_seeds_differ(family, onnx_seed):
    """Seeds 0-2 of both spaces: JSON configs, all different, seed 0 drawn again equal; the export of
    ``onnx_seed``'s extended draw repeated gives the same info and bytes."""
    for space in SPACES:
        variants = [generated(family, s, space) for s in range(3)]
        assert generate(family, 0, space=space) == variants[0]
        assert json.loads(json.dumps(variants[0].config)) == variants[0].config
        assert len({json.dumps(v.config, sort_keys=True) for v in variants}) == 3
    info, data = extended_onnx(family, onnx_seed)
    again_info, again = variant_onnx(family, onnx_seed, space="extended")
    assert info == again_info and data == again


def check_parameters_within(family, low, high, macs=None):
    """Seeds 0-7 of both spaces have ``low`` to ``high`` parameters (and, given ``macs`` = (low, high), MACs
    within it)."""
    spec = family_spec(family)
    for space in SPACES:
        for seed in range(8):
            variant = generated(family, seed, space)
            config = variant.config
            params = meta_params(lambda: spec.build(config, config["resolution"], spec.num_classes))
            assert low <= params <= high, (space, seed, params)
            if macs is not None:
                assert macs[0] <= variant.macs <= macs[1]


def check_runs_and_encodes(data, macs, input_shape=None):
    """The ONNX ``data`` runs in onnxruntime (1000 finite logits; its input of ``input_shape`` when given)
    and encodes without a warning, counting at least 90% of 2 x ``macs`` FLOPs; returns the encoded graph."""
    prepared = prepare_model(data)
    if input_shape is not None:
        assert prepared.feeds["input"].shape == input_shape
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(prepared.model_bytes, options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, prepared.feeds)
    assert out.shape == (1, 1000) and np.isfinite(out).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = onnx_to_graph(data)
    assert graph.scalars["flops"] > 2 * macs * 0.9  # Conv / Gemm / MatMul MACs all counted
    return graph
