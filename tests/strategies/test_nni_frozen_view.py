"""strategies.nni_bridge.frozen_view: a sample's network read from the model space's own modules has the graph of
the network NNI's freeze builds, on many samples of the test spaces (every kind of mutable, a mobile CNN of
Repeat and mutable widths, the hub's NAS-Bench-201), and leaves the model space as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.strategies.nni_support import import_nni

nni = import_nni()

from nni.nas.hub.pytorch import NasBench201  # noqa: E402
from nni.nas.space import SimplifiedModelSpace  # noqa: E402

from nas_predictor.onnx import onnx_to_graph  # noqa: E402
from nas_predictor.onnx.export import export_onnx  # noqa: E402
from nas_predictor.onnx.fragments import FragmentCache, module_graph  # noqa: E402
from search_spaces.python_space import graph_key  # noqa: E402
from strategies.nni_bridge.frozen_view import graph_freezer  # noqa: E402
from strategies.nni_bridge.space import nni_space  # noqa: E402
from tests.nni_spaces import INPUT_SHAPE, TinyNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))

from nni_graph_speed import mobile_space  # noqa: E402


def assert_views_are_frozen_networks(space, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cache = FragmentCache()
    shape = space.network_input_shape("")
    for _ in range(count):
        arch = space.sample(rng)
        frozen = onnx_to_graph(export_onnx(space.build_network(arch), shape))
        view = module_graph(space.graph_network(arch), shape, cache)
        assert graph_key(view) == graph_key(frozen), arch


def test_views_of_a_space_with_every_kind_of_mutable_are_its_frozen_networks():
    space = nni_space(TinyNet(), INPUT_SHAPE, "view_tiny")
    assert space.graph_freeze is not None
    assert_views_are_frozen_networks(space, 24, 0)


def test_views_of_repeated_blocks_with_mutable_widths_and_kernels_are_their_frozen_networks():
    space = nni_space(mobile_space(), (1, 3, 32, 32), "view_mobile")
    assert_views_are_frozen_networks(space, 8, 1)


def test_views_of_the_hub_nas_bench_201_are_its_frozen_networks_and_leave_it_as_it_was():
    model_space = NasBench201()
    before = {name: (id(p), p.requires_grad) for name, p in model_space.named_parameters()}
    modules = {name: id(m) for name, m in model_space.named_modules()}
    space = nni_space(model_space, (1, 3, 32, 32), "view_nb201")
    assert_views_are_frozen_networks(space, 6, 2)
    assert {name: (id(p), p.requires_grad) for name, p in model_space.named_parameters()} == before
    assert {name: id(m) for name, m in model_space.named_modules()} == modules
    assert all(m.training for m in model_space.modules())


def test_a_simplified_model_space_is_viewed_from_a_supernet_built_once():
    freeze = graph_freezer(SimplifiedModelSpace.from_model(TinyNet()))
    space = nni_space(TinyNet(), INPUT_SHAPE, "view_simplified")
    rng = np.random.default_rng(3)
    for _ in range(6):
        arch = space.sample(rng)
        frozen = onnx_to_graph(export_onnx(space.build_network(arch), INPUT_SHAPE))
        assert graph_key(module_graph(freeze(space.to_sample(arch)), INPUT_SHAPE)) == graph_key(frozen)
    assert freeze.__self__._supernet is not None


def test_a_space_that_builds_from_its_own_choices_is_frozen_as_nni_does():
    from own_space_digits_nni import DigitsModelSpace

    space = nni_space(DigitsModelSpace(), (1, 1, 16, 16), "view_digits")
    arch = space.sample(np.random.default_rng(4))
    network = space.graph_network(arch)  # the view cannot apply: its __init__ reads the sample itself
    assert space.graph_freeze is None
    assert graph_key(module_graph(network, (1, 1, 16, 16))) == graph_key(
        onnx_to_graph(export_onnx(space.build_network(arch), (1, 1, 16, 16))))


def test_the_space_reads_its_graphs_from_views_and_stitched_fragments(monkeypatch):
    space = nni_space(NasBench201(), (1, 3, 32, 32), "view_nb201_space")
    monkeypatch.setattr(space, "build_network", pytest.fail)  # past the audit, no network is frozen
    space._audited = space.AUDITED_GRAPHS
    rng = np.random.default_rng(5)
    graphs = [space.to_graph(space.sample(rng)) for _ in range(3)]
    assert space.graph_paths["stitched"] == 3 and all(g.ops.count("Conv") >= 3 for g in graphs)
