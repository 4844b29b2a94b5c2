import io
import warnings

import numpy as np
import pytest
import torch
import onnx
from onnx import TensorProto, helper

from nas_predictor.errors import OnnxError
from nas_predictor.onnx import onnx_to_graph


class Tiny(torch.nn.Module):
    """Conv-BN-ReLU, a residual Add, pooling and a Linear: the ops every CNN family uses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = y + self.conv2(y)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


def export(model, shape=(1, 3, 32, 32), opset=17, **kwargs) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(*shape), f, opset_version=opset, dynamo=False, **kwargs)
    return f.getvalue()


def test_same_graph_at_opsets_11_13_17():
    graphs = [onnx_to_graph(export(Tiny(), opset=o, do_constant_folding=False)) for o in (11, 13, 17)]
    for g in graphs[1:]:
        assert g.ops == graphs[0].ops and g.edges == graphs[0].edges and g.shapes == graphs[0].shapes
        assert g.scalars == graphs[0].scalars and g.attrs == graphs[0].attrs
    g = graphs[0]
    assert g.ops == ("Input", "Conv", "BatchNormalization", "Relu", "Conv", "Add", "GlobalAveragePool",
                     "Flatten", "Gemm")
    assert g.attrs[1]["kernel"] == [3, 3] and g.attrs[1]["stride"] == [2, 2] and g.attrs[1]["pad"] == [1, 1, 1, 1]
    assert g.attrs[1]["bias"] == 0 and g.attrs[4]["group"] == 8 and g.attrs[4]["bias"] == 1
    assert g.shapes[0] == (1, 3, 32, 32) and g.shapes[-1] == (1, 10)
    # the residual Add has two inputs: Relu and the second Conv
    add = g.ops.index("Add")
    assert sorted(s for s, d in g.edges if d == add) == [3, 4]


def test_weight_free_file_matches_the_file_with_weights():
    with_weights = onnx_to_graph(export(Tiny(), do_constant_folding=False))
    weight_free = onnx_to_graph(export(Tiny(), do_constant_folding=False, export_params=False), batch_size=1)
    assert weight_free.ops == with_weights.ops and weight_free.edges == with_weights.edges
    assert weight_free.shapes == with_weights.shapes and weight_free.scalars == with_weights.scalars


def test_hand_computed_flops_params_for_conv_and_gemm():
    conv = torch.nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=True)
    g = onnx_to_graph(export(torch.nn.Sequential(conv), shape=(2, 3, 8, 8)))
    # per output element: 3*3*3 multiplies, 26 adds, one bias add = 54 FLOPs; 2*16*8*8 outputs
    assert g.scalars["flops"] == 2 * 16 * 8 * 8 * 54
    assert g.scalars["params"] == 16 * 3 * 3 * 3 + 16
    gemm = onnx_to_graph(export(torch.nn.Sequential(torch.nn.Linear(20, 5)), shape=(4, 20)))
    assert gemm.ops == ("Input", "Gemm")
    assert gemm.scalars["flops"] == 4 * 5 * (2 * 20 - 1 + 1)
    assert gemm.scalars["params"] == 20 * 5 + 5
    # memory access: input + output elements + params
    assert gemm.scalars["memory_access"] == 4 * 20 + 4 * 5 + 105


def test_batch_override_sets_every_shape():
    g = onnx_to_graph(export(Tiny()), batch_size=8)
    assert g.scalars["batch_size"] == 8
    assert all(s[0] == 8 for s in g.shapes)
    one = onnx_to_graph(export(Tiny()), batch_size=1)
    assert g.scalars["flops"] == pytest.approx(8 * one.scalars["flops"])


def test_matmul_and_transformer_ops_are_recognised():
    class Attention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = torch.nn.Linear(16, 48)
            self.norm = torch.nn.LayerNorm(16)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 16))

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            y = torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1) @ v
            y = self.norm(x + y)
            return y + self.mlp(y)

    data = export(Attention(), shape=(1, 5, 16), opset=17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every shape is known once the chunk's shape subgraph is folded
        g = onnx_to_graph(data)
    assert all(0 not in s for s in g.shapes)
    for op in ("MatMul", "Softmax", "LayerNormalization", "Erf", "Transpose"):
        assert op in g.ops, op
    matmuls = [a["flops"] for op, a in zip(g.ops, g.attrs) if op == "MatMul"]
    assert all(f > 0 for f in matmuls)


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_an_op_nobody_can_size_is_an_error_naming_it():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["h"]),
             helper.make_node("FancyOp", ["h"], ["y"], domain="my.ops", name="fancy")]
    model = _model(nodes, [x], [y])
    model.opset_import.append(helper.make_opsetid("my.ops", 1))
    with pytest.raises(OnnxError, match=r"cannot size tensor 'y' made by FancyOp node 'fancy' \(op 'FancyOp' "
                                        r"\(domain 'my.ops'\) is not a known ONNX op\), and onnxruntime cannot run"):
        onnx_to_graph(model)


def test_corrupt_and_non_onnx_files_are_clear_errors(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00\x01garbage that is not protobuf\xff" * 10)
    with pytest.raises(OnnxError, match="model.onnx.*not a valid ONNX model|model.onnx.*no nodes"):
        onnx_to_graph(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(OnnxError, match="empty"):
        onnx_to_graph(empty)
    text = tmp_path / "notes.onnx"
    text.write_text("name: resnet\nlayers: 50\n")
    with pytest.raises(OnnxError, match="notes.onnx"):
        onnx_to_graph(text)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(export(Tiny())[:200])
    with pytest.raises(OnnxError, match="truncated.onnx"):
        onnx_to_graph(truncated)
    with pytest.raises(OnnxError, match="no such ONNX file"):
        onnx_to_graph(tmp_path / "missing.onnx")


def test_identity_is_skipped_and_constants_become_inputs():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    c = helper.make_tensor("c", TensorProto.FLOAT, [3], np.ones(3, dtype=np.float32))
    nodes = [helper.make_node("Identity", ["x"], ["xi"]), helper.make_node("Add", ["xi", "c"], ["s"]),
             helper.make_node("Constant", [], ["k"], value=helper.make_tensor("kv", TensorProto.FLOAT, [], [2.0])),
             helper.make_node("Mul", ["s", "k"], ["y"])]
    g = onnx_to_graph(_model(nodes, [x], [y], [c]))
    assert g.ops == ("Input", "Input", "Add", "Input", "Mul")
    assert g.shapes[1] == (3,) and g.shapes[3] == ()
    assert g.scalars["params"] == 3 + 1


def test_split_gives_one_node_per_output():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b")]
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2)]
    g = onnx_to_graph(_model(nodes, [x], outs, opset=18))
    assert g.ops == ("Input", "Split", "Split") and set(g.edges) == {(0, 1), (0, 2)}
    assert g.shapes[1] == (1, 3) and g.shapes[2] == (1, 3)


def test_shape_subgraphs_resolve_with_data_propagation():
    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1) * 2

    g = onnx_to_graph(export(Flat(), shape=(1, 4, 3, 3), dynamic_axes={"input": {0: "n"}}, input_names=["input"]),
                      batch_size=5)
    assert g.shapes[g.ops.index("Reshape")] == (5, 36)


def test_rebatch_equals_exporting_at_that_batch():
    from nas_predictor.onnx.rebatch import rebatch

    data = export(Tiny(), do_constant_folding=False, export_params=False)
    one = onnx_to_graph(data, batch_size=1)
    for b in (3, 32):
        direct = onnx_to_graph(data, batch_size=b)
        moved = rebatch(one, b)
        assert moved.shapes == direct.shapes and moved.ops == direct.ops and moved.edges == direct.edges
        assert moved.scalars == pytest.approx(direct.scalars)
    assert rebatch(rebatch(one, 32), 1).scalars == pytest.approx(one.scalars)


class SamePadConv(torch.nn.Module):
    """TF "same" padding as timm's tf_ models compute it: the pads come from the input's size at run time
    (Shape -> Div -> Ceil -> Max -> Pad), which onnx's whole-graph inference leaves unsized."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, 2, bias=False)

    def forward(self, x):
        ih, iw = x.size()[-2:]  # tensors while torch.onnx traces: the arithmetic below is exported
        pad_h = torch.clamp(((ih / 2).ceil() - 1) * 2 + 3 - ih, min=0).int()
        pad_w = torch.clamp(((iw / 2).ceil() - 1) * 2 + 3 - iw, min=0).int()
        x = torch.nn.functional.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return self.conv(x)


