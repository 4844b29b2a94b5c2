"""Context for the NAS-Bench-101 mini-protocol: how well a cell's size alone ranks the held-out cells.

For each seed's split of ``configs/nb101_accuracy_subset.yaml`` (the same draw as
``nb201_accuracy.py --resplit``), Kendall tau of the trainable parameter count and of the FLOPs
against the validation accuracy of the held-out test cells (bigger NB101 cells tend to score higher,
so this is the bar a learned predictor must clear).

    python benchmarks/nb101_subset_baselines.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.config import load_config  # noqa: E402
from nas_predictor.metrics import kendall_tau  # noqa: E402
from nas_predictor.train_data import load_accuracy_table, prepare_data  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "nb101_accuracy_subset.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    runs = []
    for seed in args.seeds:
        cfg = load_config(CONFIG, [f"data.split_seed={seed}"])
        data = prepare_data(cfg, args.data_dir)
        table = load_accuracy_table(cfg, args.data_dir)
        truth = data.eval_labels[data.test_idx]
        runs.append({"seed": seed, "n_test": int(len(data.test_idx)),
                     "params_tau": kendall_tau(truth, table.params[data.test_idx]),
                     "flops_tau": kendall_tau(truth, table.mflops[data.test_idx])})
        print(runs[-1], flush=True)
    summary = {k: {"mean": statistics.mean(r[k] for r in runs), "std": statistics.stdev(r[k] for r in runs)}
               for k in ("params_tau", "flops_tau")}
    save_results(RESULTS / "nb101_subset_baselines.json",
                 {"benchmark": "nb101_subset_baselines", "command": command_line(), "machine": machine(),
                  "config": str(CONFIG.name), "runs": runs, "summary": summary})
    print(summary)


if __name__ == "__main__":
    main()
