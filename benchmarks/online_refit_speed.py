"""How long the whole-network online surrogate takes to refit, and how well it then ranks (issue 29).

The networks are the hub's ``NasBench201`` read as opaque whole networks (what
``benchmarks/search_nni_opaque_nb201.py`` searches, the largest graphs of the issue's spaces): 300
distinct random samples, graphs from the fast path; labels the real CIFAR-10 validation accuracy of the
table. Each seed refits ``nas_predictor.online.fit_online`` from scratch on ``--train`` of them (the
search's own recipe: ONLINE_STEPS steps, one torch thread) and ranks the other 200 (Kendall tau). The
time is fit_online's own (tokenising, training, wrapping the predictor); the graphs are read before it, as a
search has them. The machine's load average is recorded next to each fit: other work on the 2-core VM
slows a fit in proportion.

    python benchmarks/online_refit_speed.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--out", default=str(RESULTS / "online_refit_speed.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("nni").setLevel(logging.WARNING)
    from nni.nas.hub.pytorch import NasBench201
    from scipy.stats import kendalltau

    from nas_predictor.online import NETWORK_ENCODING, ONLINE_STEPS, fit_online
    from strategies.nni_bridge import NB201TableBenchmark
    from strategies.nni_bridge.space import nni_space

    space = nni_space(NasBench201(), (1, 3, 32, 32), "bench-refit-nb201")
    table = NB201TableBenchmark("cifar10")
    rng = np.random.default_rng(0)
    archs: list[str] = []
    while len(archs) < args.train + args.test:
        a = space.canonical(space.sample(rng))
        if a not in archs:
            archs.append(a)
    t0 = time.perf_counter()
    graphs = [space.to_graph(a) for a in archs]
    read_seconds = time.perf_counter() - t0
    labels = np.array([table.score(table.to_arch(space.config(a))) for a in archs])
    tokenizer = NETWORK_ENCODING.tokenizer()
    nodes = [tokenizer.runtime_graph(g).num_nodes for g in graphs]
    train, test = slice(0, args.train), slice(args.train, args.train + args.test)
    runs = []
    for seed in args.seeds:
        load = os.getloadavg()[0]
        predictor, seconds = fit_online(space.name, archs[train], labels[train], seed=seed, graphs=graphs[train])
        tau = float(kendalltau(predictor.predict_graphs(graphs[test]), labels[test])[0])
        runs.append({"seed": seed, "fit_seconds": seconds, "tau": tau, "load_average_1min": load})
        print(f"seed {seed}: fit {seconds:.1f} s, tau {tau:.3f} (load {load:.2f})", flush=True)
    fits = [r["fit_seconds"] for r in runs]
    taus = [r["tau"] for r in runs]
    save_results(Path(args.out), {
        "benchmark": "online_refit_speed", "machine": machine(), "commands": [command_line()],
        "space": "hub NasBench201, opaque, (1, 3, 32, 32)", "train": args.train, "test": args.test,
        "steps": ONLINE_STEPS, "encoding": NETWORK_ENCODING.model_dump(),
        "exported_nodes_median": int(statistics.median(len(g.ops) for g in graphs)),
        "tokenised_nodes_median": int(statistics.median(nodes)),
        "graph_read_seconds_per_network": read_seconds / len(graphs), "runs": runs,
        "summary": {"fit_seconds": {"mean": statistics.mean(fits), "std": statistics.stdev(fits) if len(fits) > 1 else 0.0,
                                    "max": max(fits)},
                    "tau": {"mean": statistics.mean(taus), "std": statistics.stdev(taus) if len(taus) > 1 else 0.0,
                            "worst": min(taus)}}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
