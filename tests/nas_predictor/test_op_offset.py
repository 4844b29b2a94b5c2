"""The per-node offset between operators timed alone and inside a network is recovered from network times."""

import numpy as np
import pytest

from nas_predictor.errors import DataError
from nas_predictor.op_offset import FLOOR, OpOffset, deducted_sum, fit_op_offset


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
