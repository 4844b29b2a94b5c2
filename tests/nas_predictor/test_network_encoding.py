import dataclasses

import numpy as np
import pytest
import torch

from nas_predictor.encoding import positional_encoding
from nas_predictor.graph import ArchGraph
from nas_predictor.model import ModelConfig, NARFormerV2
from nas_predictor.torch_utils import count_parameters
from nas_predictor.network_encoding import (
    STATIC_DIM,
    LazyGraphBatch,
    NetworkTokenizer,
    node_costs,
)


def pe(v):
    return positional_encoding(np.asarray([v], dtype=np.float64), 5, "trans")[0]


def conv_graph():
    conv = {"kernel": [3, 3], "stride": [2, 2], "pad": [1, 1, 1, 1], "dilation": [1, 1], "group": 1, "bias": 0}
    return ArchGraph(ops=("Input", "Conv", "MatMul", "FancyOp"), edges=((0, 1), (1, 2), (2, 3)),
                     attrs=({}, conv, {}, {}), shapes=((1, 3, 224, 224), (1, 64, 112, 112), (1, 1000), ()),
                     scalars={"batch_size": 1, "flops": 2e9, "params": 3e6, "memory_access": 5e7})


def test_reference_layout_is_152_dims_and_matches_the_spec_example():
    tok = NetworkTokenizer("reference")
    assert tok.token_dim == 152
    with pytest.warns(UserWarning, match="FancyOp"):
        feats = tok.node_features(conv_graph())
    conv = feats[1]
    assert conv[:32].tolist() == [1.0] + [0.0] * 31  # Conv is code 1
    expected_attrs = np.concatenate([pe(3), pe(2), pe(1), pe(1), pe(1), pe(0), np.zeros(20)])
    np.testing.assert_allclose(conv[32:112], expected_attrs, atol=1e-6)
    np.testing.assert_allclose(conv[112:], np.concatenate([pe(1), pe(64), pe(112), pe(112)]), atol=1e-6)
    # Input: zero one-hot and attributes, only its shape
    assert not feats[0][:112].any()
    np.testing.assert_allclose(feats[0][112:], np.concatenate([pe(1), pe(3), pe(224), pe(224)]), atol=1e-6)
    # MatMul has the reference's (misspelt, never matched) "Matmul" slot, code 18
    assert feats[2][17] == 1.0 and feats[2][:32].sum() == 1.0
    # unknown op: all-zero one-hot in the reference layout; shape () encodes as four PE(0)
    assert not feats[3][:112].any()
    np.testing.assert_allclose(feats[3][112:], np.tile(pe(0), 4), atol=1e-6)


def test_extended_layout_gives_unknown_ops_the_other_slot():
    tok = NetworkTokenizer()
    with pytest.warns(UserWarning, match="'FancyOp' is not in the latency vocabulary"):
        feats = tok.node_features(conv_graph())
    assert tok.token_dim == feats.shape[1] > 152
    other, inp = tok.slot("other"), tok.slot("Input")
    assert feats[3][other] == 1.0 and feats[3][: tok.num_slots].sum() == 1.0
    assert feats[0][inp] == 1.0
    for op in ("LayerNormalization", "Gelu", "HardSwish", "Erf"):
        assert tok.slot(op) is not None and tok.slot(op) != other
    assert tok.slot("Resize") == tok.slot("Upsample")


def test_static_features_and_batch():
    tok = NetworkTokenizer("reference")
    g = conv_graph()
    static = tok.static_features(g)
    assert static.shape == (STATIC_DIM,) == (40,)
    np.testing.assert_allclose(static, np.concatenate([pe(1), pe(2.0), pe(3e-3), pe(5e-2)]), atol=1e-6)
    with pytest.warns(UserWarning):
        batch = tok.encode([g, ArchGraph(ops=("Input", "Relu"), edges=((0, 1),))])
    assert batch.tokens.shape == (2, 4, 152) and batch.static.shape == (2, 40)
    assert batch.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert batch.adj[0, 1, 0] == batch.adj[0, 0, 1] == 1.0


