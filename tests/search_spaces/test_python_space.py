"""A space defined in Python (choices + a builder + an input shape) is a full SearchSpace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_predictor.data.latency_graphs import _cache_file, network_graph
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.export import export_onnx
from nas_predictor.errors import ArchError, ConfigError
from nas_predictor.spaces import available_spaces, get_space
from tests.python_spaces import plain_cnn
from search_spaces.python_space import PythonSpace, floats, graph_key, ints
from strategies.evolution import RegularizedEvolution
from strategies.oracle import FunctionOracle
from strategies.random_search import RandomSearch
from strategies.runner import run_search

CHOICES = {"depth": ints(1, 3), "width": (8, 16), "kernel": (3, 5), "act": ("relu", "hardswish"),
           "dropout": floats(0.0, 0.2, 3)}


build = plain_cnn  # tests/python_spaces.py


@pytest.fixture
def space():
    return PythonSpace("tiny_cnn", CHOICES, build, (1, 3, 16, 16))


def test_ids_are_readable_stable_and_round_trip(space):
    arch = space.arch_of({"depth": 2, "width": 16, "kernel": 5, "act": "relu", "dropout": 0.1})
    assert arch == "depth=2|width=16|kernel=5|act=relu|dropout=0.1"
    assert space.config(arch) == {"depth": 2, "width": 16, "kernel": 5, "act": "relu", "dropout": 0.1}
    assert space.canonical(arch) == arch and len(space) == 3 * 2 * 2 * 2 * 3 == len(list(space))
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = space.sample(rng)
        assert space.arch_of(space.config(a)) == a


@pytest.mark.parametrize("bad, says", [
    ("depth=2|width=16|kernel=5|act=relu", "lacks ['dropout']"),
    ("depth=9|width=16|kernel=5|act=relu|dropout=0.1", "depth=9 is not one of [1, 2, 3]"),
    ("depth=2|width=16|kernel=5|act=relu|dropout=0.1|x=1", "'x=1'"),
    ("depth=2|depth=2|width=16|kernel=5|act=relu|dropout=0.1", "given twice"),
    ("|nor_conv_3x3~0|+|", "is not name=value"),
])
def test_a_malformed_id_is_an_error_naming_the_problem(space, bad, says):
    with pytest.raises(ArchError, match=r"tiny_cnn") as err:
        space.config(bad)
    assert says in str(err.value)


def test_mutations_stay_in_the_domains_and_are_neighbours(space):
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    near = space.neighbours(arch)
    assert len(near) == len(set(near)) == sum(len(v) - 1 for v in CHOICES.values()) and arch not in near
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert child in near
        changed = [k for k in CHOICES if space.config(child)[k] != space.config(arch)[k]]
        assert len(changed) == 1 and space.config(child)[changed[0]] in CHOICES[changed[0]]


def test_choices_round_trip_and_accept_numpy_values(space):
    assert space.choices() == list(CHOICES.items())
    values = {k: np.asarray(v[-1])[()] if not isinstance(v[-1], str) else v[-1] for k, v in CHOICES.items()}
    assert space.from_choices(values) == "depth=3|width=16|kernel=5|act=hardswish|dropout=0.2"


def test_valid_rejects_combinations_everywhere():
    space = PythonSpace("tiny_valid", CHOICES, build, (1, 3, 16, 16), valid=lambda c: c["depth"] < 3 or c["width"] == 8)
    rng = np.random.default_rng(2)
    assert all(not (space.config(a)["depth"] == 3 and space.config(a)["width"] == 16)
               for a in (space.sample(rng) for _ in range(100)))
    assert all(space.config(a)["width"] == 8 for a in space.neighbours("depth=2|width=16|kernel=3|act=relu|dropout=0.0")
               if space.config(a)["depth"] == 3)
    with pytest.raises(ArchError, match="rejected by the space's valid"):
        space.config("depth=3|width=16|kernel=3|act=relu|dropout=0.0")


@pytest.mark.parametrize("kwargs, says", [
    ({"choices": {}}, "has no choices"),
    ({"choices": {"w": (8, 8)}}, "repeats a value"),
    ({"choices": {"w": (8, None)}}, "is not a string"),
    ({"choices": {"w": ("a|b",)}}, "holds"),
    ({"choices": {"w": (float("nan"),)}}, "finite float"),
    ({"input_shape": (2, 3, 16, 16)}, "batch-1 shape"),
    ({"name": "no spaces"}, "letters, digits"),
    ({"name": "nasbench201"}, "taken by an installed space"),
])
def test_a_bad_definition_is_a_config_error(kwargs, says):
    args = {"name": "tiny_bad", "choices": CHOICES, "build": build, "input_shape": (1, 3, 16, 16), **kwargs}
    with pytest.raises(ConfigError, match=says):
        PythonSpace(**args)


def test_the_graph_is_the_built_network_and_the_disk_cache_follows_the_definition(space, tmp_path):
    arch = "depth=2|width=16|kernel=5|act=hardswish|dropout=0.0"
    graph = space.to_graph(arch)
    assert graph.ops.count("Conv") == 2 and "HardSwish" in graph.ops and graph.ops.count("Gemm") == 1
    assert graph.scalars["params"] == sum(p.numel() for p in build(space.config(arch)).parameters())
    assert network_graph(space, arch) is graph
    assert get_space("tiny_cnn") is space and "tiny_cnn" in available_spaces()
    before = _cache_file("tiny_cnn", tmp_path).name
    assert before.startswith("tiny_cnn-") and before != "tiny_cnn-graphs-v1.jsonl.gz"
    PythonSpace("tiny_cnn", {**CHOICES, "width": (8, 16, 32)}, build, (1, 3, 16, 16))
    assert _cache_file("tiny_cnn", tmp_path).name != before, "a changed definition files its graphs elsewhere"


def test_graphs_are_stitched_from_module_fragments_and_equal_the_export():
    space = PythonSpace("tiny_stitched", CHOICES, build, (1, 3, 16, 16))
    rng = np.random.default_rng(4)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(12)))
    for arch in archs:
        expected = onnx_to_graph(export_onnx(space.build_network(arch), (1, 3, 16, 16)))
        assert graph_key(space.to_graph(arch)) == graph_key(expected), arch
    assert space.graph_paths["stitched"] == len(archs) and not space.graph_paths["exported"]
    assert network_graph(space, archs[0]) is space.to_graph(archs[0]), "network_graph finds the stitched graph"


def test_a_stitched_graph_that_differs_from_the_export_stops_the_stitching(monkeypatch):
    import nas_predictor.onnx.fragments as fragments

    space = PythonSpace("tiny_audited", CHOICES, build, (1, 3, 16, 16))
    wrong = space.to_graph("depth=1|width=8|kernel=3|act=relu|dropout=0.0")
    monkeypatch.setattr(fragments, "module_graph", lambda module, shape: wrong)
    space._audited = 0
    arch = "depth=3|width=16|kernel=5|act=hardswish|dropout=0.2"
    with pytest.warns(RuntimeWarning, match="differs from the export .* exported from now on"):
        graph = space.to_graph(arch)
    assert graph.ops.count("Conv") == 3 and not space.stitch_graphs
    assert space.to_graph("depth=2|width=8|kernel=5|act=relu|dropout=0.1").ops.count("Conv") == 2
    assert space.graph_paths["exported"] == 2


def test_a_network_the_stitching_refuses_is_exported_and_the_reason_counted():
    class Gated(torch.nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, width, 3)

        def forward(self, x):
            y = self.conv(x)
            return y if float(y.mean()) > -1e9 else -y  # a Python branch on a value

    space = PythonSpace("tiny_refused", {"width": (4, 8)}, lambda c: Gated(c["width"]), (1, 3, 8, 8))
    assert space.to_graph("width=8").ops.count("Conv") == 1
    assert space.graph_paths["exported"] == 1
    assert any(reason.startswith("refused: ") for reason in space.graph_paths)


def test_a_builder_that_returns_no_module_is_named():
    space = PythonSpace("tiny_broken", {"w": (1, 2)}, lambda c: "not a network", (1, 3, 8, 8))
    with pytest.raises(ConfigError, match="returned str, not a torch.nn.Module"):
        space.to_graph("w=1")


@pytest.mark.parametrize("strategy", [RandomSearch(), RegularizedEvolution(population=6, sample_size=3)])
def test_it_drives_a_search_that_resumes(space, strategy, tmp_path):
    def score(arch: str) -> float:  # a made-up objective: wider and deeper is better, dropout costs
        c = space.config(arch)
        return c["width"] * c["depth"] - 10 * c["dropout"]

    first = run_search(space, strategy, FunctionOracle(score), budget=8, seed=3, out_dir=tmp_path, progress=False,
                       plots=False)
    again = run_search(space, strategy, FunctionOracle(score), budget=8, seed=3, out_dir=tmp_path, progress=False,
                       plots=False)
    assert first["evaluations"] == 8 and again["history_records_before"] == 8
    assert again["best"]["arch"] == first["best"]["arch"]
    assert all(space.canonical(a) == a for a in first["evaluated_archs"])
