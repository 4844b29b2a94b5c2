"""Latency prediction speed: seconds to predict N whole networks (tokenising included) with a
latency predictor, one torch thread and two, median of repeats.

The networks are the first N/3 of each family in the graph cache (~/.cache/nas_predictor, filled by
benchmarks/latency.py), so the mix of sizes (NB201 ~150 nodes, FBNet and OFA ~300-450) is the
benchmark's. Run it on an otherwise idle machine.

    python benchmarks/latency_speed.py --predictor latency-titan_rtx_1 --num-graphs 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, machine, save_results  # noqa: E402
from latency import predict_speed  # noqa: E402

from nas_predictor.data.latency_graphs import cached_network_graphs  # noqa: E402
from nas_predictor.predictor import load_predictor  # noqa: E402

FAMILIES = ("nasbench201", "fbnet", "ofa_mbv3")


def cached_graphs(num: int, cache: str | None) -> list:
    graphs = []
    per_family = -(-num // len(FAMILIES))
    for space in FAMILIES:
        found = list(cached_network_graphs(space, cache).values())
        if len(found) < per_family:
            raise SystemExit(f"the graph cache holds {len(found)} {space} networks, {per_family} needed; "
                             "run benchmarks/latency.py first (it exports them)")
        graphs += found[:per_family]
    return graphs[:num]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictor", action="append", required=True, help="name or checkpoint path (repeatable)")
    ap.add_argument("--num-graphs", type=int, default=1000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache-dir")
    ap.add_argument("--out", default=str(RESULTS / "latency_predict_speed.json"))
    args = ap.parse_args()

    graphs = cached_graphs(args.num_graphs, args.cache_dir)
    nodes = [g.num_nodes for g in graphs]
    out = Path(args.out)
    results = load_results(out)
    results.update({"benchmark": "latency_predict_speed", "machine": machine(), "num_graphs": len(graphs),
                    "nodes_mean": statistics.mean(nodes), "nodes_max": max(nodes)})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    entries = results.setdefault("predictors", {})
    for name in args.predictor:
        predictor = load_predictor(name)
        for threads in args.threads:
            torch.set_num_threads(threads)
            entry = predict_speed(predictor, graphs, args.repeats)
            times = entry["seconds"]
            entries[f"{name} threads={threads}"] = {
                **entry, "predictor": name, "threads": threads, "seconds_mean": statistics.mean(times),
                "seconds_std": statistics.stdev(times) if len(times) > 1 else 0.0,
            }
            print(f"{name}, {threads} thread(s): {statistics.median(times):.2f} s for {len(graphs)} networks", flush=True)
            save_results(out, results)


if __name__ == "__main__":
    main()