class WindowPartition(torch.nn.Module):
    """Swin's window partition: pad H, W up to a multiple of the window with Mod arithmetic on the
    input's shape, a mask written by index assignment (ScatterND), then windows through a Linear."""

    def __init__(self, window: int = 4, dim: int = 6) -> None:
        super().__init__()
        self.window, self.proj = window, torch.nn.Linear(dim, dim)

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        ws = self.window
        pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
        x = torch.nn.functional.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        mask = torch.zeros((hp, wp))
        mask[hp - pad_h:, :] = 1.0
        x = x + mask[None, :, :, None]
        windows = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        return self.proj(windows)


def _macs(graph, ops=("Conv", "Gemm", "MatMul")) -> float:
    from nas_predictor.onnx.costs import graph_macs

    return graph_macs(graph, ops)


def test_dynamic_same_padding_is_sized_and_costed_exactly():
    data = export(SamePadConv(), shape=(1, 3, 15, 17), export_params=False)
    assert {"Shape", "Ceil", "Clip", "Pad"} <= {n.op_type for n in onnx.load_from_string(data).graph.node}
    g = onnx_to_graph(data)
    conv = g.ops.index("Conv")
    assert g.shapes[conv] == (1, 8, 8, 9)  # ceil(15/2), ceil(17/2)
    assert _macs(g) == 8 * 8 * 9 * 3 * 3 * 3
    assert all(len(s) for s, op in zip(g.shapes, g.ops) if op != "Input")


