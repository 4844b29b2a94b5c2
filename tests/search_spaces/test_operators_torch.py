"""The torch modules of the operator micro-benchmark set: the same operator as the ONNX graph of a config."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nas_predictor.errors import ConfigError
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


# --- the dataset builder with provider torch-cuda (the CUDA timer replaced: CI has no GPU) ----------------

class FakeTorchTimer:
    """Runs each module once on the CPU on an input of the given shape (it must accept it) and labels it
    with its number of parameter and buffer elements / 1e4 ms; fails the calls whose number is in ``fail``."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, module, input_shape, *, name=None):
        from nas_predictor.latency import MeasurementError
        from tests.search_spaces.test_latency_dataset import fake_label

        index = len(self.calls)
        self.calls.append((name, list(input_shape)))
        if index in self.fail:
            raise MeasurementError("CUDA graph capture failed")
        with torch.no_grad():
            module.eval()(torch.randn(*input_shape))
        size = sum(t.numel() for t in [*module.parameters(), *module.buffers()])
        label = fake_label(1.0 + size / 1e4)
        label.provider, label.model = "torch-cuda", name
        return label


def test_an_operators_build_with_torch_cuda_times_the_torch_module_of_each_graph(tmp_path):
    from nas_predictor.jsonl import read_jsonl
    from search_spaces.cnn_families import dataset as ds

    timer = FakeTorchTimer(fail={1})
    report = ds.build_dataset(tmp_path, "conv_depthwise,attention", 2, provider="torch-cuda", generator="operators",
                              progress=False, torch_timer=timer)
    assert report.measured == 3 and report.failed == 1 and report.remaining == 0
    labels = read_jsonl(tmp_path / ds.LABELS)
    assert [(e["family"], e["seed"]) for e in labels] == [("conv_depthwise", 0), ("conv_depthwise", 1),
                                                          ("attention", 1)]
    failure = read_jsonl(tmp_path / ds.FAILURES)[0]
    assert (failure["family"], failure["seed"], failure["stage"]) == ("attention", 0, "measure")
    assert failure["error"] == "MeasurementError: CUDA graph capture failed"
    for e, (name, shape) in zip(labels, [timer.calls[0], timer.calls[2], timer.calls[3]]):
        config, _ = ops.op_variant(e["family"], e["seed"])
        assert e["config"] == config and e["input_shape"] == shape  # the graph's operator, at its input shape
        assert name == e["graph"] == f"onnx/{e['family']}/{e['family']}_ops_{e['seed']:05d}.onnx"
        module, _ = opt.timing_module(e["family"], config)
        size = sum(t.numel() for t in [*module.parameters(), *module.buffers()])
        assert e["label"]["label_ms"] == pytest.approx(1.0 + size / 1e4) and e["label"]["provider"] == "torch-cuda"
    manifest = ds.LatencyDataset(tmp_path).manifest
    assert manifest["identity"] == {"space": "ops", "provider": "torch-cuda", "batch": 1, "opset": 17,
                                    "generator": "operators"}
    assert manifest["export"]["generator"] == "search_spaces.operators:variant_onnx"  # training reads the ONNX
    # resumable: a rerun times nothing again, a bigger one only the new seeds
    again = FakeTorchTimer()
    assert ds.build_dataset(tmp_path, "conv_depthwise,attention", 2, provider="torch-cuda", generator="operators",
                            progress=False, torch_timer=again).measured == 0 and again.calls == []
    assert ds.build_dataset(tmp_path, "conv_depthwise,attention", 3, provider="torch-cuda", generator="operators",
                            progress=False, torch_timer=again).measured == 2
    assert [c[0] for c in again.calls] == ["onnx/conv_depthwise/conv_depthwise_ops_00002.onnx",
                                           "onnx/attention/attention_ops_00002.onnx"]
    # a CPU folder of the same operators is another setting
    with pytest.raises(ConfigError, match=r"holds labels of another setting: provider 'torch-cuda' \(asked 'cpu'\)"):
        ds.build_dataset(tmp_path, "attention", 3, generator="operators", progress=False, subprocess_export=False,
                         measurer=object())


def test_a_networks_build_with_torch_cuda_times_the_family_module_without_exporting(tmp_path, monkeypatch):
    from nas_predictor.jsonl import read_jsonl
    from search_spaces.cnn_families import dataset as ds, generate

    def no_export(*args, **kwargs):
        raise AssertionError("a torch-cuda build exported an ONNX graph it does not time")

    monkeypatch.setattr(ds, "export_onnx", no_export)
    timer = FakeTorchTimer()
    report = ds.build_dataset(tmp_path, "nasbench201", 2, provider="torch-cuda", space="extended", batch=2,
                              progress=False, torch_timer=timer)
    assert report.measured == 2
    labels = read_jsonl(tmp_path / ds.LABELS)
    variant = generate("nasbench201", 1, space="extended")
    assert labels[1]["config"] == variant.as_dict()["config"] and labels[1]["input_shape"] == [2, 3, 32, 32]
    assert timer.calls[1] == ("onnx/nasbench201/nasbench201_extended_00001.onnx", [2, 3, 32, 32])


def test_torch_cuda_without_a_gpu_or_a_timer_is_refused_before_anything_runs(tmp_path, monkeypatch):
    from nas_predictor.latency import ProviderUnavailableError
    from search_spaces.cnn_families import dataset as ds

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as in CI, also on a GPU machine
    with pytest.raises(ProviderUnavailableError, match="provider 'torch-cuda' needs a CUDA GPU"):
        ds.build_dataset(tmp_path, "conv", 1, provider="torch-cuda", generator="operators", progress=False)
    assert not (tmp_path / ds.LABELS).exists()
