"""Stacked sums (torch.stack(xs).sum(0)) read as one n-ary Add, on real exports; only where exact."""

import pytest
import torch
from torch import nn

from nas_predictor.config import NetworkEncodingConfig
from nas_predictor.graph import ArchGraph
from nas_predictor.network_encoding import NetworkTokenizer
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.export import export_onnx
from nas_predictor.predictor import tokenizer_from_config
from nas_predictor.stacked_sums import merge_stacked_sums, stacked_sums


class Branches(nn.Module):
    """Three convs summed as the sum says; ``single`` adds a stack-sum of one tensor after them."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.convs = nn.ModuleList(nn.Conv2d(3, 4, k, padding=k // 2) for k in (1, 3, 5))

    def forward(self, x):
        xs = [c(x) for c in self.convs]
        if self.how == "stack":
            y = torch.stack(xs).sum(0)
        elif self.how == "single":
            y = torch.stack([torch.stack(xs).sum(0)]).sum(0)
        elif self.how == "keepdim":
            y = torch.stack(xs).sum(0, keepdim=True).squeeze(0)
        elif self.how == "other_axis":  # stacked on 1, summed over the channels: not a sum of the tensors
            y = torch.stack(xs, 1).sum(2)
        else:
            y = xs[0] + xs[1] + xs[2]
        return torch.relu(y)


def graph_of(how: str) -> ArchGraph:
    return onnx_to_graph(export_onnx(Branches(how), (1, 3, 8, 8)))


def preds(graph: ArchGraph, node: int) -> list[str]:
    return sorted(graph.ops[s] for s, d in graph.edges if d == node)


def test_a_stack_then_sum_becomes_one_add_of_the_stacked_tensors():
    g = graph_of("stack")
    assert g.ops.count("Unsqueeze") == 3 and "ReduceSum" in g.ops
    assert len(stacked_sums(g)) == 1
    m = merge_stacked_sums(g)
    assert not {"Unsqueeze", "Concat", "ReduceSum"} & set(m.ops)
    assert m.num_nodes == g.num_nodes - 4  # 3 Unsqueeze + Concat go, the ReduceSum becomes the Add
    add = m.ops.index("Add")
    assert preds(m, add) == ["Conv", "Conv", "Conv"]
    assert preds(m, m.ops.index("Relu")) == ["Add"]
    assert m.shapes[add] == (1, 4, 8, 8)
    assert m.scalars == g.scalars  # totals stay as exported
    # still a valid graph (derived() skips validation: check it here)
    ArchGraph(ops=list(m.ops), edges=[tuple(e) for e in m.edges], attrs=list(m.attrs), shapes=list(m.shapes),
              scalars=dict(m.scalars))


def test_a_stack_sum_of_one_tensor_is_that_tensor():
    g = graph_of("single")
    m = merge_stacked_sums(g)
    assert len(stacked_sums(g)) == 2
    assert m.ops.count("Add") == 1 and "ReduceSum" not in m.ops
    assert preds(m, m.ops.index("Relu")) == ["Add"]


@pytest.mark.parametrize("how", ["keepdim", "other_axis", "adds"])
def test_what_is_not_an_exact_stack_sum_stays_as_exported(how):
    g = graph_of(how)
    assert stacked_sums(g) == {}
    assert merge_stacked_sums(g) is g


def test_the_tokenizer_option_reads_stacked_sums_as_adds_and_survives_its_config():
    merged = NetworkEncodingConfig(layout="extended", node_costs=True, merge_stacked_sums=True).tokenizer()
    assert isinstance(merged, NetworkTokenizer) and merged.config()["merge_stacked_sums"] is True
    assert "merge_stacked_sums" not in NetworkEncodingConfig(layout="extended").tokenizer().config()  # off: absent
    again = tokenizer_from_config(merged.config())
    stack, adds = graph_of("stack"), graph_of("adds")
    # the stacked form then tokenises like one n-ary Add: fewer nodes than the export, and no stacking ops
    runtime, (nodes, static) = again.runtime_features(stack)
    assert runtime.num_nodes < stack.num_nodes and nodes.shape[0] == runtime.num_nodes
    assert "ReduceSum" not in runtime.ops and runtime.ops.count("Add") == 1
    assert static.shape == again.static_features(stack).shape
    assert again.runtime_graph(adds) is adds  # nothing to merge
