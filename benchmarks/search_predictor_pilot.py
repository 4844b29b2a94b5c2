"""Pilot of predictor-in-the-loop variants on NB201 CIFAR-10 (seeds 100-107, never the benchmark's
0-49; budget 100; early stop at the optimum). Positional: refit steps, refit_every, top_k, ensemble,
skip_equivalent (0/1). Environment: OV = online-predictor overrides (JSON), SP = extra strategy
parameters (JSON). Prints one line per seed and a CONFIG summary; the finished trials are collected
in benchmarks/results/search_predictor_pilot.json.

    SP='{"num_local": 2}' python benchmarks/search_predictor_pilot.py 400 10 3 1 1
"""
import os, sys, json, numpy as np, torch
torch.set_num_threads(1)
from search_spaces.nasbench201 import NASBench201
from strategies.oracle import NB201TableOracle
from strategies.runner import make_strategy, run_search
from strategies.surrogates import OnlineSurrogate
o = NB201TableOracle(); target = o.global_optimum()["search_value"]
steps, refit, topk, ens = map(int, sys.argv[1:5])
res = []
for seed in range(100, 108):
    s = make_strategy("predictor", top_k=topk, skip_equivalent=bool(int(sys.argv[5])), **json.loads(os.environ.get("SP", "{}")))
    sur = OnlineSurrogate("nasbench201", seed=seed, steps=steps, refit_every=refit, ensemble=ens, overrides=json.loads(os.environ.get('OV', '{}')))
    r = run_search(NASBench201(), s, o, 100, seed=seed, surrogate=sur, progress=False, target=target)
    c = r["best_so_far"]; rep = lambda b: c[min(b, len(c)) - 1]["report"]
    res.append((rep(50), rep(100), len(c) if r["stop"] == "target reached" else None, r["wall_seconds"]))
    print(seed, res[-1], flush=True)
print("CONFIG", sys.argv[1:5], "mean@50", np.mean([x[0] for x in res]), "mean@100", np.mean([x[1] for x in res]), "hits", [x[2] for x in res], "wall", np.mean([x[3] for x in res]))