def test_reference_layout_latency_model_has_the_spec_parameter_count():
    cfg = ModelConfig(task="latency", input_dim=NetworkTokenizer("reference").token_dim, num_blocks=2)
    assert count_parameters(NARFormerV2(cfg)) == 2_310_921


def test_latency_prediction_ignores_node_order():
    tok = NetworkTokenizer()
    with pytest.warns(UserWarning):
        g = conv_graph()
        model = NARFormerV2(ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=64,
                                        num_blocks=2)).eval()
        a = model(tok.encode([g]))
        b = model(tok.encode([g.permuted([2, 0, 3, 1])]))
    torch.testing.assert_close(a, b)


def test_node_sum_readout_sums_positive_node_latencies_and_ignores_order_and_padding():
    tok = NetworkTokenizer()
    with pytest.warns(UserWarning):
        g = conv_graph()
        small = ArchGraph(ops=("Input", "Relu"), edges=((0, 1),))
        cfg = ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=64,
                          num_blocks=2, output="exp", readout="node_sum")
        model = NARFormerV2(cfg).eval()
        model.init_output(12.0, mean_nodes=4.0)  # each node starts at 3 ms
        alone = model(tok.encode([small]))
        both = model(tok.encode([small, g]))  # padded to g's 4 nodes
        permuted = model(tok.encode([g.permuted([2, 0, 3, 1])]))
    assert both.shape == (2,) and bool((both > 0).all())
    torch.testing.assert_close(both[:1], alone)  # padding rows add nothing
    torch.testing.assert_close(both[1:], permuted)
    with pytest.raises(ValueError, match="node_sum"):
        ModelConfig(task="accuracy", readout="node_sum")


def test_op_sum_readout_adds_operator_latencies_and_ignores_the_network_totals():
    tok = NetworkTokenizer()
    g = conv_graph()
    small = ArchGraph(ops=("Input", "Relu"), edges=((0, 1),), attrs=({}, {}), shapes=((1, 3, 8, 8), (1, 3, 8, 8)),
                      scalars={"batch_size": 1, "flops": 192, "params": 0, "memory_access": 384})
    # the two networks side by side, as one graph with no edge between them
    union = ArchGraph(ops=g.ops + small.ops, edges=g.edges + tuple((a + 4, b + 4) for a, b in small.edges),
                      attrs=g.attrs + small.attrs, shapes=g.shapes + small.shapes, scalars=g.scalars)
    cfg = ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=64,
                      num_blocks=2, output="exp", readout="op_sum")
    model = NARFormerV2(cfg).eval()
    model.init_output(12.0, mean_nodes=4.0)
    assert not hasattr(model, "static_embed")
    with pytest.warns(UserWarning, match="FancyOp"):  # once per tokenizer
        batch = tok.encode([g])
    out = model(batch)
    permuted = model(tok.encode([g.permuted([2, 0, 3, 1])]))
    together = model(tok.encode([union]))
    alone = model(tok.encode([small]))
    torch.testing.assert_close(together, out + alone)  # a network's latency is the sum of its operators'
    torch.testing.assert_close(permuted, out)
    # a node's latency cannot see the whole network's FLOPs, params or memory traffic
    torch.testing.assert_close(model(dataclasses.replace(batch, static=batch.static * 0 + 7.0)), out)
    with pytest.raises(ValueError, match="op_sum"):
        ModelConfig(task="latency", architecture="nnlp_gnn", readout="op_sum")


def costed_conv_relu() -> ArchGraph:
    """Input -> Conv (2 GFLOPs, 4 M elements) -> Relu (4 MFLOPs, 8 M elements), costs set by hand."""
    return ArchGraph(ops=("Input", "Conv", "Relu"), edges=((0, 1), (1, 2)),
                     attrs=({}, {"kernel": [3, 3], "flops": 2.0e9, "memory_batched": 3.0e6, "memory_fixed": 1.0e6},
                            {"flops": 4.0e6, "memory_batched": 8.0e6}),
                     shapes=((1, 3, 224, 224), (1, 64, 112, 112), (1, 64, 112, 112)),
                     scalars={"batch_size": 1, "flops": 2.004e9, "params": 1728, "memory_access": 1.2e7})


