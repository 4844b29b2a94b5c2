"""Pilot of predictor-in-the-loop variants on NB201 CIFAR-10 (seeds 100-107 by default, never the
benchmark's 0-49; budget 100; early stop at the optimum). Positional: refit steps, refit_every, top_k,
ensemble, skip_equivalent (0/1). Environment: OV = online-predictor overrides (JSON), SP = extra strategy
parameters (JSON), SUR = extra OnlineSurrogate arguments (JSON), SEEDS = seeds (space-separated), TRIAL = a name: each
finished seed is appended at once to that trial in benchmarks/results/search_predictor_pilot.json (so parallel
processes and a killed pilot lose nothing).

    TRIAL=local SP='{"num_local": 2}' python benchmarks/search_predictor_pilot.py 400 10 3 1 1
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, save_results  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas_predictor.io import file_lock  # noqa: E402
from search_spaces.nasbench201 import NASBench201  # noqa: E402
from strategies.oracle import NB201TableOracle  # noqa: E402
from strategies.runner import make_strategy, run_search  # noqa: E402
from strategies.surrogates import OnlineSurrogate  # noqa: E402

PATH = RESULTS / "search_predictor_pilot.json"


def record(trial: str, command: str, run: dict) -> None:
    with file_lock(PATH.with_suffix(".lock"), f"results file {PATH}", wait=True):
        res = load_results(PATH)
        trials = res.setdefault("trials", [])
        entry = next((t for t in trials if t["trial"] == trial), None)
        if entry is None:
            entry = {"trial": trial, "command": command, "runs": [], "note": ""}
            trials.append(entry)
        entry["runs"] = [r for r in entry["runs"] if r["seed"] != run["seed"]] + [run]
        entry["finished_seeds"] = len(entry["runs"])
        save_results(PATH, res)


def main() -> None:
    torch.set_num_threads(1)
    oracle = NB201TableOracle()
    target = oracle.global_optimum()["search_value"]
    steps, refit, topk, ens = map(int, sys.argv[1:5])
    skip = bool(int(sys.argv[5]))
    sp, ov = json.loads(os.environ.get("SP", "{}")), json.loads(os.environ.get("OV", "{}"))
    sur = json.loads(os.environ.get("SUR", "{}"))
    seeds = [int(s) for s in os.environ.get("SEEDS", " ".join(map(str, range(100, 108)))).split()]
    trial = os.environ.get("TRIAL")
    command = " ".join(f"{k}='{os.environ[k]}'" for k in ("TRIAL", "SP", "OV", "SUR", "SEEDS") if k in os.environ)
    command = (command + " " + command_line()).strip()
    res = []
    for seed in seeds:
        strategy = make_strategy("predictor", top_k=topk, skip_equivalent=skip, **sp)
        surrogate = OnlineSurrogate("nasbench201", seed=seed, steps=steps, refit_every=refit, ensemble=ens, overrides=ov,
                                   **sur)
        summary = run_search(NASBench201(), strategy, oracle, 100, seed=seed, surrogate=surrogate, progress=False,
                             target=target)
        curve = summary["best_so_far"]
        at = lambda b: curve[min(b, len(curve)) - 1]["report"]  # noqa: E731
        run = {"seed": seed, "best_test_50": at(50), "best_test_100": at(100),
               "evaluations_to_optimum": len(curve) if summary["stop"] == "target reached" else None,
               "wall_seconds": summary["wall_seconds"]}
        res.append(run)
        if trial:
            record(trial, command, run)
        print(json.dumps(run), flush=True)
    print("CONFIG", sys.argv[1:6], sp, ov, sur, "mean@50", np.mean([r["best_test_50"] for r in res]),
          "mean@100", np.mean([r["best_test_100"] for r in res]), "hits", [r["evaluations_to_optimum"] for r in res])


if __name__ == "__main__":
    main()
