import math

import pytest

from nas_predictor.errors import GraphError
from nas_predictor.graph import ArchGraph


def test_valid_graph_and_adjacency():
    g = ArchGraph(ops=("input", "conv", "output"), edges=[(0, 1), (1, 2), (0, 2)])
    assert g.num_nodes == 3
    assert g.adjacency() == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]


def test_empty_graph_is_rejected():
    with pytest.raises(GraphError, match="empty graph"):
        ArchGraph(ops=(), edges=())


def test_edge_to_missing_node_is_named():
    with pytest.raises(GraphError, match=r"edge \(1, 5\) refers to missing node 5"):
        ArchGraph(ops=("a", "b"), edges=[(1, 5)])


def test_cycle_is_rejected():
    with pytest.raises(GraphError, match="cycle"):
        ArchGraph(ops=("a", "b", "c"), edges=[(0, 1), (1, 2), (2, 1)])


def test_self_loop_is_rejected():
    with pytest.raises(GraphError, match="self loop"):
        ArchGraph(ops=("a", "b"), edges=[(1, 1)])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_scalar_is_rejected(bad):
    with pytest.raises(GraphError, match="flops"):
        ArchGraph(ops=("a",), edges=(), scalars={"flops": bad})


def test_non_finite_attribute_is_rejected():
    with pytest.raises(GraphError, match="node 0 attribute 'kernel'"):
        ArchGraph(ops=("conv",), edges=(), attrs=[{"kernel": [3, math.nan]}])


def test_per_node_lists_must_match_node_count():
    with pytest.raises(GraphError, match="shapes has 1 entries for 2 nodes"):
        ArchGraph(ops=("a", "b"), edges=[(0, 1)], shapes=[(1, 3)])


def test_permuted_relabels_ops_and_edges():
    g = ArchGraph(ops=("in", "a", "b", "out"), edges=[(0, 1), (0, 2), (1, 3), (2, 3)])
    p = g.permuted([0, 2, 1, 3])
    assert p.ops == ("in", "b", "a", "out")
    assert set(p.edges) == {(0, 2), (0, 1), (2, 3), (1, 3)}
    with pytest.raises(GraphError, match="not a permutation"):
        g.permuted([0, 0, 1, 2])


def test_dict_round_trip_and_bad_input():
    import json

    import pytest

    from nas_predictor.errors import GraphError
    from nas_predictor.graph import ArchGraph

    g = ArchGraph(ops=("Input", "Conv"), edges=((0, 1),), attrs=({}, {"kernel": [3, 3], "bias": 0}),
                  shapes=((1, 3, 8, 8), (1, 4, 8, 8)), scalars={"flops": 10.0})
    assert ArchGraph.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    with pytest.raises(GraphError, match="not a serialised ArchGraph"):
        ArchGraph.from_dict({"ops": ["a"]})


def test_a_derived_graph_equals_the_validated_construction_of_the_same_parts():
    parts = dict(ops=("Input", "Conv", "Relu"), edges=((0, 1), (1, 2)), attrs=({}, {"kernel": [3, 3]}, {}),
                 shapes=((1, 3, 8, 8), (1, 4, 8, 8), (1, 4, 8, 8)), scalars={"flops": 10.0})
    derived = ArchGraph.derived(**parts)
    assert derived == ArchGraph(**parts)
    assert derived.num_nodes == 3 and derived.to_dict() == ArchGraph(**parts).to_dict()
