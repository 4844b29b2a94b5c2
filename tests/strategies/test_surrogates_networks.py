"""The online surrogate and the search on spaces of whole networks: network tokens cached per network,
and one network under two ids (a choice its export drops, an identity skip moved) evaluated once."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from search_spaces.fbnet import FBNetSpace
from search_spaces.nasbench201 import NASBench201
from search_spaces.python_space import PythonSpace, graph_key
from strategies import surrogates
from strategies.base import SearchContext
from strategies.history import SearchHistory
from strategies.oracle import FunctionOracle
from strategies.random_search import RandomSearch
from strategies.runner import make_strategy, run_search
from strategies.surrogates import OnlineSurrogate

# 36 ids, 18 networks: the dropout rate is dropped by the eval-mode export, so it never changes the graph
CHOICES = {"depth": (1, 2, 3), "width": (8, 16, 32), "kernel": (3, 5), "dropout": (0.0, 0.5)}


def build(c: dict) -> nn.Module:
    layers, width = [], 3
    for _ in range(c["depth"]):
        layers += [nn.Conv2d(width, c["width"], c["kernel"], padding=c["kernel"] // 2), nn.ReLU()]
        width = c["width"]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(c["dropout"]), nn.Linear(width, 10))


@pytest.fixture(scope="module")
def space():
    return PythonSpace("surrogate_networks_cnn", CHOICES, build, (1, 3, 16, 16))


def value(space, arch: str) -> float:
    c = space.config(arch)
    return 50.0 + c["width"] / 4 + 3.0 * c["depth"] + c["kernel"]


class CountingOracle(FunctionOracle):
    def __init__(self, fn) -> None:
        super().__init__(fn, name="made-up accuracy")
        self.calls: list[str] = []

    def _evaluate(self, arch):
        self.calls.append(arch)
        return super()._evaluate(arch)


def test_ids_of_one_network_share_the_key_and_others_do_not(space):
    same = ["depth=2|width=16|kernel=3|dropout=0.0", "depth=2|width=16|kernel=3|dropout=0.5"]
    assert space.to_graph(same[0]).to_dict() == space.to_graph(same[1]).to_dict()
    assert space.equivalence_key(same[0]) == space.equivalence_key(same[1])
    assert len({space.equivalence_key(a) for a in space}) == len(space) // 2


def test_online_surrogate_scores_networks_from_cached_tokens_like_the_predictor(space, monkeypatch):
    archs = list(space)
    rng = np.random.default_rng(0)
    train = [archs[i] for i in rng.permutation(len(archs))[:12]]
    surrogate = OnlineSurrogate(space.name, min_points=4, steps=40, seed=1)
    surrogate.update([{"arch": a, "value": value(space, a), "status": "ok"} for a in train])
    assert surrogate.ready() and surrogate.whole_network and set(surrogate._graphs) == set(train)
    assert type(surrogate._models[0].tokenizer).__name__ == "NetworkTokenizer"
    first = surrogate.score(archs[5:])
    again = surrogate.score(archs[::-1])  # cached tokens, another order
    direct = surrogate._models[0].predict(archs)
    assert np.allclose(first, direct[5:], atol=1e-4) and np.allclose(again, direct[::-1], atol=1e-4)
    # scores are kept until the next refit: asking again computes nothing
    monkeypatch.setattr(surrogate, "_fitted_scores", lambda archs: pytest.fail(f"{len(archs)} scored again"))
    assert np.array_equal(surrogate.score(archs[5:]), first)
    monkeypatch.undo()
    surrogate._scores.clear()  # as a refit does: the next scores come from the tokens again
    monkeypatch.setattr(surrogates, "TOKEN_CACHE_NODES", 20)  # the cache drops the oldest networks
    assert np.allclose(surrogate.score(archs), direct, atol=1e-4)
    assert surrogate._network_nodes <= 20 or len(surrogate._network_tokens) == 1


def test_one_network_under_two_ids_is_evaluated_once(space):
    oracle = CountingOracle(lambda a: value(space, a))
    summary = run_search(space, RandomSearch(), oracle, 30, seed=0, progress=False, plots=False)
    keys = [space.equivalence_key(a) for a in oracle.calls]
    assert len(oracle.calls) == summary["evaluations"] == 18 and len(set(keys)) == 18
    assert summary["stop"].startswith("stalled")  # the 18 other ids were all known networks


def test_predictor_search_with_the_online_surrogate_on_a_python_space(space):
    oracle = CountingOracle(lambda a: value(space, a))
    surrogate = OnlineSurrogate(space.name, refit_every=3, min_points=4, steps=40, seed=0)
    strategy = make_strategy("predictor", num_init=6, top_k=2, num_local=1)
    summary = run_search(space, strategy, oracle, 12, seed=0, surrogate=surrogate, progress=False, plots=False)
    assert summary["evaluations"] == 12 and summary["surrogate_fits"] >= 2
    assert len({space.equivalence_key(a) for a in oracle.calls}) == 12


def test_fbnet_identity_skips_moved_within_a_stage_are_one_network():
    space = FBNetSpace()
    ops = ["k3_e1"] * 22
    # layers 1-4 are the second stage (16 -> 24 channels at layer 1, stride 1): layers 2-4 keep its shape
    a = ops[:2] + ["skip", "k5_e6"] + ops[4:]
    b = ops[:2] + ["k5_e6", "skip"] + ops[4:]
    first_layer_skip = ops[:1] + ["skip"] + ops[2:]  # 16 -> 24 channels: a 1x1 conv, not an identity
    a, b, first_layer_skip = (space.canonical(x) for x in (a, b, first_layer_skip))
    assert space.equivalence_key(a) == space.equivalence_key(b) != space.equivalence_key(space.canonical(ops))
    assert graph_key(space.to_graph(a)) == graph_key(space.to_graph(b))
    assert space.equivalence_key(first_layer_skip) != space.equivalence_key(space.canonical(ops[:2] + ["skip"] + ops[3:]))
    members = space.equivalent_archs(a)
    assert a in members and b in members and len(members) == len(set(members)) == 3
    assert {space.equivalence_key(m) for m in members} == {space.equivalence_key(a)}
    ctx = SearchContext(space, CountingOracle(lambda x: 1.0), 5, np.random.default_rng(0), SearchHistory(None, {}),
                        progress=False)
    assert ctx.evaluate(b) is ctx.evaluate(a) and ctx.spent == 1 and ctx.known(a) is not None


def test_a_cell_space_still_evaluates_equivalent_cells_separately():
    space = NASBench201()
    arch = next(a for a in (space.arch_from_index(i) for i in range(200)) if len(space.equivalent_archs(a)) > 1)
    other = next(m for m in space.equivalent_archs(arch) if m != arch)
    ctx = SearchContext(space, CountingOracle(lambda x: 1.0), 5, np.random.default_rng(0), SearchHistory(None, {}),
                        progress=False)
    ctx.evaluate(arch)
    ctx.evaluate(other)
    assert ctx.spent == 2 and ctx.known(other) is not None
