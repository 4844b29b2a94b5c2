"""Latency tables on the dataset measured on this project's machine (NNLQP's ten families)."""

from __future__ import annotations

import json
import statistics

from . import common
from .common import LATENCY_MODELS, RESULTS, ms

MEASURED_IN_DOMAIN = "latency_measured_cpu"


MEASURED_UNSEEN_PREFIX = "latency_measured_cpu_unseen_"


# the first Table 2 runs: the in-domain config (graph-level sum readout, no op groups) at 60 epochs
MEASURED_UNSEEN_SUM_PREFIX = "latency_measured_cpu_unseen-sum_"


# the second: graph-level sum readout with op-group tokens and op dropout, before the roofline readout
MEASURED_UNSEEN_SUM_GROUPS_PREFIX = "latency_measured_cpu_unseen-sum-groups_"


def _mape_acc(row: dict | None) -> str:
    """'MAPE ± std / Acc(10 %) ± std' of one summary row's metrics (overall or one family's)."""
    if row is None:
        return "–"
    return f"{ms(row['mape'])} / {row['acc_10pct']['mean']:.3f} ± {row['acc_10pct']['std']:.3f}"


def _bold_best(cells: dict[str, str], mapes: dict[str, float]) -> list[str]:
    best = min(mapes, key=mapes.get) if mapes else None
    return [f"**{cells[k]}**" if k == best else cells.get(k, "–") for k in LATENCY_MODELS]


def measured_in_domain_table() -> list[str]:
    """Issue 6, Table 1 analogue on the dataset measured on this machine: per family and over all test
    models, MAPE and Acc(10 %) of every model (mean ± std over seeds, same splits)."""
    head = " | ".join(f"{v} MAPE / Acc(10 %)" for v in LATENCY_MODELS.values())
    rows = [f"| family | test models | seeds | {head} |", "|---|---|---|" + "---|" * len(LATENCY_MODELS)]
    res = common.load(MEASURED_IN_DOMAIN)
    if not res or not res.get("summary"):
        return rows + [f"| {MEASURED_IN_DOMAIN}: not run yet |" + " |" * (len(LATENCY_MODELS) + 2)]
    for setting, models in res["summary"].items():
        first = next(iter(models.values()))
        seeds = ", ".join(map(str, first["seeds"]))
        runs = [r for r in res["runs"] if setting in r["test"]]
        families = list(first["per_family"])
        for family in families:
            num = runs[0]["test"][setting]["per_family"][family]["num"]
            cells = {k: _mape_acc(m["per_family"].get(family)) for k, m in models.items() if k in LATENCY_MODELS}
            mapes = {
                k: m["per_family"][family]["mape"]["mean"]
                for k, m in models.items()
                if k in LATENCY_MODELS and family in m["per_family"]
            }
            rows.append(f"| {family} | {num} | {seeds} | {' | '.join(_bold_best(cells, mapes))} |")
        cells = {k: _mape_acc(m["overall"]) for k, m in models.items() if k in LATENCY_MODELS}
        mapes = {k: m["overall"]["mape"]["mean"] for k, m in models.items() if k in LATENCY_MODELS}
        num = runs[0]["test"][setting]["overall"]["num"]
        rows.append(f"| **all test models** | {num} | {seeds} | {' | '.join(_bold_best(cells, mapes))} |")
        fam_means = {
            k: statistics.mean(m["per_family"][f]["mape"]["mean"] for f in families)
            for k, m in models.items()
            if k in LATENCY_MODELS
        }
        cells = {k: f"{v:.4f}" for k, v in fam_means.items()}
        rows.append(f"| **average over families** | | | {' | '.join(_bold_best(cells, fam_means))} |")
    return rows


def measured_unseen_table(prefix: str = MEASURED_UNSEEN_PREFIX) -> list[str]:
    """Issue 6, Table 2 analogue: one family held out at a time (trained on the other nine)."""
    head = " | ".join(f"{v} MAPE / Acc(10 %)" for v in LATENCY_MODELS.values())
    rows = [f"| held-out family | seeds | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    files = sorted(RESULTS.glob(f"{prefix}*.json"))
    if not files:
        return rows + ["| not run yet |" + " |" * (len(LATENCY_MODELS) + 1)]
    means: dict[str, list[float]] = {}
    complete = 0
    for path in files:
        res = json.loads(path.read_text())
        for setting, models in (res.get("summary") or {}).items():
            family = path.stem.removeprefix(prefix)
            cells = {k: _mape_acc(m["overall"]) for k, m in models.items() if k in LATENCY_MODELS}
            mapes = {k: m["overall"]["mape"]["mean"] for k, m in models.items() if k in LATENCY_MODELS}
            seeds = sorted({s for m in models.values() for s in m["seeds"]})
            rows.append(f"| {family} | {', '.join(map(str, seeds))} | {' | '.join(_bold_best(cells, mapes))} |")
            if all(k in mapes for k in LATENCY_MODELS):
                complete += 1
                for k, v in mapes.items():
                    means.setdefault(k, []).append(v)
    if means:
        avg = {k: statistics.mean(v) for k, v in means.items()}
        cells = {k: f"{v:.4f}" for k, v in avg.items()}
        rows.append(
            f"| **average over the {complete} held-out families with every model** | | "
            f"{' | '.join(_bold_best(cells, avg))} |"
        )
    return rows
