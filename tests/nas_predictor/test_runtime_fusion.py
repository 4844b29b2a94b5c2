import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nas_predictor.config import NetworkEncodingConfig
from nas_predictor.graph import ArchGraph
from nas_predictor.network_encoding import LazyGraphBatch, NetworkTokenizer
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.predictor import tokenizer_from_config
from nas_predictor.runtime_fusion import fold_batchnorm, foldable_batchnorms

CONV = {"kernel": [3, 3], "stride": [1, 1], "pad": [1, 1, 1, 1], "dilation": [1, 1], "group": 1, "bias": 0,
        "flops": 100.0, "memory_batched": 40, "memory_fixed": 0}
BN = {"flops": 8.0, "memory_batched": 6, "memory_fixed": 0}


def chain(*ops_and_attrs, edges):
    ops = [o for o, _ in ops_and_attrs]
    attrs = [a for _, a in ops_and_attrs]
    flops = sum(a.get("flops", 0.0) for a in attrs)
    memory = sum(a.get("memory_batched", 0) + a.get("memory_fixed", 0) for a in attrs)
    return ArchGraph(ops=ops, edges=edges, attrs=attrs, shapes=[(1, 4, 8, 8)] * len(ops),
                     scalars={"batch_size": 1.0, "flops": flops, "params": 10.0, "memory_access": memory + 10.0})


def test_a_bn_reading_a_conv_alone_merges_into_it_and_the_conv_gains_a_bias():
    g = chain(("Input", {}), ("Conv", CONV), ("BatchNormalization", BN), ("Relu", {"flops": 4.0}),
              edges=[(0, 1), (1, 2), (2, 3)])
    f = fold_batchnorm(g)
    assert f.ops == ("Input", "Conv", "Relu")
    assert f.edges == ((0, 1), (1, 2))
    assert f.attrs[1]["bias"] == 1 and g.attrs[1]["bias"] == 0  # the input graph is left as it was
    assert f.scalars["flops"] == pytest.approx(104.0)
    assert f.scalars["memory_access"] == pytest.approx(40 + 10.0)
    assert f.scalars["params"] == 10.0


def test_bns_that_onnxruntime_keeps_stay():
    # a Conv with a second reader (the BN cannot change the Conv's output for it), and a BN after a Concat
    shared = chain(("Input", {}), ("Conv", CONV), ("BatchNormalization", BN), ("Add", {}),
                   edges=[(0, 1), (1, 2), (1, 3), (2, 3)])
    after_concat = chain(("Input", {}), ("Conv", CONV), ("Concat", {}), ("BatchNormalization", BN),
                         edges=[(0, 1), (0, 2), (1, 2), (2, 3)])
    for g in (shared, after_concat):
        assert foldable_batchnorms(g) == {}
        assert fold_batchnorm(g) is g


def test_several_folds_keep_every_consumer_and_the_order_topological():
    g = chain(("Input", {}), ("Conv", CONV), ("BatchNormalization", BN), ("Conv", CONV), ("BatchNormalization", BN),
              ("Add", {}), edges=[(0, 1), (1, 2), (2, 3), (3, 4), (2, 5), (4, 5)])
    assert foldable_batchnorms(g) == {2: 1, 4: 3}
    f = fold_batchnorm(g)
    assert f.ops == ("Input", "Conv", "Conv", "Add")
    assert f.edges == ((0, 1), (1, 2), (1, 3), (2, 3))
    assert fold_batchnorm(f) is f  # idempotent


class ConvBnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.a(x)
        x = torch.relu(x + self.b(x))
        return self.head(x.mean((2, 3)))


def export(module: nn.Module, folding: bool) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, 16, 16),), buffer, export_params=folding,
                          do_constant_folding=folding, opset_version=17, dynamo=False)
    return buffer.getvalue()


def test_the_unfolded_export_folds_into_the_graph_torchs_own_fold_exports():
    torch.manual_seed(0)
    net = ConvBnNet()
    unfolded, folded = onnx_to_graph(export(net, False)), onnx_to_graph(export(net, True))
    assert "BatchNormalization" in unfolded.ops and "BatchNormalization" not in folded.ops
    ours = fold_batchnorm(unfolded)
    assert ours.ops == folded.ops
    assert ours.edges == folded.edges
    assert [a.get("bias") for a in ours.attrs] == [a.get("bias") for a in folded.attrs]
    # the tokens of the two exports agree once folded; the Conv's bias add is the only cost left apart
    tok = NetworkTokenizer(node_costs=True, fold_batchnorm=True)
    a, b = tok.encode([unfolded]), tok.encode([folded])
    assert a.tokens.shape == b.tokens.shape
    np.testing.assert_allclose(a.tokens.numpy(), b.tokens.numpy(), atol=2e-3)
    np.testing.assert_array_equal(a.adj.numpy(), b.adj.numpy())


def test_the_tokenizer_folds_only_when_asked_and_a_checkpoint_config_keeps_the_choice():
    g = chain(("Input", {}), ("Conv", CONV), ("BatchNormalization", BN), ("Relu", {"flops": 4.0}),
              edges=[(0, 1), (1, 2), (2, 3)])
    plain, folding = NetworkTokenizer(), NetworkEncodingConfig(fold_batchnorm=True).tokenizer()
    assert plain.encode([g]).tokens.shape[1] == 4 and folding.encode([g]).tokens.shape[1] == 3
    assert "fold_batchnorm" not in plain.config()  # absent = off: older checkpoints load unchanged
    restored = tokenizer_from_config(folding.config())
    assert restored.fold_batchnorm and restored.node_features(g).shape[0] == 3
    lazy = LazyGraphBatch(folding, [g, g])
    assert lazy.sizes.tolist() == [3, 3]  # bucketing sees the folded sizes
