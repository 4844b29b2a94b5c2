"""Whole-network latency tables on HELP's measured latencies (NB201, FBNet, OFA-MobileNetV3)."""

from __future__ import annotations

import statistics

from . import common
from .common import LATENCY_MODELS, ms

LATENCY_IN_DOMAIN = (
    "latency_in_domain_b1",
    "latency_in_domain_b1_30ep",
    "latency_in_domain_b1_first_recipe",
    "latency_in_domain_b32",
    "latency_in_domain_b32_sum_readout",
    "latency_in_domain_b32_first_recipe",
)


LATENCY_UNSEEN = ("latency_unseen_nasbench201", "latency_unseen_fbnet", "latency_unseen_ofa")


LATENCY_FEW_SHOT = tuple(f"{name}_few_shot" for name in LATENCY_UNSEEN)


def _latency_rows(
    names: tuple[str, ...], first_column: str, prefix=lambda name: "", overall: str | None = None
) -> list[str]:
    """One row per (file, setting), a mean row per file; with ``overall``, a last row so labelled: the
    mean over every (file, setting) row of all the files (the issue's "mean MAPE in (b)" over folds)."""
    head = " | ".join(f"{v} MAPE" for v in LATENCY_MODELS.values())
    rows = [
        f"| {first_column} | seeds | {head} | ours Acc(5 %) | ours Acc(10 %) | ours train min |",
        "|---|---|" + "---|" * (len(LATENCY_MODELS) + 3),
    ]
    everything: dict[str, list[float]] = {}
    for name in names:
        res = common.load(name)
        if not res or not res.get("summary"):
            rows.append(f"| {name}: not run yet |" + " |" * (len(LATENCY_MODELS) + 4))
            continue
        means: dict[str, list[float]] = {}
        for setting, models in res["summary"].items():
            best = min((m["overall"]["mape"]["mean"], k) for k, m in models.items() if k in LATENCY_MODELS)[1]
            cells = []
            for key in LATENCY_MODELS:
                if key not in models:
                    cells.append("–")
                    continue
                means.setdefault(key, []).append(models[key]["overall"]["mape"]["mean"])
                text = ms(models[key]["overall"]["mape"])
                cells.append(f"**{text}**" if key == best else text)
            ours = models.get("narformer_v2")
            extra = (
                [
                    ms(ours["overall"]["acc_5pct"]),
                    ms(ours["overall"]["acc_10pct"]),
                    f"{ours['train_seconds_mean'] / 60:.1f}",
                ]
                if ours
                else ["–"] * 3
            )
            seeds = ", ".join(map(str, next(iter(models.values()))["seeds"]))
            rows.append(f"| {prefix(name)}{setting} | {seeds} | {' | '.join(cells)} | {' | '.join(extra)} |")
        if len(res["summary"]) > 1:
            rows.append(_mean_row(f"{prefix(name)}mean over these settings", means))
        for key, values in means.items():
            everything.setdefault(key, []).extend(values)
    if overall and everything:
        rows.append(_mean_row(overall, everything))
    return rows


def _mean_row(label: str, values: dict[str, list[float]]) -> str:
    """A table row of each model's mean of ``values``, the lowest in bold (a model without values: –)."""
    means = {k: sum(v) / len(v) for k, v in values.items() if v}
    best = min(means, key=means.get)
    cells = [("**{:.4f}**" if k == best else "{:.4f}").format(means[k]) if k in means else "–" for k in LATENCY_MODELS]
    return f"| {label} | | {' | '.join(cells)} | | | |"


def _recipe(name: str) -> str:
    """Row-label prefix of an earlier recipe's file (the config's current recipe has none)."""
    if name.endswith("_sum_readout"):
        return "sum readout: "
    if name.endswith("_30ep"):
        return "30 epochs: "
    return "first recipe: " if name.endswith("_first_recipe") else ""


def latency_in_domain_table() -> list[str]:
    return _latency_rows(LATENCY_IN_DOMAIN, "setting", _recipe)


