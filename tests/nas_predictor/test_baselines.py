import numpy as np
import pytest
import torch

from nas_predictor.baselines import NNLPGNN, CostLinearRegression
from nas_predictor.graph import ArchGraph
from nas_predictor.architectures import build_model
from nas_predictor.model_config import ModelConfig
from nas_predictor.network_encoding import NetworkTokenizer


def graphs(flops):
    return [ArchGraph(ops=("Input", "Conv"), edges=((0, 1),), attrs=({}, {}), shapes=((1, 3, 8, 8), (1, 4, 8, 8)),
                      scalars={"batch_size": 1, "flops": f, "params": 1e3, "memory_access": 2 * f})
            for f in flops]


def test_linear_cost_baseline_recovers_a_linear_law():
    flops = np.array([1e9, 2e9, 4e9, 8e9])
    model = CostLinearRegression(("flops",)).fit(graphs(flops), 0.5 + 1.5 * flops / 1e9)
    np.testing.assert_allclose(model.predict(graphs([3e9])), [5.0])
    both = CostLinearRegression(("flops", "memory_access")).fit(graphs(flops), 0.5 + 1.5 * flops / 1e9)
    np.testing.assert_allclose(both.predict(graphs(flops)), 0.5 + 1.5 * flops / 1e9, rtol=1e-6)


def test_nnlp_gnn_is_built_from_config_and_ignores_node_order():
    tok = NetworkTokenizer()
    cfg = ModelConfig(task="latency", input_dim=tok.token_dim, static_dim=tok.static_dim, hidden=32, num_blocks=2,
                      architecture="nnlp_gnn")
    model = build_model(cfg).eval()
    assert isinstance(model, NNLPGNN)
    g = ArchGraph(ops=("Input", "Conv", "Relu", "Add"), edges=((0, 1), (1, 2), (0, 3), (2, 3)),
                  attrs=({}, {"kernel": [3, 3]}, {}, {}), shapes=((1, 3, 8, 8),) * 4,
                  scalars={"batch_size": 1, "flops": 1e6, "params": 10, "memory_access": 100})
    a = model(tok.encode([g]))
    b = model(tok.encode([g.permuted([3, 1, 0, 2])]))
    torch.testing.assert_close(a, b)
    assert (a > 0).all()
    with pytest.raises(ValueError, match="predicts latency"):
        build_model(ModelConfig(architecture="nnlp_gnn"))
