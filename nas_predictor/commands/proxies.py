"""``nas-predictor proxies``: zero-cost proxies of a search space's networks, cached and resumable."""

from __future__ import annotations

import argparse
import time

from nas_predictor.cli import print_json


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from nas_predictor.spaces import get_space
    from nas_predictor.zero_cost import PROXIES
    from nas_predictor.zero_cost_store import proxy_batch, read_store, space_proxies, store_path

    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    archs = list(space) if args.limit is None else list(space)[: args.limit]
    index, count = args.shard
    archs = archs[index::count]
    batch = proxy_batch(space, args.batch_size, args.seed, archs[0] if archs else None)
    path = store_path(space, batch, args.seed, args.cache)
    before = len(read_store(path))
    t0 = time.perf_counter()
    scores = space_proxies(space, archs, cache=args.cache, seed=args.seed, batch_size=args.batch_size,
                           progress=not args.quiet)
    seconds = time.perf_counter() - t0
    computed = len(read_store(path)) - before
    summary = {"space": space.name, "shard": f"{index}/{count}", "networks": len(scores), "computed_now": computed,
               "cache": str(path),
               "seconds": seconds, "seconds_per_computed_network": seconds / computed if computed else None,
               "median": {p: float(np.median([s[p] for s in scores.values()])) for p in PROXIES} if scores else {}}
    if args.json:
        print_json(summary, indent=2)
        return 0
    rate = f", {summary['seconds_per_computed_network']:.2f} s each" if computed else ""
    print(f"{space.name}: proxies of {len(scores)} networks ({computed} computed now{rate}); cache {path}")
    return 0