def latency_family_table() -> list[str]:
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| setting | family | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    for name in LATENCY_IN_DOMAIN:
        res = common.load(name)
        for setting, models in ((res or {}).get("summary") or {}).items():
            families = next(iter(models.values()))["per_family"]
            for family in families:
                values = {
                    k: m["per_family"][family]["mape"]["mean"]
                    for k, m in models.items()
                    if k in LATENCY_MODELS and family in m["per_family"]
                }
                best = min(values, key=values.get)
                cells = [
                    ("**{:.4f}**" if k == best else "{:.4f}").format(values[k]) if k in values else "–"
                    for k in LATENCY_MODELS
                ]
                rows.append(f"| {_recipe(name)}{setting} | {family} | {' | '.join(cells)} |")
    return rows


def latency_unseen_table() -> list[str]:
    return _latency_rows(
        LATENCY_UNSEEN,
        "held-out family, setting",
        lambda name: f"{name.removeprefix('latency_unseen_')}, ",
        overall="**all three held-out families** (mean over the nine rows)",
    )


def latency_unseen_tau_table() -> list[str]:
    """Kendall tau within the held-out family, from the runs (mean ± std over seeds)."""
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| held-out family, setting | seeds | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    for name in LATENCY_UNSEEN:
        res = common.load(name)
        if not res or not res.get("runs"):
            rows.append(f"| {name}: not run yet |" + " |" * (len(LATENCY_MODELS) + 1))
            continue
        taus: dict[str, dict[str, list[float]]] = {}
        seeds: dict[str, set[int]] = {}
        for run in res["runs"]:
            if run["model"] not in LATENCY_MODELS:
                continue
            for setting, metrics in run["test"].items():
                taus.setdefault(setting, {}).setdefault(run["model"], []).append(metrics["overall"]["kendall_tau"])
                seeds.setdefault(setting, set()).add(run["seed"])
        for setting in sorted(taus):
            stats = {
                k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
                for k, v in taus[setting].items()
            }
            best = max(stats, key=lambda k: stats[k]["mean"])
            cells = [
                ("**{}**" if k == best else "{}").format(ms(stats[k])) if k in stats else "–" for k in LATENCY_MODELS
            ]
            rows.append(
                f"| {name.removeprefix('latency_unseen_')}, {setting} | "
                f"{', '.join(map(str, sorted(seeds[setting])))} | {' | '.join(cells)} |"
            )
    return rows


def latency_few_shot_table() -> list[str]:
    """Unseen-family MAPE as trained (0), then rescaled by 5 and 10 measured networks of the held-out
    family (benchmarks/latency.py --few-shot 5 10); the lowest 10-network MAPE in bold, and a last row
    of means over every (fold, setting) row."""
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| held-out family, setting | seeds | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    shots = ("5", "10")
    totals: dict[str, list[list[float]]] = {}
    for name in LATENCY_FEW_SHOT:
        res = common.load(name)
        if not res or not res.get("summary"):
            rows.append(f"| {name}: not run yet |" + " |" * (len(LATENCY_MODELS) + 1))
            continue
        for setting, models in res["summary"].items():
            values = {
                k: [m["overall"]["mape"]["mean"]] + [m["few_shot"][n]["mape"]["mean"] for n in shots]
                for k, m in models.items()
                if k in LATENCY_MODELS and "few_shot" in m
            }
            if not values:
                continue
            best = min(values, key=lambda k: values[k][-1])
            cells = []
            for key in LATENCY_MODELS:
                if key not in values:
                    cells.append("–")
                    continue
                totals.setdefault(key, []).append(values[key])
                zero, *rescaled = values[key]
                text = f"{zero:.4f} → {' / '.join(f'{v:.4f}' for v in rescaled)}"
                cells.append(f"**{text}**" if key == best else text)
            seeds = ", ".join(map(str, next(iter(models.values()))["few_shot_seeds"]))
            fold = name.removeprefix("latency_unseen_").removesuffix("_few_shot")
            rows.append(f"| {fold}, {setting} | {seeds} | {' | '.join(cells)} |")
    if totals:
        means = {k: [sum(col) / len(col) for col in zip(*v)] for k, v in totals.items()}
        best = min(means, key=lambda k: means[k][-1])
        cells = [
            ("**{}**" if k == best else "{}").format(
                f"{means[k][0]:.4f} → {' / '.join(f'{v:.4f}' for v in means[k][1:])}"
            )
            if k in means
            else "–"
            for k in LATENCY_MODELS
        ]
        rows.append(f"| **mean over these rows** | | {' | '.join(cells)} |")
    return rows


