import numpy as np
import pytest

from nas_predictor.errors import ArchError
from search_spaces.nasbench201 import (
    NUM_ARCHS,
    NASBench201,
    code_to_ops,
    format_arch,
    functional_key,
    ops_to_code,
    parse_arch,
)

ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return NASBench201()


def test_string_tuple_round_trip():
    ops = parse_arch(ARCH1)
    assert ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert format_arch(ops) == ARCH1
    assert code_to_ops(ops_to_code(ops)) == ops


def test_official_index_order_matches_the_benchmark_table(space, nb201_table):
    assert len(space) == NUM_ARCHS == len(nb201_table)
    assert list(space) == nb201_table.arch_strs
    assert space.index_of(ARCH1) == 1


def test_index_round_trip(space):
    for i in (0, 1, 777, NUM_ARCHS - 1):
        assert space.index_of(space.arch_from_index(i)) == i
    with pytest.raises(ArchError, match="out of range"):
        space.arch_from_index(NUM_ARCHS)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "malformed"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "malformed"),
        (ARCH1.replace("avg_pool_3x3", "max_pool_3x3"), "unknown op 'max_pool_3x3' on edge 2"),
        (ARCH1.replace("~1|+", "~0|+"), "malformed"),
        (42, "must be a string"),
    ],
)
def test_malformed_arch_strings_have_clear_errors(space, bad, message):
    with pytest.raises(ArchError, match=message):
        space.to_graph(bad)


def test_graph_is_the_8_node_op_on_node_cell(space):
    g = space.to_graph(ARCH1)
    assert g.ops == ("input", *parse_arch(ARCH1), "output")
    adj = np.array(g.adjacency())
    assert tuple((adj + adj.T).sum(axis=1)) == (3, 3, 2, 2, 2, 2, 3, 3)


def test_sample_mutate_neighbours(space):
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    assert all(parse_arch(a) for a in archs)
    assert len(set(archs)) > 150
    for arch in archs[:20]:
        child = space.mutate(arch, rng)
        diff = sum(a != b for a, b in zip(parse_arch(arch), parse_arch(child)))
        assert diff == 1
    nbrs = space.neighbours(ARCH1)
    assert len(nbrs) == len(set(nbrs)) == 24 and ARCH1 not in nbrs
    assert all(sum(a != b for a, b in zip(parse_arch(ARCH1), parse_arch(n))) == 1 for n in nbrs)


def test_sampling_is_reproducible_with_a_seed(space):
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b


# -- functional equivalence -------------------------------------------------------------------------
ZERO_OUT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"


def test_cells_whose_output_only_sees_none_edges_are_zero(space):
    assert functional_key(parse_arch(ZERO_OUT)) == "zero"
    assert functional_key(parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == "zero"
    assert functional_key(parse_arch(ARCH1)) != "zero"


def test_dead_pooling_and_skips_drop_out_but_a_conv_of_zero_is_a_learned_constant(space):
    direct = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    # node 1 and node 2 are exact zeros: pooling or skipping them adds nothing ...
    dead_pool = "|none~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|"
    assert space.equivalence_key(dead_pool) == space.equivalence_key(direct) == "nor_conv_3x3(x)"
    # ... but ReLU-conv-BN of a zero outputs the BN shift, so the cell computes conv(x) + b.
    conv_of_zero = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|"
    assert space.equivalence_key(conv_of_zero) == "(b+nor_conv_3x3(x))"


def test_skip_is_identity_and_sums_commute(space):
    # node1 = x (skip); output = conv3(x) + conv1(node1) vs conv1(x) + conv3(node1)
    a = "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|"
    b = "|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|"
    assert space.equivalence_key(a) == space.equivalence_key(b) == "(nor_conv_1x1(x)+nor_conv_3x3(x))"
    # a different function stays apart: conv of (x + x) is not conv of x
    c = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|"
    d = "|skip_connect~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert space.equivalence_key(c) != space.equivalence_key(d)


def test_equivalence_classes_partition_the_space(space):
    classes = space._classes
    assert sum(len(group) for group in classes.values()) == NUM_ARCHS
    assert len(classes) == 5989
    members = space.equivalent_archs(ZERO_OUT)
    assert ZERO_OUT in members and len(members) == len(classes["zero"])
    assert {space.equivalence_key(m) for m in members} == {"zero"}
    assert space.equivalent_archs(ARCH1) == [ARCH1]  # a cell with no dead part is alone


def test_equivalent_cells_have_nearly_equal_benchmark_accuracy(space, nb201_table):
    """The classes are real: labels within a class differ by training noise only."""
    acc = nb201_table.column("c10_test_200ep")
    keys = [space.equivalence_key(a) for a in nb201_table.arch_strs]
    _, inv = np.unique(keys, return_inverse=True)
    counts = np.bincount(inv)
    means = np.bincount(inv, weights=acc) / counts
    within = np.sqrt(np.sum((acc - means[inv]) ** 2) / (len(acc) - len(counts)))
    assert within < 0.1 * acc.std()
    zero = np.array(keys) == "zero"
    assert np.all(acc[zero] < 11.0)  # an all-zero cell cannot learn: chance level on CIFAR-10


def test_proxy_score_ranks_cells_as_the_network_parameter_count_does():
    from search_spaces.nb201_network import build_nb201_network

    space = NASBench201()
    archs = [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ]
    params = [sum(p.numel() for p in build_nb201_network(a).parameters()) for a in archs]
    scores = [space.proxy_score(a) for a in archs]
    # the score is the parameter count less what every cell shares
    assert [p - params[0] for p in params] == scores
    assert params[2] == 1_073_466  # the CIFAR-10 optimum's 1.073466 M (NAS-Bench-201's own count)