def test_roofline_readout_is_work_times_rate_summed_over_operators():
    tok = NetworkTokenizer(node_costs=True)
    g = costed_conv_relu()
    np.testing.assert_allclose(node_costs(g), [[0, 0], [2.0e9, 4.0e6], [4.0e6, 8.0e6]])
    cfg = ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=32, num_blocks=2,
                      output="exp", readout="roofline", cost_offset=tok.cost_offset)
    model = NARFormerV2(cfg).eval()
    assert not hasattr(model, "static_embed")
    totals = LazyGraphBatch(tok, [g]).cost_totals()
    np.testing.assert_allclose(totals, [[2.004, 12.0]])  # GFLOPs, millions of elements
    model.init_output(9.0, mean_nodes=3.0, mean_costs=totals[0])
    with torch.no_grad():
        model.head[-1].weight.zero_()  # every node gets the initial rates: 9 / (3 * [2.004, 12, 3])
        out = model(tok.encode([g]))
    rates = 9.0 / (3 * np.array([2.004, 12.0, 3.0]))
    work = np.array([[0, 0, 1], [2.0, 4.0, 1], [0.004, 8.0, 1]])
    torch.testing.assert_close(out, torch.tensor([float((work @ rates).sum())]), rtol=1e-5, atol=0)
    assert abs(float(out) - 9.0) < 1e-4  # the mean network starts at the mean label
    with pytest.raises(ValueError, match="node_costs"):
        ModelConfig(task="latency", readout="roofline")


@pytest.mark.parametrize("outputs", [1, 2])
def test_roofline_sum_adds_one_network_level_term_to_the_operator_sum(outputs):
    tok = NetworkTokenizer(node_costs=True)
    g = costed_conv_relu()
    cfg = ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=32, num_blocks=2,
                      output="exp", readout="roofline_sum", cost_offset=tok.cost_offset, num_outputs=outputs)
    model = NARFormerV2(cfg).eval()
    totals = LazyGraphBatch(tok, [g]).cost_totals()
    model.init_output([8.0, 20.0][:outputs], mean_nodes=3.0, mean_costs=totals[0])
    with torch.no_grad():
        model.head[-1].weight.zero_()  # constant rates: the mean label over four parts
        model.graph_head[-1].weight.zero_()
        batch = tok.encode([g])
        out = model(batch)
        assert out.shape == ((1,) if outputs == 1 else (1, outputs))
        # three roofline terms of a quarter of the label each on the mean network, plus a quarter
        torch.testing.assert_close(out.reshape(-1), torch.tensor([8.0, 20.0][:outputs]), rtol=1e-5, atol=0)
        model.graph_head[-1].weight.normal_()
        out = model(batch)
        torch.testing.assert_close(model(tok.encode([g.permuted([2, 0, 1])])), out)  # node order is irrelevant
        # the network-level term, unlike the operators', reads the static features
        assert not torch.allclose(model(dataclasses.replace(batch, static=batch.static * 0 + 7.0)), out)
    with pytest.raises(ValueError, match="roofline_sum.*node_costs"):
        ModelConfig(task="latency", readout="roofline_sum")


def test_transpose_perm_is_laid_out_frequency_major():
    graph = ArchGraph(ops=("Input", "Transpose"), edges=((0, 1),), attrs=({}, {"perm": [0, 2, 1, 3]}),
                      shapes=((1, 4, 8, 16), (1, 8, 4, 16)), scalars={"batch_size": 1})
    attrs = NetworkTokenizer("reference").node_features(graph)[1][32:112]
    perm = [0, 2, 1, 3, 0, 0, 0, 0]  # padded to the 8 attribute slots with zeros, then encoded
    expected = np.stack([pe(v) for v in perm]).reshape(8, 5, 2).transpose(1, 2, 0).reshape(-1)
    np.testing.assert_allclose(attrs, expected, atol=1e-6)