UNSEEN_DEVICE_COLUMNS = (
    ("ours", "ours, one factor"),
    ("ours_power", "ours, a·pred^b"),
    ("ours_auto", "ours, auto (the default)"),
    ("measured_reference", "measured on our settings, one factor"),
    ("flops_power", "FLOPs, a·FLOPs^b"),
)


def latency_unseen_device_table() -> list[str]:
    """Devices no shipped predictor has (benchmarks/latency_unseen_device.py): test MAPE after fitting
    on K timed networks, each K of the run per cell (mean over seeds), the lowest MAPE at the largest K
    in bold; ours' Kendall tau there; last rows of means per device kind."""
    res = common.load("latency_unseen_device")
    shots = [str(k) for k in (res["shots"] if res else (5, 10, 20))]
    head = " | ".join(f"{label} MAPE, K = {' / '.join(shots)}" for _, label in UNSEEN_DEVICE_COLUMNS)
    rows = [
        f"| family, setting | predictor | {head} | ours τ (K = {shots[-1]}) |",
        "|---|---|" + "---|" * (len(UNSEEN_DEVICE_COLUMNS) + 1),
    ]
    if not res:
        return rows + ["| latency_unseen_device: not run yet |" + " |" * (len(UNSEEN_DEVICE_COLUMNS) + 2)]
    kinds: dict[str, list[dict]] = {}
    for family, settings in res["results"].items():
        for setting, r in settings.items():
            mape = {m: [r["shots"][k][m]["mape"]["mean"] for k in shots] for m, _ in UNSEEN_DEVICE_COLUMNS}
            best = min(mape, key=lambda m: mape[m][-1])
            cells = [
                ("**{}**" if m == best else "{}").format(" / ".join(f"{v:.3f}" for v in mape[m]))
                for m, _ in UNSEEN_DEVICE_COLUMNS
            ]
            tau = r["shots"][shots[-1]]["ours"]["kendall_tau"]["mean"]
            rows.append(f"| {family}, {setting} | {r['predictor']} | {' | '.join(cells)} | {tau:.3f} |")
            kinds.setdefault(_device_kind(setting), []).append(mape)
    for kind, items in kinds.items():
        means = {
            m: [statistics.mean(i[m][k] for i in items) for k in range(len(shots))] for m, _ in UNSEEN_DEVICE_COLUMNS
        }
        best = min(means, key=lambda m: means[m][-1])
        cells = [
            ("**{}**" if m == best else "{}").format(" / ".join(f"{v:.3f}" for v in means[m]))
            for m, _ in UNSEEN_DEVICE_COLUMNS
        ]
        rows.append(f"| **mean, {kind} ({len(items)} rows)** | | {' | '.join(cells)} | |")
    return rows


def _device_kind(setting: str) -> str:
    device = setting.rsplit("_", 1)[0] if setting.rsplit("_", 1)[-1].isdigit() else setting
    if any(device.startswith(g) for g in ("1080ti", "2080ti", "titan", "v100")):
        return "GPUs"
    if device.startswith(("gold", "silver")):
        return "server CPUs"
    return "phones, Raspberry Pi, FPGA, Eyeriss"


def latency_label_table() -> list[str]:
    res = common.load("latency_label_ceiling")
    rows = common.header("family", "setting", "cross-setting fit MAPE", "cross-setting fit Acc(10 %)",
                         "median latency / 2080ti_1", "log corr. with the same GPU at batch 32")
    if not res:
        return rows + ["| latency_label_ceiling: not run yet | | | | | |"]
    for family, fits in res["cross_setting"].items():
        for setting, fit in fits.items():
            ratio = res["scale_vs_2080ti_1"][family].get(setting)
            gpu = setting.removesuffix("_1")
            corr = res["log_corr_batch1_vs_batch32"][family].get(gpu) if setting.endswith("_1") else None
            rows.append(
                f"| {family} | {setting} | {ms(fit['mape'])} | {ms(fit['acc_10pct'])} | "
                f"{'–' if ratio is None else f'{ratio:.2f}'} | {'–' if corr is None else f'{corr:.2f}'} |"
            )
    return rows