def test_mod_and_scatter_window_partition_is_sized_and_costed_exactly():
    data = export(WindowPartition(), shape=(1, 10, 7, 6), export_params=False)
    assert {"Mod", "ScatterND", "Pad"} <= {n.op_type for n in onnx.load_from_string(data).graph.node}
    g = onnx_to_graph(data)
    windows = (12 // 4) * (8 // 4)  # H 10 -> 12, W 7 -> 8, windows of 4 x 4
    assert g.shapes[-1] == (windows, 16, 6)
    assert _macs(g) == windows * 16 * 6 * 6


class BatchInReshape(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(self.conv(x).reshape(x.shape[0], -1))


def test_a_reshape_that_holds_batch_1_is_refused_at_another_batch():
    # exported at a fixed batch 1, torch writes the batch into the Reshape's shape constant
    fixed = export(BatchInReshape(), shape=(1, 3, 8, 8), export_params=False)
    with pytest.raises(OnnxError, match=r"cannot be re-batched from 1 to 32 .*Gemm node '/fc/Gemm'.* export the model "
                                        r"at batch 32"):
        onnx_to_graph(fixed, batch_size=32)
    # with a dynamic batch axis the Reshape reads the batch from the input: re-batched exactly
    dynamic = export(BatchInReshape(), shape=(1, 3, 8, 8), export_params=False, input_names=["input"],
                     dynamic_axes={"input": {0: "batch"}})
    one, many = onnx_to_graph(dynamic), onnx_to_graph(dynamic, batch_size=32)
    assert many.scalars["flops"] == pytest.approx(32 * one.scalars["flops"], rel=1e-12)
    assert many.shapes[-1] == (32, 5)


def test_rebatch_refuses_a_graph_whose_batched_tensor_does_not_lead_with_the_batch():
    from nas_predictor.errors import GraphError
    from nas_predictor.onnx.rebatch import rebatch

    class SequenceFirst(torch.nn.Module):
        def forward(self, x):  # (B, L, C) -> (L, B, C)
            return torch.relu(x.transpose(0, 1))

    g = onnx_to_graph(export(SequenceFirst(), shape=(1, 5, 3)))
    with pytest.raises(GraphError, match=r"cannot re-batch this graph from 1 to 32: .* encode the ONNX file at batch 32"):
        rebatch(g, 32)


def test_a_symbolic_input_size_other_than_the_batch_is_an_error():
    data = export(Tiny(), input_names=["input"], dynamic_axes={"input": {0: "n", 2: "height"}})
    with pytest.raises(OnnxError, match=r"input 'input' has a symbolic size 'height' in dim 2; export the model "
                                        r"with a fixed input size"):
        onnx_to_graph(data)
    batch_only = export(Tiny(), input_names=["input"], dynamic_axes={"input": {0: "n"}})
    assert onnx_to_graph(batch_only).scalars["batch_size"] == 1  # a symbolic batch alone reads as 1


class TokensAndScale(torch.nn.Module):
    """Parameters that feed ordinary op inputs (a class token into Concat, a position embedding into Add,
    a layer scale into Mul), as in ViT / DeiT / ResMLP: weights, not data, in a weight-free file."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 6, 4))
        self.gamma = torch.nn.Parameter(torch.ones(4))
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):  # (B, 5, 4)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return x + self.gamma * self.fc(x)


def test_weight_free_parameters_in_ordinary_slots_are_parameters_not_data():
    from nas_predictor.onnx import load_model

    data = export(TokensAndScale(), shape=(1, 5, 4), export_params=False, input_names=["input"],
                  dynamic_axes={"input": {0: "batch"}})
    loaded = load_model(data)
    assert loaded.data_inputs == ["input"]
    assert {"cls_token", "pos_embed", "gamma"} <= loaded.parameter_inputs
    one, many = onnx_to_graph(data), onnx_to_graph(data, batch_size=8)
    # the weights, plus the Expand's 3-element shape operand (constants read by ops count, as in the reference)
    assert one.scalars["params"] == 4 + 24 + 4 + 16 + 4 + 3
    assert many.scalars["flops"] == pytest.approx(8 * one.scalars["flops"], rel=1e-12)
    assert many.scalars["params"] == one.scalars["params"]


def test_einsum_is_costed_by_its_equation():
    class Mix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3, 5, 7))

        def forward(self, x):  # (B, 2, 3, 5): contract over 5 per head
            return torch.einsum("bnhc,hcd->bnhd", x, self.w) + torch.einsum("...hc,hcd->...hd", x, self.w)

    g = onnx_to_graph(export(Mix(), shape=(1, 2, 3, 5), export_params=False))
    einsums = [i for i, op in enumerate(g.ops) if op == "Einsum"]
    assert len(einsums) == 2
    for i in einsums:
        assert g.shapes[i] == (1, 2, 3, 7)
        assert g.attrs[i]["flops"] == 2 * (1 * 2 * 3 * 5 * 7) - 1 * 2 * 3 * 7
    assert _macs(g, ("Einsum",)) == 2 * (1 * 2 * 3 * 5 * 7)


def test_what_static_inference_cannot_size_is_sized_by_one_cached_onnxruntime_run(tmp_path, monkeypatch):
    import onnxruntime

    from nas_predictor.onnx import runtime_shapes

    monkeypatch.setenv("NAS_PREDICTOR_CACHE", str(tmp_path))
    monkeypatch.setattr(runtime_shapes, "_memory", {})
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    # an onnxruntime contrib op: onnx has no schema for it, so only a run can size its output
    nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Gelu", ["h"], ["g"], domain="com.microsoft"),
             helper.make_node("Transpose", ["g"], ["y"], perm=[2, 0, 1])]
    model = _model(nodes, [x], [y])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    g = onnx_to_graph(model)
    assert g.ops == ("Input", "Relu", "Gelu", "Transpose")
    assert g.shapes[2] == (2, 3, 4) and g.shapes[3] == (4, 2, 3)
    assert len(list((tmp_path / "onnx-shapes").glob("*.json"))) == 1
    # the second encoding reads the cache: onnxruntime is not needed again
    monkeypatch.setattr(runtime_shapes, "_memory", {})
    monkeypatch.setattr(onnxruntime, "InferenceSession", None)
    assert onnx_to_graph(model).shapes == g.shapes
