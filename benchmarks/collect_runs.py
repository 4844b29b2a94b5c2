"""Collect several ``nb201_accuracy.py`` result files (e.g. one-seed recipe trials written with
``--out runs/...``) into one results JSON with each trial's command, seeds and per-seed metrics.

    python benchmarks/collect_runs.py --name nb201_recipe_search_augment --what "..." runs/pilots/*.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, save_results  # noqa: E402


TRAIN_KEYS = ("epochs", "equivalence_augment", "merge_equivalent", "select_tolerance", "ema_decay", "ensemble")


def trial(path: Path) -> dict:
    res = load_results(path)
    if not res.get("runs"):
        raise SystemExit(f"{path}: no finished runs")
    runs = []
    for r in res["runs"]:
        curve = r.get("curve") or []
        runs.append({
            "seed": r["seed"], "kendall_tau": r["kendall_tau"], "kendall_tau_plain": r.get("kendall_tau_plain"),
            "train_seconds": r["train_seconds"], "best_epoch": r["members"][0]["best_epoch"],
            # tau of the last epoch's weights (from the time-to-tau curve), to judge model selection
            "last_epoch_kendall_tau": (
                curve[-1]["kendall_tau"] if curve and curve[-1]["epoch"] == len(r["history"][0]) - 1 else None),
        })
    return {"trial": path.stem, "command": res["command"], "machine": res.get("machine"),
            "train": {k: res["config"]["train"][k] for k in TRAIN_KEYS if k in res["config"]["train"]},
            "model": {k: res["config"]["model"][k] for k in ("hidden", "num_blocks")},
            "n_train": res["config"]["data"]["n_train"], "runs": runs,
            "kendall_tau_mean": res["summary"]["kendall_tau_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--what", required=True, help="one line: what the trials compare")
    parser.add_argument("--note", default=None)
    args = parser.parse_args()
    out = {"benchmark": "collected nb201_accuracy trials", "what": args.what, "collected_by": command_line(),
           "trials": [trial(p) for p in args.files]}
    if args.note:
        out["note"] = args.note
    save_results(RESULTS / f"{args.name}.json", out)
    for t in out["trials"]:
        seeds = ", ".join(f"{r['seed']}: {r['kendall_tau']:.4f}" for r in t["runs"])
        print(f"{t['trial']}: {t['n_train']} cells, {t['model']}, {t['train']} -> {seeds}")


if __name__ == "__main__":
    main()
