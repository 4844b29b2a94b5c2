"""Scalar constant operands (x * 0, x + 3) read without their source node, on real exports."""

import torch
from torch import nn

from nas_predictor.config import NetworkEncodingConfig
from nas_predictor.graph import ArchGraph
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.export import export_onnx
from nas_predictor.predictor import tokenizer_from_config
from nas_predictor.scalar_inputs import drop_scalar_inputs, scalar_inputs


class Scaled(nn.Module):
    """NNI's NasBench201 "none" op (x.mul(0.)) and a hand-written hard-swish (x + 3, / 6) beside a conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y.mul(0.0) + y * torch.clamp(y + 3.0, 0.0, 6.0) / 6.0


class Doubled(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0


def test_scalar_constant_operands_go_and_their_readers_stay():
    g = onnx_to_graph(export_onnx(Scaled(), (1, 3, 8, 8)))
    found = scalar_inputs(g)
    assert found and all(g.ops[i] == "Input" and g.shapes[i] in ((), (1,)) for i in found)
    data = [i for i, op in enumerate(g.ops) if op == "Input" and i not in found]
    assert [g.shapes[i] for i in data] == [(1, 3, 8, 8)]
    d = drop_scalar_inputs(g)
    assert d.num_nodes == g.num_nodes - len(found)
    assert d.ops.count("Input") == 1
    assert sorted(d.ops) == sorted(op for i, op in enumerate(g.ops) if i not in found)
    assert d.scalars == g.scalars  # totals stay as exported
    # still a valid graph (derived() skips validation: check it here)
    ArchGraph(ops=list(d.ops), edges=[tuple(e) for e in d.edges], attrs=list(d.attrs), shapes=list(d.shapes),
              scalars=dict(d.scalars))


def test_a_one_element_data_input_stays_and_a_graph_without_scalars_is_unchanged():
    g = onnx_to_graph(export_onnx(Doubled(), (1,)))  # the network's data is one element too
    d = drop_scalar_inputs(g)
    assert g.ops.count("Input") == 2 and d.ops.count("Input") == 1
    assert d.shapes[d.ops.index("Input")] == (1,) and d.attrs[d.ops.index("Input")]["batched"] == 1
    plain = onnx_to_graph(export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 3, 8, 8)))
    assert drop_scalar_inputs(plain) is plain


def test_the_tokenizer_option_drops_scalar_inputs_and_survives_its_config():
    on = NetworkEncodingConfig(layout="extended", node_costs=True, drop_scalar_inputs=True).tokenizer()
    assert on.config()["drop_scalar_inputs"] is True
    assert "drop_scalar_inputs" not in NetworkEncodingConfig(layout="extended").tokenizer().config()  # off: absent
    again = tokenizer_from_config(on.config())
    g = onnx_to_graph(export_onnx(Scaled(), (1, 3, 8, 8)))
    runtime, (nodes, _) = again.runtime_features(g)
    assert runtime.num_nodes == g.num_nodes - len(scalar_inputs(g)) and nodes.shape[0] == runtime.num_nodes
