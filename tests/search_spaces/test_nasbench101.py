"""The NAS-Bench-101 search space: ids, moves, categorical view, graphs, tokens and networks."""

import importlib.util
import os
import sys

import numpy as np
import pytest
import torch

from nas_predictor.augment import isomorphic_relabel
from nas_predictor.encoding import CellTokenizer
from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from nas_predictor.nb101_cell import Cell, cell_hash, parse_arch
from nas_predictor.spaces import get_space
from search_spaces.nasbench101 import NASBench101, arch_to_spec, spec_to_arch
from tests.nas_predictor.test_nb101_cell import (
    INCEPTION_STORED,
    PUBLISHED_HASH,
    PUBLISHED_MATRIX,
    PUBLISHED_OPS,
)

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
PUBLISHED = spec_to_arch(PUBLISHED_MATRIX, PUBLISHED_OPS)
SMALL = "010.001.000|input,conv1x1-bn-relu,output"


@pytest.fixture(scope="module")
def space():
    return NASBench101()


def _vertices(arch: str) -> int:
    return parse_arch(arch).num_vertices


def test_registered_with_the_spec_label_order():
    space = get_space("nasbench101")
    assert isinstance(space, NASBench101)
    assert space.op_vocab == ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
    with pytest.raises(TypeError, match="not enumerable"):
        len(space)


def test_canonical_is_the_pruned_string(space):
    unpruned = "0110000.0000001.0001000.0000000.0000000.0000000.0000000|input,conv1x1-bn-relu,maxpool3x3," \
               "conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,output"
    assert space.canonical(unpruned) == SMALL
    assert space.canonical(SMALL) == SMALL
    with pytest.raises(ArchError, match="no path from input to output"):
        space.canonical("00.00|input,output")
    matrix, ops = arch_to_spec(PUBLISHED)
    assert matrix.tolist() == PUBLISHED_MATRIX and ops == PUBLISHED_OPS


def test_equivalence_key_is_the_official_hash(space):
    assert space.equivalence_key(PUBLISHED) == PUBLISHED_HASH
    stored = spec_to_arch(*INCEPTION_STORED)
    assert space.equivalence_key(stored) == cell_hash(Cell(*INCEPTION_STORED))


def test_equivalent_archs_are_the_topological_relabellings(space):
    members = space.equivalent_archs(PUBLISHED)
    assert members[0] == PUBLISHED and len(set(members)) == len(members) > 1
    assert {space.equivalence_key(m) for m in members} == {PUBLISHED_HASH}
    assert all(space.canonical(m) == m for m in members)
    # the middle vertices must keep 1 -> 2 -> 3 -> 5 and 4 -> 5: vertex 4 fits in 4 places of the chain
    assert len(members) == 4
    assert space.equivalent_archs(SMALL) == [SMALL]


def test_samples_are_valid_canonical_and_seeded(space):
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert len(set(first)) == 1, "the same seed gives the same cell"
    rng = np.random.default_rng(8)
    archs = [space.sample(rng) for _ in range(200)]
    assert len(set(archs)) > 100  # the official distribution favours small cells (10 % are input -> output)
    for arch in archs:
        cell = parse_arch(arch)
        assert space.canonical(arch) == arch and cell.num_vertices <= 7 and cell.num_edges <= 9
    assert max(map(_vertices, archs)) >= 6 and min(map(_vertices, archs)) <= 3


def test_neighbours_of_a_small_cell_are_flips_op_changes_and_insertions(space):
    def arch(rows, *middle):
        return ".".join(rows) + "|" + ",".join(("input", *middle, "output"))

    expected = {arch(["011", "001", "000"], C1), arch(["010", "001", "000"], C3), arch(["010", "001", "000"], MP)}
    # a new vertex fed by the input and feeding vertex 1 (old edges kept) ...
    expected |= {arch(["0110", "0010", "0001", "0000"], op, C1) for op in (C3, C1, MP)}
    # ... fed by the input and feeding the output, before or after vertex 1 ...
    expected |= {arch(["0110", "0001", "0001", "0000"], op, C1) for op in (C3, C1, MP)}
    expected |= {arch(["0110", "0001", "0001", "0000"], C1, op) for op in (C3, MP)}
    # ... or fed by vertex 1 and feeding the output
    expected |= {arch(["0100", "0011", "0001", "0000"], C1, op) for op in (C3, C1, MP)}
    neighbours = space.neighbours(SMALL)
    assert len(neighbours) == len(set(neighbours)) == 14
    assert set(neighbours) == expected


