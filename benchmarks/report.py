"""Print the README's result tables (markdown) from benchmarks/results/*.json, so the README only
shows numbers that a benchmark run wrote.

    python benchmarks/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS  # noqa: E402

PAPER = {"nb201_accuracy_781": 0.874, "nb201_accuracy_1563": 0.888}


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def accuracy_table() -> list[str]:
    rows = ["| setting | paper tau | our tau (mean ± std) | seeds | per-seed tau | train time per run (mean ± std) | epochs to best (per seed) |",
            "|---|---|---|---|---|---|---|"]
    for name, paper in PAPER.items():
        res = _load(name)
        if not res or not res.get("runs"):
            rows.append(f"| {name} | {paper} | not run yet | | | | |")
            continue
        s = res["summary"]
        per_seed = ", ".join(f"{r['kendall_tau']:.4f}" for r in res["runs"])
        epochs = ", ".join(str(r["members"][0]["best_epoch"] + 1) for r in res["runs"])
        rows.append(
            f"| {name} | {paper} | {s['kendall_tau_mean']:.4f} ± {s['kendall_tau_std']:.4f} | {s['seeds']} | {per_seed} | "
            f"{s['train_seconds_mean'] / 60:.1f} ± {s['train_seconds_std'] / 60:.1f} min | {epochs} |"
        )
    return rows


def ensemble_table() -> list[str]:
    rows = ["| ensemble | members | tau | member taus | total training time |", "|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*ensemble*.json")):
        res = json.loads(path.read_text())
        total = res.get("total_train_seconds")
        rows.append(
            f"| {res['name']} | {len(res['members'])} | {res['kendall_tau']:.4f} | "
            f"{', '.join(f'{t:.4f}' for t in res['member_kendall_tau'] if t is not None)} | "
            f"{'' if total is None else f'{total / 60:.0f} min'} |"
        )
    return rows


def speed_table() -> list[str]:
    res = _load("nb201_predict_speed")
    rows = ["| predictor | hidden × blocks | parameters | threads | seconds for all 15,625 cells (median; mean ± std) | tau |",
            "|---|---|---|---|---|---|"]
    if not res:
        return rows
    for name, e in res["predictors"].items():
        rows.append(
            f"| {name} | {e['hidden']} × {e['num_blocks']} | {e['parameters']:,} | {e['threads']} | "
            f"{e['seconds_median']:.2f} ({e['seconds_mean']:.2f} ± {e['seconds_std']:.2f}, n={len(e['seconds'])}) | {e['kendall_tau']:.4f} |"
        )
    return rows


def recipe_table() -> list[str]:
    res = _load("nb201_recipe_search")
    rows = ["| run | overrides (on the defaults) | tau | train seconds |", "|---|---|---|---|"]
    if not res:
        return rows
    for r in res["runs"]:
        ov = " ".join(o for o in r["overrides"] if not o.startswith("train.threads"))
        rows.append(f"| {r['run']} | `{ov}` | {r['kendall_tau']:.4f} | {r['train_seconds']:.0f} |")
    return rows


if __name__ == "__main__":
    for title, table in (("accuracy", accuracy_table()), ("ensembles", ensemble_table()), ("speed", speed_table()),
                         ("recipe search", recipe_table())):
        print(f"### {title}\n")
        print("\n".join(table) + "\n")
