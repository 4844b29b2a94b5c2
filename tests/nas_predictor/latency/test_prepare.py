import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from nas_predictor.errors import OnnxError
from nas_predictor.latency.errors import MeasurementError
from nas_predictor.latency.prepare import prepare_model

from .conftest import TinyNet


def run(prepared):
    session = ort.InferenceSession(prepared.model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, prepared.feeds)[0]


def test_weight_free_parameters_become_random_initializers(tiny_weight_free):
    source = onnx.load_from_string(tiny_weight_free)
    assert not source.graph.initializer and len(source.graph.input) > 1
    prepared = prepare_model(tiny_weight_free)
    assert prepared.weights_filled and set(prepared.filled_parameters) == {i.name for i in source.graph.input[1:]}
    model = onnx.load_from_string(prepared.model_bytes)
    assert [i.name for i in model.graph.input] == ["input"]  # weights are constants now, not inputs
    assert {t.name for t in model.graph.initializer} == set(prepared.filled_parameters)
    onnx.checker.check_model(model)
    out = run(prepared)
    assert out.shape == (1, 10) and np.isfinite(out).all()  # BN variance filled positive: no NaN
    assert prepared.batch_size == 1 and prepared.opset == 17 and prepared.producer.startswith("pytorch")


def test_weighted_file_is_left_alone(tiny_weighted):
    prepared = prepare_model(tiny_weighted)
    assert not prepared.weights_filled and list(prepared.feeds) == ["input"]


def test_batch_override_sets_the_data_input_and_runs(tiny_weight_free):
    prepared = prepare_model(tiny_weight_free, batch=4)
    assert prepared.batch_size == 4 and prepared.feeds["input"].shape == (4, 3, 16, 16)
    assert run(prepared).shape == (4, 10)
    with pytest.raises(MeasurementError, match="batch size must be >= 1"):
        prepare_model(tiny_weight_free, batch=0)


def test_symbolic_batch_defaults_to_one():
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyNet().eval(), torch.zeros(2, 3, 16, 16), f, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "n"}})
    assert prepare_model(f.getvalue()).batch_size == 1
    assert prepare_model(f.getvalue(), batch=3).feeds["x"].shape == (3, 3, 16, 16)


def _graph(inputs, nodes, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_symbolic_spatial_dims_are_a_clear_error():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", 8])
    model = _graph([x], [helper.make_node("Relu", ["x"], ["y"])])
    with pytest.raises(MeasurementError, match="symbolic dimension.*'h'"):
        prepare_model(model)


def test_non_float_weight_free_parameter_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    model = _graph([x, shape], [helper.make_node("Reshape", ["x", "shape"], ["y"])])
    with pytest.raises(MeasurementError, match="'shape' has type INT64"):
        prepare_model(model)


def test_integer_gather_indices_are_filled_with_zeros_and_run():
    # timm's weight-free exports keep index buffers (EfficientFormer's attention_bias_idxs) as inputs
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 4])
    table = helper.make_tensor_value_info("table", TensorProto.FLOAT, [7, 4])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [5])
    nodes = [helper.make_node("Gather", ["table", "idx"], ["g"]), helper.make_node("Add", ["x", "g"], ["y"])]
    prepared = prepare_model(_graph([x, table, idx], nodes), data_inputs=["x"])
    assert prepared.filled_parameters == ["table", "idx"] and list(prepared.feeds) == ["x"]
    filled = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load_from_string(prepared.model_bytes).graph.initializer}
    assert filled["idx"].dtype == np.int64 and not filled["idx"].any()
    out = ort.InferenceSession(prepared.model_bytes).run(None, prepared.feeds)[0]
    assert out.shape == (1, 5, 4)


def test_named_data_inputs_decide_what_is_a_weight():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 4])
    model = _graph([x, w], [helper.make_node("Add", ["x", "w"], ["y"])])
    assert not prepare_model(model).weights_filled  # an Add operand may be data: both stay inputs
    named = prepare_model(model, data_inputs=["x"])
    assert named.filled_parameters == ["w"] and list(named.feeds) == ["x"]
    with pytest.raises(MeasurementError, match="not graph inputs"):
        prepare_model(model, data_inputs=["z"])


def test_not_onnx_is_an_onnx_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe")
    with pytest.raises(OnnxError, match="bad.onnx"):
        prepare_model(bad)
    with pytest.raises(OnnxError, match="no such ONNX file"):
        prepare_model(tmp_path / "missing.onnx")