def test_cached_features_give_the_same_batch():
    from nas_predictor.network_encoding import LazyGraphBatch

    graphs = [conv_graph(), conv_graph()]
    with pytest.warns(UserWarning):
        plain = LazyGraphBatch(NetworkTokenizer(), graphs).select([1, 0])
    cached = LazyGraphBatch(NetworkTokenizer(), graphs, cache_features=True)
    with pytest.warns(UserWarning):
        cached.select([0])
    again = cached.select([1, 0])
    for a, b in ((plain.tokens, again.tokens), (plain.adj, again.adj), (plain.static, again.static)):
        assert torch.equal(a, b)
    assert cached.sizes.tolist() == [4, 4]


def test_extended_layout_appends_log_scale_static_features():
    ref, ext = NetworkTokenizer("reference"), NetworkTokenizer("extended")
    g = conv_graph()
    static = ext.static_features(g)
    assert ext.static_dim == static.shape[0] == STATIC_DIM + 4
    np.testing.assert_allclose(static[:STATIC_DIM], ref.static_features(g))
    np.testing.assert_allclose(static[STATIC_DIM:], [np.log10(2) / 3, np.log10(1 + 2e9) / 11,
                                                   np.log10(1 + 3e6) / 9, np.log10(1 + 5e7) / 10], rtol=1e-6)
    # ten times the FLOPs moves the log feature by a constant step, wherever it starts
    big = ArchGraph(ops=g.ops, edges=g.edges, attrs=g.attrs, shapes=g.shapes, scalars={**g.scalars, "flops": 2e10})
    step = ext.static_features(big)[STATIC_DIM + 1] - static[STATIC_DIM + 1]
    assert step == pytest.approx(1 / 11, rel=1e-6)


def test_node_costs_append_log_flops_and_memory_per_node():
    plain, costed = NetworkTokenizer("extended"), NetworkTokenizer("extended", node_costs=True)
    g = conv_graph()
    conv = {**g.attrs[1], "flops": 1.8e8, "memory_batched": 802816, "memory_fixed": 1728}
    g = ArchGraph(ops=g.ops, edges=g.edges, attrs=(g.attrs[0], conv, *g.attrs[2:]), shapes=g.shapes, scalars=g.scalars)
    with pytest.warns(UserWarning):  # FancyOp, once per tokenizer
        base = plain.node_features(g)
    with pytest.warns(UserWarning):
        feats = costed.node_features(g)
    assert costed.token_dim == plain.token_dim + 2 == feats.shape[1]
    np.testing.assert_array_equal(feats[:, :-2], base)
    np.testing.assert_allclose(feats[1, -2:], [np.log10(1 + 1.8e8) / 10, np.log10(1 + 802816 + 1728) / 9], rtol=1e-6)
    assert not feats[0, -2:].any()  # a node without costs (the Input) gets zeros
    # the tokenizer a checkpoint stores rebuilds with the cost slots
    from nas_predictor.predictor import tokenizer_from_config

    assert tokenizer_from_config(costed.config()).token_dim == costed.token_dim
    assert tokenizer_from_config({"kind": "network", "layout": "extended"}).node_costs is False  # older checkpoints
    with pytest.raises(ValueError, match="node_costs"):
        NetworkTokenizer("reference", node_costs=True)


