"""The SearchSpace contract, run against every installed space (entry points), a Python-defined one and
an NNI model space (with the [nni] extra)."""

import numpy as np
import pytest

from nas_predictor.data.latency_graphs import network_graph
from nas_predictor.errors import ArchError
from nas_predictor.graph import ArchGraph
from nas_predictor.spaces import SearchSpace, available_spaces, get_space
from tests.python_spaces import NAME as PYTHON_SPACE
from tests.python_spaces import contract_space

# a space defined in Python (search_spaces.python_space) meets the same contract as the installed ones,
# and so does an NNI model space (search_spaces.nni_space) where NNI is installed
contract_space()
try:
    from tests.nni_spaces import NAME as NNI_SPACE
    from tests.nni_spaces import contract_space as nni_contract_space

    nni_contract_space()
except ImportError:
    NNI_SPACE = None
SPACES = available_spaces()


def test_installed_and_python_spaces_are_found():
    assert "nasbench201" in SPACES and PYTHON_SPACE in SPACES
    assert NNI_SPACE is None or NNI_SPACE in SPACES


@pytest.fixture(params=SPACES)
def space(request):
    return get_space(request.param)


def test_samples_become_valid_graphs_with_known_ops(space):
    from nas_predictor.op_vocab import OP_GROUP_INDEX

    rng = np.random.default_rng(0)
    for _ in range(20):
        graph = space.to_graph(space.sample(rng))
        assert isinstance(graph, ArchGraph)
        # a space with no op vocabulary of its own reads whole networks: their ops are ONNX ops the
        # network tokenizer knows (op_vocab.OP_GROUP_INDEX) or the graph's Input nodes
        known = set(space.op_vocab) or {*OP_GROUP_INDEX, "Input"}
        assert set(graph.ops) <= known


def test_mutation_changes_the_arch_and_is_a_neighbour(space):
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    neighbours = space.neighbours(arch)
    assert arch not in neighbours and len(set(neighbours)) == len(neighbours)
    for _ in range(10):
        child = space.mutate(arch, rng)
        assert child != arch and child in neighbours


def test_equivalent_archs_share_the_key_and_include_the_arch(space):
    rng = np.random.default_rng(2)
    for _ in range(20):
        arch = space.sample(rng)
        members = space.equivalent_archs(arch)
        assert arch in members
        assert {space.equivalence_key(m) for m in members} == {space.equivalence_key(arch)}


def _has_categorical_view(space) -> bool:
    try:
        space.choices()
    except NotImplementedError:
        return False
    return True


def test_to_choices_names_the_arch_in_the_categorical_view(space):
    """to_choices is from_choices's inverse up to canonical strings, with the allowed values themselves."""
    rng = np.random.default_rng(6)
    archs = [space.sample(rng) for _ in range(20)]
    if not _has_categorical_view(space):
        with pytest.raises(NotImplementedError, match=space.name):
            space.to_choices(archs[0])
        with pytest.raises(NotImplementedError, match=space.name):
            space.from_choices({})
        return
    decisions = space.choices()
    for arch in archs:
        values = space.to_choices(arch)
        assert list(values) == [name for name, _ in decisions]
        for name, allowed in decisions:
            # the very value (type too: True is not 1 to a sampler comparing categories)
            assert any(type(v) is type(values[name]) and v == values[name] for v in allowed), (name, values[name])
        assert space.from_choices(values) == space.canonical(arch)


@pytest.mark.parametrize("malformed", ["not an arch", ""])
def test_to_choices_of_a_malformed_arch_is_an_arch_error(space, malformed):
    if not _has_categorical_view(space):
        pytest.skip(f"{space.name} has no categorical view")
    with pytest.raises(ArchError):
        space.to_choices(malformed)


def test_a_space_without_a_categorical_view_raises_from_choices_both_ways():
    class Bare(SearchSpace):
        name = "bare"
        to_graph = sample = mutate = neighbours = None

    with pytest.raises(NotImplementedError, match="'bare' has no categorical view"):
        Bare().to_choices("anything")
    with pytest.raises(NotImplementedError, match="'bare' has no categorical view"):
        Bare().from_choices({})


NETWORK_SPACES = ["nasbench201", "fbnet", "ofa_mbv3", PYTHON_SPACE]


@pytest.mark.parametrize("name", NETWORK_SPACES)
def test_network_graphs_are_onnx_graphs_with_costs(name):
    space = get_space(name)
    arch = space.sample(np.random.default_rng(3))
    graph = network_graph(space, arch)
    assert graph.ops[0] == "Input" and "Conv" in graph.ops and graph.ops.count("Gemm") == 1
    assert graph.scalars["batch_size"] == 1 and graph.scalars["flops"] > 1e6 and graph.scalars["params"] > 1e4
    assert network_graph(space, space.canonical(arch)) is graph, "exports are cached by canonical string"


# spaces that write their networks' ONNX themselves (SearchSpace.network_onnx overridden)
WRITING_SPACES = [n for n in NETWORK_SPACES if type(get_space(n)).network_onnx is not SearchSpace.network_onnx]


def test_the_spaces_that_write_their_onnx_are_found():
    assert "nasbench201" in WRITING_SPACES


@pytest.mark.parametrize("name", WRITING_SPACES)
def test_a_space_that_writes_its_onnx_gives_the_exported_graph(name):
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx

    space = get_space(name)
    arch = space.sample(np.random.default_rng(5))
    written = space.network_onnx(arch)
    exported = export_onnx(space.build_network(arch), space.network_input_shape(arch))
    assert onnx_to_graph(written).to_dict() == onnx_to_graph(exported).to_dict()
