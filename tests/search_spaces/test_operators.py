"""The operator micro-benchmark set: seeded single-operator graphs, and the dataset builder on them."""

import json
import signal

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nas_predictor.errors import ConfigError
from nas_predictor.jsonl import read_jsonl
from nas_predictor.latency.prepare import prepare_model
from nas_predictor.onnx import onnx_to_graph
from search_spaces import operators as ops
from search_spaces.cnn_families import dataset as ds
from tests.search_spaces.test_latency_dataset import FakeMeasurer

SEEDS = range(6)

# The op types each kind's graphs encode to (the union over its first seeds, graph inputs aside): a kind
# that stopped producing one of them, or started producing another, fails here.
EXPECTED_OPS = {
    "conv": {"Conv"}, "conv_grouped": {"Conv"}, "conv_depthwise": {"Conv"}, "gemm": {"Gemm"},
    "linear": {"MatMul", "Add"}, "matmul_batched": {"MatMul"},
    "layernorm": {"LayerNormalization", "Transpose"},
    "groupnorm": {"Reshape", "InstanceNormalization", "Mul", "Add"}, "softmax": {"Softmax"},
    "elementwise": {"Add", "Mul"}, "pooling": {"MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"},
    "resize": {"Resize"}, "concat": {"Concat"}, "split": {"Split", "Slice"},
    "channel_shuffle": {"Reshape", "Transpose"}, "transpose": {"Transpose"},
    "attention": {"Transpose", "MatMul", "Mul", "Softmax"}, "batchnorm": {"BatchNormalization"},
}
ACTIVATION_OPS = {"Relu": {"Relu"}, "ReLU6": {"Clip"}, "Sigmoid": {"Sigmoid"}, "HardSigmoid": {"HardSigmoid"},
                  "HardSwish": {"HardSwish"}, "GELU": {"Div", "Erf", "Add", "Mul"}, "Tanh": {"Tanh"},
                  "SiLU": {"Sigmoid", "Mul"}}


def _session(data: bytes) -> tuple[ort.InferenceSession, dict]:
    prepared = prepare_model(data)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(prepared.model_bytes, options, providers=["CPUExecutionProvider"]), prepared.feeds


@pytest.mark.parametrize("kind", [k for k in ops.KINDS if k != "activation"])
def test_each_kind_is_reproducible_valid_runnable_and_encodes_to_its_ops(kind):
    seen_ops = set()
    for seed in range(40):  # until every op of the kind has appeared (and at least SEEDS)
        if seed >= len(SEEDS) and seen_ops == EXPECTED_OPS[kind]:
            break
        config, data = ops.op_variant(kind, seed)
        assert (config, data) == ops.op_variant(kind, seed)  # same seed, same bytes
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        assert [o.version for o in model.opset_import] == [17]
        assert config["kind"] == kind and config["macs"] >= 0 and 0 < config["bytes"] <= ops.MAX_BYTES
        assert config["macs"] <= ops.MAX_MACS
        json.dumps(config, allow_nan=False)  # plain JSON, every value finite
        graph = onnx_to_graph(data)
        assert graph.scalars["batch_size"] == 1
        seen_ops |= set(graph.ops) - {"Input"}
        if seed < 2:  # runs in onnxruntime, weights filled at random as for any weight-free export
            session, feeds = _session(data)
            outputs = session.run(None, feeds)
            assert all(np.isfinite(o).all() for o in outputs)
    assert seen_ops == EXPECTED_OPS[kind]
    assert len({ops.op_variant(kind, s)[1] for s in SEEDS}) == len(SEEDS)  # seeds differ


def test_activations_cover_every_function_with_its_exported_pattern():
    found = {}
    for seed in range(40):
        config, data = ops.op_variant("activation", seed)
        graph = onnx_to_graph(data)
        found.setdefault(config["op"], set(graph.ops) - {"Input"})
        if len(found) == len(ops.ACTIVATIONS):
            break
    assert found == ACTIVATION_OPS
    gelu = next(s for s in range(40) if ops.op_variant("activation", s)[0]["op"] == "GELU")
    session, feeds = _session(ops.op_variant("activation", gelu)[1])
    (x,), (y,) = feeds.values(), session.run(None, feeds)
    from math import erf
    expect = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))(x.astype(np.float64))
    np.testing.assert_allclose(y, expect, rtol=1e-4, atol=1e-5)