def test_channel_alignment_flags_output_and_input_channel_divisibility():
    # Input 3 ch -> depthwise-like Conv 32 ch -> Conv 33 ch -> Add of (32, 33) -> MatMul (1, 1000) -> FancyOp ()
    ops = ("Input", "Conv", "Conv", "Add", "MatMul", "FancyOp")
    edges = ((0, 1), (1, 2), (1, 3), (2, 3), (3, 4), (4, 5))
    shapes = ((1, 3, 8, 8), (1, 32, 8, 8), (1, 33, 8, 8), (1, 33, 8, 8), (1, 1000), ())
    g = ArchGraph(ops=ops, edges=edges, attrs=({},) * 6, shapes=shapes,
                  scalars={"batch_size": 1, "flops": 1e6, "params": 1e4, "memory_access": 1e5})
    plain, aligned = NetworkTokenizer("extended", node_costs=True), NetworkTokenizer("extended", True, True)
    with pytest.warns(UserWarning):
        base = plain.node_features(g)
    with pytest.warns(UserWarning):
        feats = aligned.node_features(g)
    assert aligned.token_dim == plain.token_dim + 6 == feats.shape[1]
    np.testing.assert_array_equal(feats[:, :-6], base)
    flags = feats[:, -6:].tolist()
    # [out % 4, % 8, % 16 | all inputs % 4, % 8, % 16]
    assert flags[0] == [0, 0, 0, 0, 0, 0]  # 3 channels, no predecessors
    assert flags[1] == [1, 1, 1, 0, 0, 0]  # 32 out, fed by 3
    assert flags[2] == [0, 0, 0, 1, 1, 1]  # 33 out, fed by 32
    assert flags[3] == [0, 0, 0, 0, 0, 0]  # fed by 32 and 33: not all inputs aligned
    assert flags[4] == [1, 1, 0, 0, 0, 0]  # 1000 = 8 * 125
    assert flags[5] == [0, 0, 0, 1, 1, 0]  # unknown shape: output zeros; its input has 1000
    # checkpoints store the option; those saved before it existed load without it
    from nas_predictor.predictor import tokenizer_from_config

    assert tokenizer_from_config(aligned.config()).token_dim == aligned.token_dim
    assert "channel_alignment" not in plain.config()
    with pytest.raises(ValueError, match="channel_alignment"):
        NetworkTokenizer("reference", channel_alignment=True)


def _mobile_graph(act: str) -> ArchGraph:
    ops = ("Input", "Conv", act, "GlobalAveragePool", "Gemm")
    return ArchGraph(ops=ops, edges=((0, 1), (1, 2), (2, 3), (3, 4)), attrs=({},) * 5,
                     shapes=((1, 3, 8, 8), (1, 16, 8, 8), (1, 16, 8, 8), (1, 16, 1, 1), (1, 10)),
                     scalars={"batch_size": 1, "flops": 1e6, "params": 1e4, "memory_access": 1e5})


def test_op_groups_append_a_group_one_hot():
    from nas_predictor.network_encoding import OP_GROUPS

    plain, grouped = NetworkTokenizer("extended", True, True), NetworkTokenizer("extended", True, True, op_groups=True)
    g = _mobile_graph("HardSwish")
    feats = grouped.node_features(g)
    assert grouped.token_dim == plain.token_dim + len(OP_GROUPS) == feats.shape[1]
    np.testing.assert_array_equal(feats[:, : plain.token_dim], plain.node_features(g))
    groups = [OP_GROUPS[int(np.argmax(row))] for row in feats[:, plain.token_dim :]]
    assert groups == ["input", "conv", "activation", "pooling", "dense"]
    assert feats[:, plain.token_dim :].sum(axis=1).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="op_groups"):
        NetworkTokenizer("reference", op_groups=True)


def test_an_op_outside_the_learnt_vocabulary_is_encoded_by_its_group_alone():
    from nas_predictor.predictor import tokenizer_from_config

    tok = NetworkTokenizer("extended", True, True, op_groups=True)
    with pytest.raises(ValueError, match="op_groups"):
        NetworkTokenizer("extended", known_ops=("Conv",))
    tok.learn_vocabulary([_mobile_graph("Relu")])
    assert tok.known_ops == {"Input", "Conv", "Relu", "GlobalAveragePool", "Gemm"}
    seen = tok.node_features(_mobile_graph("Relu"))
    with pytest.warns(UserWarning, match="'HardSwish' never appeared .* group \\(activation\\)"):
        unseen = tok.node_features(_mobile_graph("HardSwish"))
    ident = slice(0, tok.num_slots)
    assert seen[2, ident].sum() == 1.0 and not unseen[2, ident].any()  # identity dropped ...
    np.testing.assert_array_equal(unseen[2, tok.num_slots :], seen[2, tok.num_slots :])  # ... the rest kept
    np.testing.assert_array_equal(unseen[[0, 1, 3, 4]], seen[[0, 1, 3, 4]])
    # the vocabulary travels with the checkpoint's encoding config; older configs have none
    restored = tokenizer_from_config(tok.config())
    assert restored.known_ops == tok.known_ops and restored.op_groups
    assert "known_ops" not in NetworkTokenizer("extended", op_groups=True).config()
    assert "op_groups" not in NetworkTokenizer("extended").config()
