import numpy as np
import pytest
import torch

from nas_predictor.encoding import CellTokenizer, GraphBatch
from nas_predictor.graph import ArchGraph
from nas_predictor.model import GroupLinear, ModelConfig, NARFormerV2
from nas_predictor.torch_utils import count_parameters

VOCAB = ("input", "conv1x1", "conv3x3", "maxpool", "output")


def random_cell(rng: np.random.Generator, n: int) -> ArchGraph:
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if j == i + 1 or rng.random() < 0.4]
    ops = ["input", *(VOCAB[k] for k in rng.integers(1, 4, n - 2)), "output"]
    return ArchGraph(ops=ops, edges=edges)


def test_parameter_counts_equal_the_reference():
    assert count_parameters(NARFormerV2(ModelConfig())) == 8_582_535
    latency = ModelConfig(task="latency", input_dim=152, num_blocks=2)
    assert count_parameters(NARFormerV2(latency)) == 2_310_921


def test_output_shape_and_positivity(small_model_config):
    model = NARFormerV2(small_model_config).eval()
    rng = np.random.default_rng(0)
    batch = CellTokenizer(VOCAB).encode([random_cell(rng, n) for n in (3, 5, 7, 7)])
    out = model(batch)
    assert out.shape == (4,)
    assert torch.all(out > 0)


def test_padded_batch_equals_one_by_one(small_model_config):
    model = NARFormerV2(small_model_config).eval()
    rng = np.random.default_rng(1)
    tok = CellTokenizer(VOCAB)
    cells = [random_cell(rng, n) for n in (2, 3, 4, 5, 6, 7, 7, 3)]
    with torch.no_grad():
        batched = model(tok.encode(cells))
        single = torch.cat([model(tok.encode([c])) for c in cells])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_paper_size_padded_batch_equals_one_by_one():
    model = NARFormerV2(ModelConfig()).eval()
    rng = np.random.default_rng(2)
    tok = CellTokenizer(VOCAB)
    cells = [random_cell(rng, n) for n in (4, 7, 5)]
    with torch.no_grad():
        batched = model(tok.encode(cells))
        single = torch.cat([model(tok.encode([c])) for c in cells])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_latency_model_is_invariant_to_node_order():
    cfg = ModelConfig(task="latency", input_dim=24, hidden=64, num_blocks=2, static_dim=8)
    model = NARFormerV2(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    n = 9
    tokens = torch.randn(1, n, 24, generator=gen)
    adj = (torch.rand(n, n, generator=gen) < 0.3).float().triu(1)
    adj = (adj + adj.T)[None]
    static = torch.randn(1, 8, generator=gen)
    mask = torch.ones(1, n, dtype=torch.bool)
    perm = torch.randperm(n, generator=gen)
    with torch.no_grad():
        a = model(GraphBatch(tokens, adj, mask, static))
        b = model(GraphBatch(tokens[:, perm], adj[:, perm][:, :, perm], mask, static))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_latency_model_requires_static_features():
    model = NARFormerV2(ModelConfig(task="latency", input_dim=16, hidden=64, num_blocks=1, static_dim=8))
    batch = GraphBatch(torch.zeros(1, 2, 16), torch.zeros(1, 2, 2), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="static"):
        model(batch)


def test_group_linear_equals_block_diagonal_matmul():
    layer = GroupLinear(16, 32, groups=4)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(5, 16)
    grouped = x.reshape(5, 4, 4).transpose(0, 1)
    out = layer(grouped)
    for g in range(4):
        ref = layer.norm(x[:, 4 * g : 4 * g + 4] @ layer.weight[g] + layer.bias[g])
        torch.testing.assert_close(out[g], ref)


def test_ffn_branch_starts_almost_switched_off():
    model = NARFormerV2(ModelConfig(hidden=64, num_blocks=1, groups=8))
    assert torch.allclose(model.blocks[0].layer_scale, torch.full((64,), 1e-4))


@pytest.mark.parametrize("task", ["latency", "accuracy"])
def test_edge_list_attention_on_packed_nodes_equals_the_dense_padded_form(task):
    import nas_predictor.model as model_module
    from nas_predictor.encoding import GraphBatch

    torch.manual_seed(0)
    b, n = 3, 60  # above SPARSE_MIN_NODES, so the model takes the edge-list path
    adj = torch.zeros(b, n, n)
    for g, size in enumerate((60, 45, 33)):  # chains with some skips, padded to 60 nodes
        for i in range(size - 1):
            adj[g, i, i + 1] = adj[g, i + 1, i] = 1.0
        for i in range(0, size - 3, 5):
            adj[g, i, i + 3] = adj[g, i + 3, i] = 1.0
    mask = adj.sum(-1) > 0
    batch = GraphBatch(torch.randn(b, n, 16) * mask[..., None], adj, mask, torch.randn(b, 8))
    # the edge-list path runs the blocks on the 138 real nodes only (packed), the dense one on all 180
    model = NARFormerV2(ModelConfig(task=task, input_dim=16, hidden=32, num_blocks=2, static_dim=8)).eval()
    with torch.no_grad():
        sparse = model(batch)
        saved = model_module.SPARSE_MIN_NODES
        model_module.SPARSE_MIN_NODES = 10**9
        try:
            dense = model(batch)
        finally:
            model_module.SPARSE_MIN_NODES = saved
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["softplus", "exp"])
def test_output_bias_init_starts_at_the_mean_label_for_each_output(kind):
    cfg = ModelConfig(task="latency", input_dim=16, hidden=32, num_blocks=1, static_dim=8, num_outputs=3, output=kind)
    model = NARFormerV2(cfg).eval()
    torch.nn.init.zeros_(model.head[-1].weight)  # the output is then the bias alone
    model.init_output([0.02, 3.0, 250.0])
    batch = GraphBatch(torch.randn(2, 4, 16), torch.zeros(2, 4, 4), torch.ones(2, 4, dtype=torch.bool), torch.randn(2, 8))
    with torch.no_grad():
        out = model(batch)
    torch.testing.assert_close(out, torch.tensor([[0.02, 3.0, 250.0]] * 2), rtol=1e-4, atol=0)


