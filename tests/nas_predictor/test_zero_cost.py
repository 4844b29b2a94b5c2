"""nas_predictor/zero_cost.py: each proxy on a tiny network against a value worked out by hand or a
published property."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas_predictor.errors import ConfigError
from nas_predictor.zero_cost import DEGENERATE, JACOV_K, PROXIES, ProxyBatch, compute_proxies


def linear(weights, bias=False) -> nn.Linear:
    w = torch.tensor(weights, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


def test_params_and_flops_of_a_linear_layer():
    net = nn.Sequential(nn.Flatten(), linear([[1.0, 2.0, 3.0, 4.0]] * 3, bias=True))
    scores = compute_proxies(net, ProxyBatch((4,), 3), ["params", "flops"])
    assert scores == {"params": 15.0, "flops": 24.0}  # 4 x 3 weights + 3 biases; 4 x 3 multiply-adds, x 2


def test_synflow_of_a_two_layer_linear_network_is_twice_its_positive_output_and_ignores_the_data():
    # |W1| 1 = [3, 7], |W2| [3, 7] = 10: each layer's sum of w * dR/dw is R (R is linear in each layer)
    net = nn.Sequential(linear([[1.0, -2.0], [3.0, 4.0]]), linear([[-1.0, 1.0]]))
    first = compute_proxies(net, ProxyBatch((2,), 1, seed=0), ["synflow"])["synflow"]
    assert first == pytest.approx(20.0)
    assert compute_proxies(net, ProxyBatch((2,), 1, size=7, seed=5), ["synflow"])["synflow"] == first
    assert net[0].weight[0, 1].item() == -2.0  # the network itself is left as it was


def test_grad_norm_and_snip_match_the_cross_entropy_gradient_worked_out_by_hand():
    w = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]
    net = linear(w)
    batch = ProxyBatch((3,), 2, size=5, seed=3)
    x, y = batch.tensors()
    p = torch.softmax(x @ torch.tensor(w).T, dim=1)
    grad = (p - torch.nn.functional.one_hot(y, 2).float()).T @ x / len(x)  # dL/dW of the mean cross-entropy
    scores = compute_proxies(net, batch, ["grad_norm", "snip"])
    assert scores["grad_norm"] == pytest.approx(grad.norm().item(), rel=1e-5)
    assert scores["snip"] == pytest.approx((grad * torch.tensor(w)).abs().sum().item(), rel=1e-5)


def test_naswot_is_the_log_determinant_of_the_binary_code_kernel():
    net = nn.Sequential(nn.ReLU())  # the codes are the signs of the images themselves
    batch = ProxyBatch((6,), 2, size=4, seed=1)
    x, _ = batch.tensors()
    c = (x.numpy() > 0).astype(float)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    assert compute_proxies(net, batch, ["naswot"])["naswot"] == pytest.approx(np.linalg.slogdet(kernel)[1])


def test_jacov_of_a_linear_network_whose_jacobians_all_agree():
    # every image has the Jacobian 1^T W: one eigenvalue N, the rest 0
    net = linear([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    n = 6
    expected = -(math.log(n + JACOV_K) + 1 / (n + JACOV_K)) - (n - 1) * (math.log(JACOV_K) + 1 / JACOV_K)
    assert compute_proxies(net, ProxyBatch((3,), 2, size=n), ["jacov"])["jacov"] == pytest.approx(expected, rel=1e-6)


class Ignores(nn.Module):
    """An output that does not depend on the input (a NAS-Bench-201 cell with no path through it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bias = nn.Parameter(torch.ones(10))

    def forward(self, x):
        return torch.relu(self.conv(x)).mean() * 0 + self.bias.expand(len(x), 10)


def test_a_network_that_ignores_its_input_gets_the_floor_and_no_nan():
    scores = compute_proxies(Ignores(), ProxyBatch((3, 8, 8), 10, size=8))
    assert set(scores) == set(PROXIES)
    assert scores["jacov"] == DEGENERATE
    assert all(math.isfinite(v) for v in scores.values())


def test_the_batch_is_seeded_and_an_unknown_proxy_is_named():
    a, b = ProxyBatch((3, 4, 4), 10, seed=2).tensors(), ProxyBatch((3, 4, 4), 10, seed=2).tensors()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ConfigError, match="unknown zero-cost proxy 'zen'"):
        compute_proxies(nn.Linear(2, 2), ProxyBatch((2,), 2), ["zen"])
