"""Our zero-cost proxies against NASLib's published scores (issue 31): Spearman's rank correlation, per
proxy, over the cells of NASLib's subsets (``naslib_zc_subsets``: 725 NAS-Bench-201 CIFAR-10 cells, 301
distinct NAS-Bench-101 cells). The target is >= 0.95 for each proxy NASLib publishes.

Ours read one seeded batch of standard-normal images with uniform labels (NASLib used CIFAR-10 images,
which are not in the shared data and cannot be downloaded here), a network initialised from seed 0, and
NASLib's definitions (nas_predictor/zero_cost.py). Scores are cached per architecture
(``nas-predictor proxies``' cache), so an interrupted run resumes; ``--limit`` scores only the first N
cells (recorded).

    python benchmarks/zero_cost_validation.py --space nasbench201
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, code_commit, command_line, machine, update_locked  # noqa: E402


def nwot_v1(archs: list[str], ours: dict, published: dict, space) -> dict:
    """jacov against a second published implementation: the score column of NASWOT's first version
    (``nb201_nwot_arch_score_acc``: Jacobian covariance on CIFAR-10, every NB201 cell; NaN where it had
    none), for ours and for NASLib's jacov, over the same cells."""
    import pandas as pd
    from scipy.stats import spearmanr

    from nas_predictor.data.paths import resolve_data_dir

    frame = pd.read_pickle(resolve_data_dir() / "nb201_nwot_arch_score_acc" / "arch_score_acc.pd")
    v1 = {space.canonical(a): float(v) for a, v in zip(frame["cellstr"], frame["score"]) if v == v}
    keep = [a for a in archs if space.canonical(a) in v1]
    mine = [ours[space.canonical(a)]["jacov"] for a in keep]
    naslib = [published[a]["jacov"] for a in keep]
    first = [v1[space.canonical(a)] for a in keep]
    return {"nwot_v1_cells": len(keep), "spearman_ours_vs_nwot_v1": float(spearmanr(mine, first)[0]),
            "spearman_naslib_vs_nwot_v1": float(spearmanr(naslib, first)[0])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="nasbench201", choices=["nasbench201", "nasbench101"])
    ap.add_argument("--limit", type=int, default=None, help="only the first N cells of the subset")
    ap.add_argument("--repeat-seed", type=int, default=1,
                    help="a second initialisation and batch seed: our own seed-to-seed agreement, the ceiling a "
                         "comparison with another implementation's single draw can reach (-1: skip)")
    ap.add_argument("--cache", default=None, help="proxy cache folder (default: nas-predictor's cache)")
    ap.add_argument("--out", default=str(RESULTS / "zero_cost_validation.json"))
    args = ap.parse_args(argv)

    import torch
    from scipy.stats import kendalltau, spearmanr

    from nas_predictor.data.naslib_proxies import load_naslib_proxies
    from nas_predictor.spaces import get_space
    from nas_predictor.zero_cost import PROXIES
    from nas_predictor.zero_cost_store import space_proxies

    torch.set_num_threads(1)
    space = get_space(args.space)
    published = load_naslib_proxies(args.space)
    archs = list(published)[: args.limit]
    t0 = time.perf_counter()
    ours = space_proxies(space, archs, cache=args.cache)
    seconds = time.perf_counter() - t0
    rows = {}
    for name in PROXIES:
        pairs = [(ours[space.canonical(a)][name], published[a][name]) for a in archs if name in published[a]]
        if len(pairs) < 3:
            continue
        a, b = zip(*pairs)
        rows[name] = {"spearman": float(spearmanr(a, b)[0]), "kendall": float(kendalltau(a, b)[0]), "cells": len(pairs),
                      "meets_0.95": bool(spearmanr(a, b)[0] >= 0.95)}
    if args.repeat_seed >= 0:
        again = space_proxies(space, archs, cache=args.cache, seed=args.repeat_seed)
        for name in rows:
            a = [ours[space.canonical(x)][name] for x in archs]
            b = [again[space.canonical(x)][name] for x in archs]
            rows[name]["spearman_ours_seed_0_vs_seed_%d" % args.repeat_seed] = float(spearmanr(a, b)[0])
    if args.space == "nasbench201" and "jacov" in rows:
        rows["jacov"].update(nwot_v1(archs, ours, published, space))
    entry = {"space": args.space, "cells": len(archs), "of": len(published), "proxies": rows, "seconds": seconds,
             "machine": machine(), "command": command_line(), "code": code_commit(), "seed": 0, "batch": 64,
             "data": "standard normal images, uniform labels (NASLib: CIFAR-10)"}
    update_locked(Path(args.out), lambda res: {**res, "benchmark": "zero_cost_validation",
                                               "runs": {**res.get("runs", {}), args.space: entry}})
    for name, r in rows.items():
        repeat = {k: v for k, v in r.items() if k.startswith("spearman_ours_seed")}
        print(f"{name:>10}: Spearman {r['spearman']:.4f}, Kendall {r['kendall']:.4f} over {r['cells']} cells"
              + "".join(f"; ours seed to seed {v:.4f}" for v in repeat.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