def test_neighbours_are_valid_distinct_and_exclude_the_arch(space):
    rng = np.random.default_rng(3)
    for _ in range(20):
        arch = space.sample(rng)
        neighbours = space.neighbours(arch)
        assert neighbours and arch not in neighbours and len(set(neighbours)) == len(neighbours)
        assert all(space.canonical(n) == n for n in neighbours)
        assert max(map(_vertices, neighbours)) <= min(_vertices(arch) + 1, 7)
    # an unpruned spec has the neighbours of its pruned cell, which is not among them
    unpruned = "0100001.0000001.0000000.0000000.0000000.0000000.0000000|input,conv1x1-bn-relu,maxpool3x3," \
               "maxpool3x3,maxpool3x3,maxpool3x3,output"
    pruned = "011.001.000|input,conv1x1-bn-relu,output"
    assert space.canonical(unpruned) == pruned
    assert space.neighbours(unpruned) == space.neighbours(pruned) and pruned not in space.neighbours(unpruned)


def test_mutate_makes_one_change_and_can_grow_a_cell(space):
    rng = np.random.default_rng(5)
    neighbours = set(space.neighbours(SMALL))
    children = [space.mutate(SMALL, rng) for _ in range(300)]
    assert all(c in neighbours and c != SMALL for c in children)
    assert {_vertices(c) for c in children} == {3, 4}, "edge flips / op changes, and one inserted vertex"
    assert len(set(children)) == len(neighbours), "every neighbour is reachable"
    again = [space.mutate(SMALL, np.random.default_rng(5)) for _ in range(2)]
    assert again[0] == again[1] == children[0]


def test_mutate_official_flips_about_three_edges_and_one_op(space):
    rng = np.random.default_rng(11)
    parent = parse_arch(PUBLISHED)
    flips, op_changes, same = [], [], 0
    for _ in range(400):
        child_arch = space.mutate_official(PUBLISHED, rng)
        child = parse_arch(child_arch)
        assert child.num_vertices == 7 and space.canonical(child_arch)  # unpruned, valid
        flips.append(int(np.sum(child.array() != parent.array())))
        op_changes.append(sum(a != b for a, b in zip(child.ops, parent.ops)))
        same += space.canonical(child_arch) == PUBLISHED
    # 3 flips and 1 op change expected before the validity filter, which favours fewer flips
    assert 1.5 < np.mean(flips) < 3.5 and 0.7 < np.mean(op_changes) < 1.3
    assert same > 0, "like the official routine, it may return the same cell"
    assert space.mutate_official(PUBLISHED, rng, mutation_rate=0.0) == PUBLISHED
    padded = space.mutate_official(SMALL, np.random.default_rng(1), mutation_rate=0.0)
    assert _vertices(padded) == 7 and space.canonical(padded) == SMALL


def test_choices_round_trip_and_invalid_combinations(space):
    choices = space.choices()
    assert len(choices) == 26
    assert choices[0] == ("e0_1", (0, 1)) and choices[20] == ("e5_6", (0, 1))
    assert choices[21] == ("op1", (C3, C1, MP))
    matrix, ops = arch_to_spec(PUBLISHED)
    values = {f"e{i}_{j}": int(matrix[i, j]) for i in range(7) for j in range(i + 1, 7)}
    values |= {f"op{v}": ops[v] for v in range(1, 6)}
    assert space.from_choices(values) == PUBLISHED
    with pytest.raises(ArchError, match="no path from input to output"):
        space.from_choices({**values, "e2_6": 0, "e5_6": 0})
    with pytest.raises(ArchError, match="too many edges: 10 after pruning"):
        space.from_choices({**values, "e0_6": 1})
    with pytest.raises(ArchError, match="missing NAS-Bench-101 choice 'op5'"):
        space.from_choices({k: v for k, v in values.items() if k != "op5"})
    with pytest.raises(ArchError, match="unknown op 'conv5x5'"):
        space.from_choices({**values, "op2": "conv5x5"})