def test_weights_are_inputs_after_the_data_and_shape_tensors_are_constants():
    config, data = ops.op_variant("conv", 1)
    model = onnx.load_from_string(data)
    names = [i.name for i in model.graph.input]
    assert names[0] == "input" and names[1:] == ["conv.weight"] + (["conv.bias"] if config["bias"] else [])
    assert not model.graph.initializer
    prepared = prepare_model(data)
    assert list(prepared.feeds) == ["input"] and prepared.filled_parameters == names[1:]
    assert list(prepared.feeds["input"].shape) == [1, config["in_channels"], config["size"], config["size"]]
    # an op on two activations: both are data, neither is a constant onnxruntime could fold
    seed = next(s for s in range(40) if ops.op_variant("elementwise", s)[0]["broadcast"] == "none")
    assert sorted(prepare_model(ops.op_variant("elementwise", seed)[1]).feeds) == ["input", "input_b"]
    assert sorted(prepare_model(ops.op_variant("attention", 0)[1]).feeds) == ["key", "query", "value"]
    # shuffle's shapes are initializers: shape inference (and the encoder) read them
    model = onnx.load_from_string(ops.op_variant("channel_shuffle", 0)[1])
    assert {t.name for t in model.graph.initializer} == {"grouped", "shape"}


def test_costs_follow_the_shapes_and_caps_hold():
    config, _ = ops.op_variant("conv", 0)
    out = (config["size"] + 2 * config["pad"] - config["dilation"] * (config["kernel"] - 1) - 1) // config["stride"] + 1
    per_output = config["in_channels"] // config["groups"] * config["kernel"] ** 2 + config["bias"]
    assert config["macs"] == config["out_channels"] * out * out * per_output
    weights = config["out_channels"] * (config["in_channels"] * config["kernel"] ** 2 + config["bias"])
    assert config["bytes"] == 4 * (config["in_channels"] * config["size"] ** 2 + weights + config["out_channels"] * out ** 2)
    config, _ = ops.op_variant("attention", 0)
    g, t, d = config["heads"] * config["windows"], config["tokens"], config["head_dim"]
    assert config["macs"] == 2 * g * t * t * d
    # the draw does not depend on the batch; the costs do
    at4, data4 = ops.op_variant("attention", 0, batch=4)
    assert {k: v for k, v in at4.items() if k not in ("macs", "flops", "bytes")} == \
           {k: v for k, v in config.items() if k not in ("macs", "flops", "bytes")}
    assert at4["macs"] == 4 * config["macs"] and onnx_to_graph(data4).scalars["batch_size"] == 4
    # oversized draws were redrawn: some seeds needed more than one draw, none went over the caps
    draws = [ops.op_variant("matmul_batched", s)[0] for s in range(30)]
    assert max(c["draw"] for c in draws) >= 1 and max(c["macs"] for c in draws) <= ops.MAX_MACS


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown operator kind 'conv3d'"):
        ops.op_variant("conv3d", 0)
    for bad, match in (({"seed": -1}, "seed must be an int >= 0"), ({"seed": 1.5}, "seed must be an int"),
                       ({"batch": 0}, "batch must be an int >= 1"), ({"opset": 18}, "built at opset 17")):
        kw = {"seed": 0, **bad}
        with pytest.raises(ValueError, match=match):
            ops.op_variant("conv", kw.pop("seed"), **kw)
    with pytest.raises(ValueError, match="one space, 'ops'"):
        ops.variant_onnx("conv", 0, space="nnlqp")


# --- the dataset builder on operators ------------------------------------------------------------------

KINDS = ("softmax", "conv")


def build_ops(root, per_kind=2, kinds=KINDS, **kw):
    kw.setdefault("measurer", FakeMeasurer())
    return ds.build_dataset(root, kinds, per_kind, generator="operators", subprocess_export=False, progress=False,
                            **kw)


