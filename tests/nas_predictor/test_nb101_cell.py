"""NAS-Bench-101 cell logic: the arch-string format, validation messages, official pruning and hashing."""

import itertools

import numpy as np
import pytest

from nas_predictor.errors import ArchError
from nas_predictor.nb101_cell import (
    Cell,
    arch_to_spec,
    canonical_arch,
    canonical_cell,
    cell_hash,
    format_arch,
    hash_module,
    parse_arch,
    prune,
    spec_to_arch,
)

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
EXAMPLE = (
    "0110000.0001000.0000100.0000010.0000001.0000001.0000000"
    "|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,output"
)

# A published (spec, official hash) pair. NNI's NAS-Bench-101 example (microsoft/nni,
# examples/nas/benchmarks/api_example.ipynb and its documented query_nb101_trial_stats output) gives
# this cell as op1..op5 = conv3x3, maxpool, conv3x3, conv3x3, conv1x1 with inputs 1:[0] 2:[1] 3:[2] 4:[0]
# 5:[0,3,4] 6:[2,5] and 'hash': '00005c142e6f48ac74fdcf73e3439874' (valid 92.4179 / test 92.1174 for one
# run, 8.55553 M parameters); the Rust port's documentation (docs.rs/nasbench) queries the same adjacency
# 0100110001000000010010000010000001000000010000000 and gets those two accuracies; NASLib's
# tests/test_nb101_search_space.py lists the hash among the benchmark's 423,624 hashes.
PUBLISHED_MATRIX = [
    [0, 1, 0, 0, 1, 1, 0],
    [0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
PUBLISHED_OPS = ["input", C3, MP, C3, C3, C1, "output"]
PUBLISHED_HASH = "00005c142e6f48ac74fdcf73e3439874"

# The official README / NASBench.ipynb query: the Inception-like spec below is answered with the stored
# module_adjacency / module_operations printed under it (google-research/nasbench NASBench.ipynb), i.e.
# the two specs have the same official hash.
INCEPTION_QUERY = (
    [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, C3, MP, "output"],
)
INCEPTION_STORED = (
    [[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, C3, C3, "output"],
)


def test_arch_string_round_trip_and_spec_helpers():
    cell = parse_arch(EXAMPLE)
    assert cell.num_vertices == 7 and cell.num_edges == 7
    assert cell.edges == [(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6)]
    assert format_arch(cell) == EXAMPLE
    matrix, ops = arch_to_spec(EXAMPLE)
    assert matrix.dtype == np.int8 and matrix.shape == (7, 7) and ops[0] == "input"
    assert spec_to_arch(matrix, ops) == EXAMPLE
    assert canonical_arch(EXAMPLE) == EXAMPLE  # the module docstring's example is a valid, pruned cell


@pytest.mark.parametrize(
    "arch, message",
    [
        ("0110000", "expected '<rows>|<ops>'"),
        ("01.0x|input,output", r"row 1 of .* is '0x'"),
        ("01.00.00|input,output", r"adjacency must be 2x2 for 2 ops, got 3 rows"),
        ("01.10|input,output", r"not upper triangular: entry \(1, 0\)"),
        ("11.00|input,output", r"not upper triangular: entry \(0, 0\)"),
        ("010.001.000|input,conv5x5,output", "unknown op 'conv5x5' at vertex 1"),
        ("010.001.000|conv3x3-bn-relu,conv3x3-bn-relu,output", "first op must be 'input'"),
        ("010.001.000|input,conv3x3-bn-relu,maxpool3x3", "last op must be 'output'"),
        ("0|input", "at least the input and output"),
    ],
)
def test_malformed_specs_say_what_is_wrong(arch, message):
    with pytest.raises(ArchError, match=message):
        parse_arch(arch)


def test_matrix_entries_must_be_0_or_1():
    with pytest.raises(ArchError, match=r"entry \(0, 1\) is 2"):
        Cell([[0, 2], [0, 0]], ("input", "output"))
    with pytest.raises(ArchError, match="arch must be a string"):
        parse_arch(None)


def test_pruning_matches_the_official_cases():
    # cases of google-research/nasbench nasbench/tests/model_spec_test.py (written for this format)
    island = Cell([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], ("input", C3, MP, "output"))
    assert prune(island) == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ("input", C3, "output"))
    dangling_out = Cell([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ("input", C3, MP, "output"))
    assert prune(dangling_out) == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ("input", MP, "output"))
    dangling_in = Cell([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ("input", C3, MP, "output"))
    assert prune(dangling_in) == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ("input", MP, "output"))
    full = Cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ("input", C3, MP, "output"))
    assert prune(full) is full


@pytest.mark.parametrize(
    "matrix",
    [
        [[0, 0], [0, 0]],
        [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    ],
)
def test_no_input_output_path_is_invalid(matrix):
    ops = ("input",) + (C3,) * (len(matrix) - 2) + ("output",)
    with pytest.raises(ArchError, match="no path from input to output"):
        prune(Cell(matrix, ops))


def test_the_edge_limit_applies_to_the_pruned_spec():
    live = np.eye(7, k=1, dtype=int)  # the chain 0 -> 1 -> ... -> 6
    for i, j in [(0, 2), (0, 3), (1, 3), (2, 4)]:
        live[i, j] = 1
    with pytest.raises(ArchError, match="too many edges: 10 after pruning"):
        canonical_cell(Cell(live, ("input",) + (C3,) * 5 + ("output",)))
    # 10 edges before pruning, 3 after: valid, as the official _check_spec counts the pruned matrix
    spec = np.zeros((7, 7), dtype=int)
    for i, j in [(0, 1), (1, 6), (0, 6), (0, 2), (2, 3), (2, 4), (2, 5), (3, 4), (3, 5), (4, 5)]:
        spec[i, j] = 1  # vertices 2..5 never reach the output
    pruned = canonical_cell(Cell(spec, ("input",) + (C3,) * 5 + ("output",)))
    assert pruned == Cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ("input", C3, "output"))


def test_too_many_vertices_after_pruning_is_invalid():
    n = 8
    chain = np.eye(n, k=1, dtype=int)
    with pytest.raises(ArchError, match="too many vertices: 8 after pruning"):
        canonical_cell(Cell(chain, ("input",) + (C3,) * (n - 2) + ("output",)))


def test_official_hash_of_a_published_cell():
    assert cell_hash(Cell(PUBLISHED_MATRIX, tuple(PUBLISHED_OPS))) == PUBLISHED_HASH


def test_the_official_query_and_its_stored_module_share_the_hash():
    query, stored = (Cell(m, tuple(o)) for m, o in (INCEPTION_QUERY, INCEPTION_STORED))
    assert query != stored and cell_hash(query) == cell_hash(stored)


def test_hash_is_invariant_to_relabelling_and_sees_labels_and_direction():
    # cases of google-research/nasbench nasbench/tests/graph_util_test.py::test_hash_module
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert hash_module(diamond, [-1, 1, 2, -2]) == hash_module(diamond, [-1, 2, 1, -2])
    chain = [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert hash_module(chain, [-1, 1, 0, 0, -2]) != hash_module(chain, [-1, 0, 0, 1, -2])
    skip = [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert hash_module(skip, [-1, 1, 0, -2]) != hash_module(skip, [-1, 0, 1, -2])
    # every topological relabelling of the published cell keeps its hash
    matrix = np.array(PUBLISHED_MATRIX)
    for middle in itertools.permutations(range(1, 6)):
        order = [0, *middle, 6]
        permuted = matrix[np.ix_(order, order)]
        if np.all(np.tril(permuted) == 0):
            cell = Cell(permuted, tuple(PUBLISHED_OPS[v] for v in order))
            assert cell_hash(cell) == PUBLISHED_HASH


def test_hash_of_an_unpruned_spec_is_that_of_its_pruned_form():
    dangling = np.zeros((7, 7), dtype=int)
    dangling[0, 1] = dangling[1, 6] = dangling[0, 2] = 1  # vertex 2 dangles, 3..5 are isolated
    pruned = Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ("input", C1, "output"))
    assert cell_hash(Cell(dangling, ("input", C1, MP, C3, C3, C3, "output"))) == cell_hash(pruned)
