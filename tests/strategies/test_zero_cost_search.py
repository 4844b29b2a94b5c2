"""The search reads zero-cost proxies (issue 31): the warm start's tournament by the proxies' vote, and an
online surrogate that reads them in every refit with one scaler for the whole search."""

from __future__ import annotations

import numpy as np
import pytest

from nas_predictor.errors import ConfigError
from nas_predictor.proxy_features import SCALAR_PREFIX
from nas_predictor.zero_cost_store import builds_networks, proxy_vote
from nas_predictor.spaces import SearchSpace
from search_spaces.nasbench201 import NASBench201
from strategies.oracle import FunctionOracle
from strategies.runner import make_strategy, run_search
from strategies.surrogates import FunctionSurrogate, OnlineSurrogate
from tests.python_spaces import contract_space


def test_the_vote_is_the_mean_rank_over_the_proxies(tmp_path):
    space = contract_space()
    archs = list(dict.fromkeys(space.sample(np.random.default_rng(s)) for s in range(8)))[:5]
    votes = proxy_vote(space, archs, ["params", "flops"], cache=tmp_path, batch_size=4)
    from nas_predictor.zero_cost_store import space_proxies

    scores = space_proxies(space, archs, cache=tmp_path, batch_size=4, progress=False)
    params = np.array([scores[space.canonical(a)]["params"] for a in archs])
    assert votes.shape == (5,) and votes.min() >= 0 and votes.max() <= 1
    assert np.argmax(votes) == np.argmax(params)  # params and FLOPs agree on the largest network here
    assert list(proxy_vote(space, archs[:1], cache=tmp_path, batch_size=4)) == [0.0]


def test_the_zero_cost_warm_start_evaluates_each_tournaments_best_by_the_vote(monkeypatch, tmp_path):
    import strategies.predictor_search as search

    monkeypatch.setenv("NAS_PREDICTOR_CACHE", str(tmp_path))
    tournaments = []

    def vote(space, archs, *args, **kwargs):
        scores = proxy_vote(space, archs, ["params"], batch_size=4)
        tournaments.append((list(archs), scores))
        return scores

    monkeypatch.setattr(search, "proxy_vote", vote)
    evaluated = []
    space = contract_space()
    strategy = make_strategy("predictor", num_init=3, warm_start="zero_cost", proxy_tournament=4)
    run_search(space, strategy, FunctionOracle(lambda a: evaluated.append(a) or float(len(evaluated))), 3, seed=0,
               surrogate=FunctionSurrogate(lambda archs: [0.0] * len(archs)), progress=False, plots=False)
    assert len(tournaments) == 3 and len(evaluated) == 3
    assert evaluated == [drawn[int(np.argmax(scores))] for drawn, scores in tournaments]


class NoNetworks(NASBench201):
    build_network = SearchSpace.build_network


def test_the_zero_cost_warm_start_on_a_space_without_networks_is_a_clear_error():
    space = NoNetworks()
    assert not builds_networks(space) and builds_networks(NASBench201())
    strategy = make_strategy("predictor", num_init=3, warm_start="zero_cost")
    with pytest.raises(ConfigError, match="warm_start 'zero_cost' needs a space that builds networks"):
        run_search(space, strategy, FunctionOracle(lambda a: 1.0), 3, seed=0, progress=False, plots=False,
                   surrogate=FunctionSurrogate(lambda archs: [0.0] * len(archs)))


def test_the_online_surrogate_reads_the_proxies_with_one_scaler_for_the_search(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_PREDICTOR_CACHE", str(tmp_path))
    space = NASBench201()
    archs = [space.arch_from_index(i) for i in range(0, 15625, 1250)][:12]
    values = {a: 80.0 + (sum(map(ord, a)) % 17) for a in archs}
    surrogate = OnlineSurrogate("nasbench201", steps=20, min_points=8, refit_every=2, seed=3,
                                overrides={"encoding": {"proxies": ["all"], "proxy_batch_size": 4},
                                           "predict": {"average_equivalent": False}})
    records = [{"arch": a, "value": values[a], "status": "ok"} for a in archs]
    surrogate.update(records[:10])
    assert surrogate.ready() and surrogate._models[0].models[0].cfg.proxy_dim == 7
    scaler = surrogate._proxy_scaler
    first = surrogate.score(archs[8:])
    direct = surrogate._models[0].predict(archs[8:])  # the predictor attaches the proxies from the cache
    assert np.allclose(first, direct, atol=1e-4)
    surrogate.update(records)  # a refit: the same scaler, so the candidates' cached tokens stay valid
    assert surrogate.fits == 2 and surrogate._proxy_scaler is scaler
    assert surrogate._models[0].tokenizer.proxies == scaler
    assert all(SCALAR_PREFIX + "naswot" in g.scalars for g in surrogate._proxy_graphs.values())


def test_a_search_config_names_the_surrogates_proxies_and_refuses_an_unknown_one(data_dir):
    from strategies.assemble import assemble_search
    from strategies.config import load_search_config

    cfg = load_search_config(None, ["surrogate_params.proxies=[activation]"])
    assert cfg.surrogate_params.proxies == ["jacov", "naswot"]
    setup = assemble_search(cfg, data_dir)
    assert setup.surrogate.cfg.encoding.proxies == ["jacov", "naswot"]
    assert "proxies" in setup.surrogate.describe()
    assert assemble_search(load_search_config(None, []), data_dir).surrogate.cfg.encoding.proxies == []
    with pytest.raises(ConfigError, match="unknown zero-cost proxy or family 'zen'"):
        load_search_config(None, ["surrogate_params.proxies=[zen]"])

    # a space of whole networks: refused before the search starts, not at its first refit
    with pytest.raises(ConfigError, match="space 'fbnet' describes whole networks"):
        OnlineSurrogate("fbnet", overrides={"encoding": {"proxies": ["all"]}})