def test_to_graph_is_the_pruned_cell_in_stored_order(space):
    graph = space.to_graph(PUBLISHED)
    assert isinstance(graph, ArchGraph) and graph.ops == tuple(PUBLISHED_OPS)
    assert graph.adjacency() == PUBLISHED_MATRIX
    unpruned = "0100001.0000001.0000000.0000000.0000000.0000000.0000000|input,conv1x1-bn-relu,maxpool3x3," \
               "maxpool3x3,maxpool3x3,maxpool3x3,output"
    small = space.to_graph(unpruned)
    assert small.ops == ("input", "conv1x1-bn-relu", "output") and set(small.edges) == {(0, 1), (1, 2), (0, 2)}


def test_cells_with_fewer_vertices_tokenise_and_pad_to_seven(space):
    tokenizer = CellTokenizer(space.op_vocab)
    five = space.to_graph("01100.00010.00011.00001.00000|input,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,output")
    batch = tokenizer.encode([five, space.to_graph(PUBLISHED)])
    assert batch.tokens.shape == (2, 7, 128) and batch.adj.shape == (2, 7, 7)
    assert batch.mask[0].tolist() == [True] * 5 + [False] * 2 and batch.mask[1].all()
    assert torch.all(batch.tokens[0, 5:] == 0)
    assert torch.all(batch.adj[0, 5:] == 0) and torch.all(batch.adj[0, :, 5:] == 0)
    assert torch.equal(batch.adj, batch.adj.transpose(1, 2)) and batch.adj[0, 0, 2] == 1 == batch.adj[0, 2, 0]
    assert tokenizer.op_codes(five) == [0, 1, 3, 2, 4]  # spec 1.2 labels
    alone = tokenizer.encode([five])
    assert torch.equal(alone.tokens[0], batch.tokens[0, :5]), "padding does not change the real rows"


def test_ac_relabelling_gives_a_valid_cell_with_the_same_hash(space):
    graph = space.to_graph(PUBLISHED)
    relabelled = isomorphic_relabel(graph)
    assert relabelled != graph
    cell = Cell(relabelled.adjacency(), relabelled.ops)
    assert cell_hash(cell) == PUBLISHED_HASH
    assert spec_to_arch(cell.matrix, cell.ops) in space.equivalent_archs(PUBLISHED)


# -- whole networks ---------------------------------------------------------------------------------
def _require_nasbench_pytorch() -> None:
    if importlib.util.find_spec("nasbench_pytorch") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("nasbench-pytorch is required in CI (the dev extra installs it)")
        pytest.skip("nasbench-pytorch is not installed")


def test_trainable_parameters_match_the_benchmark(space):
    _require_nasbench_pytorch()
    from search_spaces.onnx_export import count_params

    # official trainable_parameters: 8,555,530 for the published cell (the NNI example's 8.55553 M);
    # 2,694,282 for the Inception-like cell (google-research/nasbench NASBench.ipynb output)
    assert count_params(space.build_network(PUBLISHED)) == 8_555_530
    assert count_params(space.build_network(spec_to_arch(*INCEPTION_STORED))) == 2_694_282


def test_network_exports_to_a_weight_free_onnx_graph(space):
    _require_nasbench_pytorch()
    network = space.build_network(SMALL)
    assert network(torch.zeros(space.network_input_shape(SMALL, batch=2))).shape == (2, 10)
    from nas_predictor.data.latency_graphs import network_graph

    graph = network_graph(space, SMALL)
    assert graph.ops[0] == "Input" and graph.ops.count("Gemm") == 1
    assert graph.ops.count("Conv") == 1 + 9 * 2  # stem, and per cell the input projection and the 1x1 conv
    assert graph.scalars["batch_size"] == 1 and graph.scalars["flops"] > 1e6 and graph.scalars["params"] > 1e4
    assert network_graph(space, space.canonical(SMALL)) is graph


def test_missing_nasbench_pytorch_names_the_extra(space, monkeypatch):
    monkeypatch.setitem(sys.modules, "nasbench_pytorch", None)
    monkeypatch.setitem(sys.modules, "nasbench_pytorch.model", None)
    with pytest.raises(ImportError, match=r'pip install "nas-predictor\[nb101\]"'):
        space.build_network(SMALL)
