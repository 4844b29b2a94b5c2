import pytest
import torch

from nas_predictor.augment import isomorphic_relabel
from nas_predictor.graph import ArchGraph
from nas_predictor.losses import (
    accuracy_loss,
    architecture_consistency_loss,
    relative_absolute_error,
    relative_squared_error,
    sequence_ranking_loss,
)
from search_spaces.nasbench201 import GRAPH_EDGES, NASBench201


def test_relative_squared_error():
    pred = torch.tensor([1.1, 0.5])
    target = torch.tensor([1.0, 1.0])
    assert relative_squared_error(pred, target).item() == pytest.approx((0.01 + 0.25) / 2)


def test_sequence_ranking_loss_is_zero_for_a_shifted_prediction():
    target = torch.rand(16)
    assert sequence_ranking_loss(target + 0.3, target, torch.Generator().manual_seed(0)).item() == pytest.approx(0, abs=1e-6)
    assert sequence_ranking_loss(-target, target, torch.Generator().manual_seed(0)).item() > 0


def test_architecture_consistency_loss():
    assert architecture_consistency_loss(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0])).item() == pytest.approx(0.25)


def test_accuracy_loss_combines_terms_with_weights():
    pred = torch.tensor([0.8, 0.7, 0.9, 0.6])  # [originals; augmented]
    target = torch.tensor([0.8, 0.8, 0.8, 0.8])
    loss, parts = accuracy_loss(pred, target, 0.0, 0.5)
    assert parts["ac"] == pytest.approx((0.1 + 0.1) / 2)
    assert loss.item() == pytest.approx(parts["relative_squared"] + 0.5 * parts["ac"])


def test_relative_absolute_error_is_the_mape_and_skips_missing_labels():
    pred = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = torch.tensor([[2.0, float("nan")], [3.0, 4.0]])
    # known entries: |1/2 - 1| = 0.5, 0, |5/4 - 1| = 0.25
    assert float(relative_absolute_error(pred, target)) == pytest.approx(0.75 / 3)
    loss, parts = accuracy_loss(pred, target, 0.0, 0.0, value_loss="relative_absolute")
    assert float(loss) == pytest.approx(0.25) and set(parts) == {"relative_absolute"}


def test_nb201_augmentation_swaps_nodes_5_and_6():
    space = NASBench201()
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    graph = space.to_graph(arch)
    aug = isomorphic_relabel(graph)
    assert aug.ops == graph.ops[:5] + (graph.ops[6], graph.ops[5]) + graph.ops[7:]
    swap = {5: 6, 6: 5}
    assert set(aug.edges) == {(swap.get(s, s), swap.get(d, d)) for s, d in GRAPH_EDGES}
    assert all(s < d for s, d in aug.edges)


def test_augmentation_returns_graph_when_no_relabelling_exists():
    chain = ArchGraph(ops=("in", "a", "b", "out"), edges=[(0, 1), (1, 2), (2, 3)])
    assert isomorphic_relabel(chain) is chain


def test_relative_squared_error_leaves_out_missing_labels():
    from nas_predictor.losses import relative_squared_error

    pred = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = torch.tensor([[2.0, float("nan")], [3.0, 4.0]])
    # known entries: (1/2 - 1)^2 = 0.25, 0, (5/4 - 1)^2 = 0.0625
    assert float(relative_squared_error(pred, target)) == pytest.approx((0.25 + 0.0625) / 3)
