"""The torch modules of the operator micro-benchmark set: the same operator as the ONNX graph of a config."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nas_predictor.latency.prepare import prepare_model
from search_spaces import operators as ops
from search_spaces import operators_torch as opt

# Weight-free graph inputs by name -> (module attribute, how the ONNX layout maps to torch's)
WEIGHTS = {"conv.weight": ("weight", None), "conv.bias": ("bias", None), "fc.weight": ("weight", None),
           "fc.bias": ("bias", None), "linear.weight": ("weight", "t"), "linear.bias": ("bias", None),
           "norm.weight": ("weight", "flat"), "norm.bias": ("bias", "flat"), "scale.weight": ("weight", None),
           "bn.weight": ("weight", None), "bn.bias": ("bias", None), "bn.running_mean": ("running_mean", None),
           "bn.running_var": ("running_var", "abs")}
SEEDS_PER_KIND = 8


def _onnx_run(data: bytes) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
    """Outputs, the data inputs in graph order, and the weights onnxruntime ran with."""
    prepared = prepare_model(data)
    model = onnx.load_from_string(prepared.model_bytes)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name in WEIGHTS}
    if "bn.running_var" in weights:  # a variance is >= 0 in any real network; torch and ORT then agree
        weights["bn.running_var"] = np.abs(weights["bn.running_var"]) + 0.5
        model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == "bn.running_var"))
        model.graph.initializer.append(onnx.numpy_helper.from_array(weights["bn.running_var"], "bn.running_var"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    data_inputs = [prepared.feeds[i.name] for i in session.get_inputs()]
    return session.run(None, prepared.feeds), data_inputs, weights


def _load_weights(module: torch.nn.Module, weights: dict[str, np.ndarray]) -> None:
    for name, value in weights.items():
        attr, how = WEIGHTS[name]
        tensor = torch.from_numpy(value.copy())
        tensor = tensor.t() if how == "t" else tensor.reshape(-1) if how == "flat" else tensor
        target = getattr(module, attr)
        assert tuple(target.shape) == tuple(tensor.shape), name
        with torch.no_grad():
            target.copy_(tensor)


@pytest.mark.parametrize("kind", ops.KINDS)
def test_each_kind_computes_what_its_onnx_graph_computes(kind):
    """Same output shapes and values as the ONNX graph under onnxruntime, on the graph's inputs and weights:
    the torch label of (kind, seed) times the operator the predictor sees."""
    seen = set()
    for seed in range(SEEDS_PER_KIND):
        config, data = ops.op_variant(kind, seed)
        module, inputs = opt.op_module(kind, config)
        expected, feeds, weights = _onnx_run(data)
        assert [tuple(x.shape) for x in inputs] == [f.shape for f in feeds]
        _load_weights(module, weights)
        with torch.no_grad():
            out = module(*(torch.from_numpy(f) for f in feeds))
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        assert [tuple(o.shape) for o in outs] == [e.shape for e in expected], (kind, seed, config)
        for o, e in zip(outs, expected):
            np.testing.assert_allclose(o.numpy(), e, rtol=2e-3, atol=2e-3 * max(1.0, float(np.abs(e).max())),
                                       err_msg=f"{kind} seed {seed}: {config}")
        seen.add(config.get("op") or config.get("case") or config.get("layout") or config.get("mode"))
    assert seen  # the seeds drew this kind's configs (each kind's variety is tested in test_operators.py)


def test_activations_and_pooling_cover_every_op():
    for kind, options in (("activation", ops.ACTIVATIONS),
                          ("pooling", ("MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"))):
        found = set()
        for seed in range(60):
            config, data = ops.op_variant(kind, seed)
            if config["op"] in found:
                continue
            found.add(config["op"])
            module, inputs = opt.op_module(kind, config)
            expected, feeds, _ = _onnx_run(data)
            with torch.no_grad():
                out = module(*(torch.from_numpy(f) for f in feeds))
            assert tuple(out.shape) == expected[0].shape
            np.testing.assert_allclose(out.numpy(), expected[0], rtol=2e-3, atol=2e-3, err_msg=config["op"])
        assert found == set(options)


def test_timing_module_takes_the_first_input_only_and_moves_its_extras():
    config, _ = ops.op_variant("attention", 0)
    module, inputs = opt.op_module("attention", config, batch=2, seed=3)
    timed, shape = opt.timing_module("attention", config, batch=2, seed=3)
    assert shape == list(inputs[0].shape) and shape[0] == 2
    assert [name for name, _ in timed.named_buffers()] == ["extra0", "extra1"]
    with torch.no_grad():
        torch.testing.assert_close(timed(inputs[0]), module(*inputs))
    assert all(b.dtype == torch.float32 for b in timed.buffers())


def test_variant_torch_matches_the_graph_the_builder_labels():
    info, module = opt.variant_torch("conv_grouped", 4, batch=3)
    onnx_info, _ = ops.variant_onnx("conv_grouped", 4, batch=3)
    assert info == onnx_info and info["input_shape"][0] == 3
    with torch.no_grad():
        out = module(torch.randn(info["input_shape"]))
    assert out.shape[0] == 3 and out.shape[1] == info["config"]["out_channels"]


def test_bad_arguments_say_what_is_wrong():
    config, _ = ops.op_variant("conv", 0)
    with pytest.raises(ValueError, match="unknown operator kind 'gelu'; choose one of conv, conv_grouped"):
        opt.op_module("gelu", config)
    with pytest.raises(ValueError, match="batch must be an int >= 1, got 0"):
        opt.op_module("conv", config, batch=0)
    with pytest.raises(ValueError, match=r"softmax config lacks 'layout': not a config operators.op_variant"):
        opt.op_module("softmax", config)