def test_exp_output_is_positive_and_finite_for_extreme_logits():
    from nas_predictor.model import positive_output

    out = positive_output(torch.tensor([[-1e4], [0.0], [1e4]]), "exp")
    assert out.shape == (3,) and bool(torch.isfinite(out).all()) and bool((out > 0).all())
    assert out[1] == 1.0


def test_op_dropout_zeroes_only_the_op_one_hot_and_only_in_training():
    from nas_predictor.model import drop_op_identity

    cfg = ModelConfig(task="latency", input_dim=12, hidden=16, num_blocks=1, op_slots=5, op_dropout=0.5)
    x = torch.ones(4, 50, 12)
    torch.manual_seed(0)
    out = drop_op_identity(x, cfg, training=True)
    assert torch.equal(out[..., 5:], x[..., 5:])
    dropped = out[..., :5].sum(dim=-1) == 0  # a node loses all of its one-hot or none of it
    assert torch.equal(out[..., :5].sum(dim=-1), (~dropped).float() * 5)
    assert 0.35 < dropped.float().mean().item() < 0.65
    assert torch.equal(drop_op_identity(x, cfg, training=False), x)
    with pytest.raises(ValueError, match="op_dropout needs encoding.op_groups"):
        ModelConfig(task="latency", op_dropout=0.2)


def test_input_columns_are_the_only_token_columns_the_model_reads():
    cfg = ModelConfig(input_dim=12, hidden=16, num_blocks=2, groups=4, input_columns=[0, 3, 4, 9])
    torch.manual_seed(0)
    model = NARFormerV2(cfg).eval()
    assert model.blocks[0].query.in_features == 4
    assert "input_columns" not in model.state_dict()  # the config holds them; checkpoints stay as they were
    tokens = torch.rand(2, 5, 12)
    adj = torch.zeros(2, 5, 5)
    adj[:, 0, 1] = adj[:, 1, 0] = adj[:, 1, 2] = adj[:, 2, 1] = 1.0
    batch = GraphBatch(tokens, adj, torch.ones(2, 5, dtype=torch.bool))
    others = tokens.clone()
    others[..., [1, 2, 5, 6, 7, 8, 10, 11]] = torch.rand(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(model(batch), model(GraphBatch(others, adj, batch.mask)))
        assert not torch.equal(model(batch), model(GraphBatch(tokens * 2, adj, batch.mask)))


@pytest.mark.parametrize("columns", [[], [3, 1], [1, 1], [0, 12], [-1, 2]])
def test_bad_input_columns_are_refused_naming_the_setting(columns):
    with pytest.raises(ValueError, match="input_columns"):
        ModelConfig(input_dim=12, hidden=16, num_blocks=2, groups=4, input_columns=columns)
