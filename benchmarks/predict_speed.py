"""Time to score all 15,625 NAS-Bench-201 cells (graph building + tokenising + model), and its tau.

    python benchmarks/predict_speed.py --predictor nb201-accuracy --predictor runs/compact/predictor.pt --repeats 5
    python benchmarks/predict_speed.py --predictor nb201-accuracy --first-member   # one paper-size model

Arch strings are scored as the predictor does by default (the mean over equivalent cells when the
predictor says so: for a whole space that adds only the averaging itself); the plain tau is recorded too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import RESULTS, command_line, load_results, machine, save_results  # noqa: E402

from nas_predictor.data import load_nb201_table  # noqa: E402
from nas_predictor.metrics import kendall_tau  # noqa: E402
from nas_predictor.torch_utils import count_parameters  # noqa: E402
from nas_predictor.predictor import load_predictor  # noqa: E402
from nas_predictor.spaces import get_space  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", action="append", required=True, help="checkpoint path or pretrained name")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the predictor's (128 on CPU)")
    parser.add_argument("--first-member", action="store_true",
                        help="time only the first model of an ensemble (the paper-size model on its own)")
    parser.add_argument("--out", default=str(RESULTS / "nb201_predict_speed.json"))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    table = load_nb201_table(args.data_dir)
    truth = table.column("c10_test_200ep")
    out = Path(args.out)
    results = load_results(out)
    results.update({"benchmark": "nb201_predict_speed", "command": command_line(), "machine": machine()})
    entries = results.setdefault("predictors", {})
    for name in args.predictor:
        predictor = load_predictor(name)
        if args.first_member:
            predictor.models = predictor.models[:1]
        space = get_space(predictor.space)
        times, pred = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            pred = predictor.predict(table.arch_strs, args.batch_size)
            times.append(time.perf_counter() - start)
        plain = predictor.predict([space.to_graph(a) for a in table.arch_strs], args.batch_size)
        entry = {
            "parameters": sum(count_parameters(m, trainable_only=False) for m in predictor.models),
            "members": len(predictor.models),
            "hidden": predictor.meta["model"]["hidden"],
            "num_blocks": predictor.meta["model"]["num_blocks"],
            "kendall_tau": kendall_tau(truth, pred),
            "kendall_tau_plain": kendall_tau(truth, plain),
            "average_equivalent": predictor.average_equivalent,
            "seconds": times,
            "seconds_median": statistics.median(times),
            "seconds_mean": statistics.mean(times),
            "seconds_std": statistics.stdev(times) if len(times) > 1 else 0.0,
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
        }
        member = "[first member]" if args.first_member and entry["members"] == 1 else ""
        entries[f"{name}{member}@{torch.get_num_threads()}threads"] = entry
        save_results(out, results)
        print(f"{name}: {entry['seconds_median']:.2f} s median ({entry['seconds_mean']:.2f} +- {entry['seconds_std']:.2f}), "
              f"tau {entry['kendall_tau']:.4f}, {entry['parameters']:,} params", flush=True)


if __name__ == "__main__":
    main()
