"""The per-node offset between operators timed alone and inside a network is recovered from network times."""

import numpy as np
import pytest

from nas_predictor.errors import DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.op_offset import (FLOOR, GROUP_NAMES, OpGroupScales, OpOffset, deducted_sum, fit_op_groups,
                                     fit_op_offset, node_groups)


def _networks(rng, count, nodes, size):
    return [rng.uniform(0.01, size, rng.integers(nodes // 2, nodes)) for _ in range(count)]


def test_the_offset_and_scale_of_networks_timed_that_way_are_recovered():
    rng = np.random.default_rng(0)
    # many small nodes (a cell network) and few large ones (an AlexNet): only a per-node offset fits both
    nodes = _networks(rng, 40, 120, 0.2) + _networks(rng, 40, 20, 5.0)
    truth = OpOffset(0.06, 0.8)
    fitted = fit_op_offset(nodes, truth.predict_ms(nodes), ["small"] * 40 + ["large"] * 40)
    assert fitted.offset_ms == pytest.approx(0.06, abs=1e-3) and fitted.scale == pytest.approx(0.8, rel=1e-3)
    plain = fit_op_offset(nodes, np.array([n.sum() for n in nodes]))
    assert plain.offset_ms == pytest.approx(0.0, abs=1e-3) and plain.scale == pytest.approx(1.0, rel=1e-3)


def test_every_family_weighs_alike():
    rng = np.random.default_rng(1)
    few, many = _networks(rng, 5, 120, 0.2), _networks(rng, 200, 120, 0.2)
    # the 5-network family was timed with a 0.05 ms offset, the 200-network one with none: balanced, the
    # fit lands between them instead of on the big family's answer
    y = np.concatenate([OpOffset(0.05, 1.0).predict_ms(few), OpOffset(0.0, 1.0).predict_ms(many)])
    balanced = fit_op_offset(few + many, y, ["few"] * 5 + ["many"] * 200)
    unbalanced = fit_op_offset(few + many, y)
    assert unbalanced.offset_ms < 0.01 < balanced.offset_ms


def test_no_node_drops_below_its_floor():
    assert deducted_sum([np.array([0.01, 1.0])], 0.5)[0] == pytest.approx(FLOOR * 0.01 + 0.5)


@pytest.mark.parametrize("labels", [[1.0, float("nan")], [1.0, 0.0], [1.0]])
def test_bad_labels_are_named(labels):
    with pytest.raises(DataError, match="labels|at least 2"):
        fit_op_offset([np.ones(3)] * len(labels), labels)


def test_each_operator_kind_gets_its_own_scale():
    rng = np.random.default_rng(2)
    # micro-benchmarks that time depthwise convs 1.6x too slow and dense ones right: one scale per kind
    # recovers both, one scale for all cannot
    kinds = [rng.choice([GROUP_NAMES.index("conv"), GROUP_NAMES.index("grouped_conv")], size=int(n))
             for n in rng.integers(20, 60, 120)]
    nodes = [rng.uniform(0.2, 2.0, len(k)) for k in kinds]
    scales = np.ones(len(GROUP_NAMES))
    scales[GROUP_NAMES.index("grouped_conv")] = 1 / 1.6
    truth = OpGroupScales(0.0, tuple(scales))
    y = truth.predict_ms(nodes, kinds)
    fitted = fit_op_groups(nodes, kinds, y, ridge=0.0)
    assert fitted.offset_ms == 0.0
    got = fitted.predict_ms(nodes, kinds)
    assert np.max(np.abs(got / y - 1)) < 1e-3
    one = fit_op_offset(nodes, y)
    assert np.max(np.abs(one.predict_ms(nodes) / y - 1)) > 0.05
    # a kind no network has keeps the mean scale of the others
    assert fitted.scales[GROUP_NAMES.index("dense")] == pytest.approx(np.exp(np.mean(np.log(
        [fitted.scales[GROUP_NAMES.index("conv")], fitted.scales[GROUP_NAMES.index("grouped_conv")]]))))


def test_node_kinds_split_grouped_convs_from_dense_ones():
    graph = ArchGraph(ops=("Input", "Conv", "Conv", "Relu", "MatMul", "Foo"),
                      edges=((0, 1), (1, 2), (2, 3), (3, 4), (4, 5)),
                      attrs=({}, {"group": 1}, {"group": 32}, {}, {}, {}))
    assert [GROUP_NAMES[k] for k in node_groups(graph)] == ["input", "conv", "grouped_conv", "activation",
                                                            "dense", "other"]
