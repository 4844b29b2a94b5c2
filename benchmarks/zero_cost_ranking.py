"""How well each zero-cost proxy alone ranks a whole benchmark, with no label at all (issue 31).

The training-free floor under every learned predictor here: Kendall tau and Spearman's rank correlation
of each proxy (and of the proxies' vote, their mean rank: the warm start's `zero_cost` score) with the
benchmark's accuracy over every cell. NAS-Bench-Suite-Zero reports the same per-proxy correlations on
NAS-Bench-201 CIFAR-10 from CIFAR-10 batches; ours come from one seeded batch of standard-normal images
(network seed 0, batch 64), so they also say how much the data-dependent proxies lose without data.

    python benchmarks/zero_cost_ranking.py --space nasbench201     # all 15,625 cells (proxies from the cache)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, code_commit, command_line, machine, update_locked  # noqa: E402

#: the benchmark column each space is ranked against
TARGETS = {"nasbench201": "c10_test_200ep"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nasbench201", choices=sorted(TARGETS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache", default=None, help="proxy cache folder (default: nas-predictor's cache)")
    ap.add_argument("--out", default=str(RESULTS / "zero_cost_ranking.json"))
    args = ap.parse_args(argv)

    import numpy as np
    from scipy.stats import kendalltau, rankdata, spearmanr

    from nas_predictor.data import load_nb201_table
    from nas_predictor.data.paths import resolve_data_dir
    from nas_predictor.spaces import get_space
    from nas_predictor.zero_cost import PROXIES
    from nas_predictor.zero_cost_store import space_proxies

    space = get_space(args.space)
    table = load_nb201_table(resolve_data_dir(args.data_dir))
    truth = np.asarray(table.column(TARGETS[args.space]), dtype=np.float64)
    t0 = time.perf_counter()
    scores = space_proxies(space, table.arch_strs, cache=args.cache)
    values = np.array([[scores[space.canonical(a)][p] for p in PROXIES] for a in table.arch_strs])
    vote = np.mean([(rankdata(column) - 1) / (len(column) - 1) for column in values.T], axis=0)
    rows = {}
    for name, column in [*zip(PROXIES, values.T), ("vote (mean rank of all seven)", vote)]:
        rows[name] = {"kendall": float(kendalltau(column, truth)[0]), "spearman": float(spearmanr(column, truth)[0])}
    entry = {"space": args.space, "target": TARGETS[args.space], "cells": len(truth), "proxies": rows,
             "seconds": time.perf_counter() - t0, "seed": 0, "batch": 64, "machine": machine(),
             "command": command_line(), "code": code_commit(),
             "data": "standard normal images, uniform labels"}
    update_locked(Path(args.out), lambda res: {**res, "benchmark": "zero_cost_ranking",
                                               "runs": {**res.get("runs", {}), args.space: entry}})
    for name, r in rows.items():
        print(f"{name:>30}: Kendall {r['kendall']:+.4f}, Spearman {r['spearman']:+.4f} over {len(truth)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