def test_an_operators_build_writes_the_folder_format_and_resumes_without_duplicates(tmp_path):
    dying = FakeMeasurer(die_after=3)
    with pytest.raises(KeyboardInterrupt):
        build_ops(tmp_path, measurer=dying)
    assert len(read_jsonl(tmp_path / ds.LABELS)) == 3
    again = FakeMeasurer()
    report = build_ops(tmp_path, measurer=again)
    assert report.measured == 1 and len(again.measured) == 1 and report.remaining == 0
    labels = read_jsonl(tmp_path / ds.LABELS)
    # round-robin in KINDS order, each (kind, seed) once
    assert [(e["family"], e["seed"]) for e in labels] == [("conv", 0), ("softmax", 0), ("conv", 1), ("softmax", 1)]
    e = labels[1]
    config, data = ops.op_variant("softmax", 0)
    assert e["graph"] == e["label"]["model"] == "onnx/softmax/softmax_ops_00000.onnx"
    assert e["config"] == config and e["macs"] == config["macs"] and e["space"] == "ops"
    assert e["label"]["label_ms"] == pytest.approx(len(data) / 1000.0)  # the measurer saw exactly this graph
    manifest = json.loads((tmp_path / ds.MANIFEST).read_text())
    assert manifest["identity"] == {"space": "ops", "provider": "cpu", "batch": 1, "opset": 17,
                                    "generator": "operators"}
    assert manifest["families"] == ["conv", "softmax"] and manifest["counts"] == {"conv": 2, "softmax": 2}
    assert manifest["export"]["generator"] == "search_spaces.operators:variant_onnx"
    # a second run adds nothing; a bigger one only the new seeds
    none = FakeMeasurer()
    assert build_ops(tmp_path, measurer=none).measured == 0 and none.measured == []
    assert build_ops(tmp_path, per_kind=3).measured == 2
    keys = [(e["family"], e["seed"]) for e in read_jsonl(tmp_path / ds.LABELS)]
    assert len(keys) == len(set(keys)) == 6
    # export regenerates the measured graphs; retest and the trainer's reader work on the folder
    assert ds.export_graphs(tmp_path, "softmax", progress=False) == 3
    assert (tmp_path / "onnx/softmax/softmax_ops_00000.onnx").read_bytes() == data
    summary = ds.retest_dataset(tmp_path, 4, measurer=FakeMeasurer(scale=1.1), subprocess_export=False,
                                progress=False)
    assert summary.models == 4 and summary.median_diff == pytest.approx(0.1)
    records = ds.load_dataset(tmp_path)
    assert [r.key for r in records[:2]] == ["conv/0", "conv/1"] and records[0].space == "ops"
    assert ds.LatencyDataset(tmp_path).generator() is ops.variant_onnx


def test_networks_and_operators_never_share_a_folder(tmp_path):
    build_ops(tmp_path / "ops", per_kind=1)
    with pytest.raises(ConfigError, match=r"holds operators \(2 labels\), not networks; .*another --out folder"):
        ds.build_dataset(tmp_path / "ops", ("nasbench201",), 1, measurer=FakeMeasurer(), subprocess_export=False,
                         progress=False)
    ds.build_dataset(tmp_path / "nets", ("nasbench201",), 1, measurer=FakeMeasurer(), subprocess_export=False,
                     progress=False)
    with pytest.raises(ConfigError, match=r"holds networks \(1 labels\), not operators"):
        build_ops(tmp_path / "nets", per_kind=1)
    with pytest.raises(ConfigError, match="unknown kind resnet18; choose from conv, conv_grouped"):
        build_ops(tmp_path / "x", kinds="conv,resnet18")
    with pytest.raises(ConfigError, match="unknown space 'nnlqp' for operators; choose one of ops"):
        build_ops(tmp_path / "x", space="nnlqp")


def test_cli_refuses_mixing_in_one_line_and_documents_ops(tmp_path, capsys):
    from nas_predictor.cli import main

    build_ops(tmp_path, per_kind=1)
    handler = signal.getsignal(signal.SIGTERM)  # `dataset build` installs its own; give the test runner its back
    try:
        assert main(["dataset", "build", "--families", "nasbench201", "--out", str(tmp_path)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"nas-predictor: error: {tmp_path} holds operators (2 labels), not networks; one folder never mixes "
            "them: use another --out folder"]
        assert main(["dataset", "build", "--ops", "--kinds", "conv,gelu", "--out", str(tmp_path)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"nas-predictor: error: unknown kind gelu; choose from {', '.join(ops.KINDS)} or 'all'"]
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert read_jsonl(tmp_path / ds.LABELS) and len(read_jsonl(tmp_path / ds.LABELS)) == 2  # nothing lost
    assert main(["dataset", "status", str(tmp_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"conv": 1, "softmax": 1} and status["identity"]["generator"] == "operators"
    with pytest.raises(SystemExit):
        main(["dataset", "build", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "--ops" in helptext and "--kinds" in helptext and "--per-kind" in helptext and "channel_shuffle" in helptext
