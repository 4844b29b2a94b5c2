"""Print the README's result tables (markdown) from benchmarks/results/*.json, so the README only
shows numbers that a benchmark run wrote.

    python benchmarks/report.py                  # print them
    python benchmarks/report.py --update-readme  # rewrite the tables in README.md in place
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS  # noqa: E402

# results file -> the paper's tau for its setting; our recipe first, then the earlier ones it replaced
PAPER = {"nb201_accuracy_781": 0.874, "nb201_accuracy_1563": 0.888, "nb201_accuracy_1563_512x120": 0.888,
         "nb201_accuracy_781_512x160": 0.874,
         "nb201_accuracy_781_no_augment": 0.874, "nb201_accuracy_1563_no_augment": 0.888,
         "nb201_accuracy_781_2x120": 0.874}


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _reach(run: dict, paper: float) -> str:
    if run.get("seconds_to_paper_tau") is not None:
        return f"{run['seconds_to_paper_tau'] / 60:.1f} min"
    if "reevaluated" in run and not run.get("curve"):  # re-scored afterwards: only the final tau is known
        return f"at the end ({run['train_seconds'] / 60:.1f} min)" if run["kendall_tau"] >= paper else "not reached"
    return "not reached"


def accuracy_table() -> list[str]:
    rows = ["| setting | model, epochs, recipe | paper tau | our tau, equivalence-averaged (mean ± std) | "
            "our tau, each cell alone (mean ± std) | seeds | per-seed tau (averaged / alone) | "
            "train time per run (mean ± std) | time to paper tau (per seed) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, paper in PAPER.items():
        res = _load(name)
        if not res or not res.get("runs"):
            rows.append(f"| {name} | | {paper} | not run yet | | | | | |")
            continue
        s = res["summary"]
        per_seed = ", ".join(f"{r['kendall_tau']:.4f} / {r.get('kendall_tau_plain', r['kendall_tau']):.4f}" for r in res["runs"])
        reach = ", ".join(_reach(r, paper) for r in res["runs"])
        cfg = res["config"]
        recipe = "equivalence augment" if cfg["train"].get("equivalence_augment") else "no augment"
        if cfg["train"].get("ensemble", 1) > 1:
            recipe += f", {cfg['train']['ensemble']} members"
        if cfg["train"].get("ema_decay"):
            recipe += f", EMA {cfg['train']['ema_decay']}"
        model = f"{cfg['model']['hidden']} × {cfg['model']['num_blocks']}, {cfg['train']['epochs']} ep, {recipe}"
        rows.append(
            f"| {name} | {model} | {paper} | {s['kendall_tau_mean']:.4f} ± {s['kendall_tau_std']:.4f} | "
            f"{s.get('kendall_tau_plain_mean', s['kendall_tau_mean']):.4f} ± "
            f"{s.get('kendall_tau_plain_std', s['kendall_tau_std']):.4f} | {s['seeds']} | {per_seed} | "
            f"{s['train_seconds_mean'] / 60:.1f} ± {s['train_seconds_std'] / 60:.1f} min | {reach} |"
        )
    return rows


def ensemble_table() -> list[str]:
    rows = ["| ensemble | members | tau (equivalence-averaged) | tau (each cell alone) | member taus (as each was evaluated) | total training time |",
            "|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*ensemble*.json")):
        res = json.loads(path.read_text())
        total = res.get("total_train_seconds")
        averaged = f"{res['kendall_tau']:.4f}" if res.get("average_equivalent") else "not run"
        plain = res.get("kendall_tau_plain", res["kendall_tau"])
        rows.append(
            f"| {res['name']} | {len(res['members'])} | {averaged} | {plain:.4f} | "
            f"{', '.join(f'{t:.4f}' for t in res['member_kendall_tau'] if t is not None)} | "
            f"{'' if total is None else f'{total / 60:.0f} min'} |"
        )
    return rows


def speed_table() -> list[str]:
    res = _load("nb201_predict_speed")
    rows = ["| predictor | members × (hidden × blocks) | parameters | threads | seconds for all 15,625 cells (median; mean ± std) | tau (averaged / alone) |",
            "|---|---|---|---|---|---|"]
    if not res:
        return rows
    for name, e in res["predictors"].items():
        tau = f"{e['kendall_tau']:.4f}"
        if "kendall_tau_plain" in e:
            tau += f" / {e['kendall_tau_plain']:.4f}" if e.get("average_equivalent") else " (alone)"
        rows.append(
            f"| {name} | {e.get('members', 1)} × ({e['hidden']} × {e['num_blocks']}) | {e['parameters']:,} | {e['threads']} | "
            f"{e['seconds_median']:.2f} ({e['seconds_mean']:.2f} ± {e['seconds_std']:.2f}, n={len(e['seconds'])}) | {tau} |"
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


def augment_table() -> list[str]:
    rows = ["| trial | cells | hidden × blocks | epochs | equivalence augment | merged classes | EMA decay | seeds | "
            "tau per seed (averaged) | last-epoch tau | train seconds (shared machine) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    trials = [t for name in ("nb201_recipe_search_augment", "nb201_recipe_search_ema") for t in (_load(name) or {}).get("trials", [])]
    for t in trials:
        runs = t["runs"]
        taus = ", ".join(f"{r['kendall_tau']:.4f}" for r in runs)
        last = ", ".join("–" if r["last_epoch_kendall_tau"] is None else f"{r['last_epoch_kendall_tau']:.4f}" for r in runs)
        secs = ", ".join(f"{r['train_seconds']:.0f}" for r in runs)
        train, model = t["train"], t["model"]
        rows.append(
            f"| {t['trial']} | {t['n_train']} | {model['hidden']} × {model['num_blocks']} | {train['epochs']} | "
            f"{'yes' if train.get('equivalence_augment') else 'no'} | {'yes' if train.get('merge_equivalent') else 'no'} | "
            f"{train.get('ema_decay') or '–'} | {[r['seed'] for r in runs]} | {taus} | {last} | {secs} |"
        )
    return rows


LATENCY_MODELS = {"narformer_v2": "NAR-Former V2 (ours)", "nnlp_gnn": "NNLP GNN", "gbdt": "GBDT",
                  "linear_flops_memory": "linear FLOPs + memory", "linear_flops": "linear FLOPs"}
LATENCY_IN_DOMAIN = ("latency_in_domain_b1", "latency_in_domain_b1_30ep", "latency_in_domain_b1_first_recipe",
                     "latency_in_domain_b32",
                     "latency_in_domain_b32_sum_readout", "latency_in_domain_b32_first_recipe")
LATENCY_UNSEEN = ("latency_unseen_nasbench201", "latency_unseen_fbnet", "latency_unseen_ofa")
LATENCY_FEW_SHOT = tuple(f"{name}_few_shot" for name in LATENCY_UNSEEN)


def _ms(stat: dict) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _latency_rows(names: tuple[str, ...], first_column: str, prefix=lambda name: "",
                  overall: str | None = None) -> list[str]:
    """One row per (file, setting), a mean row per file; with ``overall``, a last row so labelled: the
    mean over every (file, setting) row of all the files (the issue's "mean MAPE in (b)" over folds)."""
    head = " | ".join(f"{v} MAPE" for v in LATENCY_MODELS.values())
    rows = [f"| {first_column} | seeds | {head} | ours Acc(5 %) | ours Acc(10 %) | ours train min |",
            "|---|---|" + "---|" * (len(LATENCY_MODELS) + 3)]
    everything: dict[str, list[float]] = {}
    for name in names:
        res = _load(name)
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
                text = _ms(models[key]["overall"]["mape"])
                cells.append(f"**{text}**" if key == best else text)
            ours = models.get("narformer_v2")
            extra = ([_ms(ours["overall"]["acc_5pct"]), _ms(ours["overall"]["acc_10pct"]),
                      f"{ours['train_seconds_mean'] / 60:.1f}"] if ours else ["–"] * 3)
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


def latency_unseen_table() -> list[str]:
    return _latency_rows(LATENCY_UNSEEN, "held-out family, setting",
                         lambda name: f"{name.removeprefix('latency_unseen_')}, ",
                         overall="**all three held-out families** (mean over the nine rows)")


def latency_few_shot_table() -> list[str]:
    """Unseen-family MAPE as trained (0), then rescaled by 5 and 10 measured networks of the held-out
    family (benchmarks/latency.py --few-shot 5 10); the lowest 10-network MAPE in bold, and a last row
    of means over every (fold, setting) row."""
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| held-out family, setting | seeds | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    shots = ("5", "10")
    totals: dict[str, list[list[float]]] = {}
    for name in LATENCY_FEW_SHOT:
        res = _load(name)
        if not res or not res.get("summary"):
            rows.append(f"| {name}: not run yet |" + " |" * (len(LATENCY_MODELS) + 1))
            continue
        for setting, models in res["summary"].items():
            values = {k: [m["overall"]["mape"]["mean"]] + [m["few_shot"][n]["mape"]["mean"] for n in shots]
                      for k, m in models.items() if k in LATENCY_MODELS and "few_shot" in m}
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
        cells = [("**{}**" if k == best else "{}").format(
                     f"{means[k][0]:.4f} → {' / '.join(f'{v:.4f}' for v in means[k][1:])}") if k in means else "–"
                 for k in LATENCY_MODELS]
        rows.append(f"| **mean over these rows** | | {' | '.join(cells)} |")
    return rows


UNSEEN_DEVICE_COLUMNS = (("ours", "ours, one factor"), ("ours_power", "ours, a·pred^b"),
                         ("ours_auto", "ours, auto (the default)"),
                         ("measured_reference", "measured on our settings, one factor"),
                         ("flops_power", "FLOPs, a·FLOPs^b"))


def latency_unseen_device_table() -> list[str]:
    """Devices no shipped predictor has (benchmarks/latency_unseen_device.py): test MAPE after fitting
    on K timed networks, each K of the run per cell (mean over seeds), the lowest MAPE at the largest K
    in bold; ours' Kendall tau there; last rows of means per device kind."""
    res = _load("latency_unseen_device")
    shots = [str(k) for k in (res["shots"] if res else (5, 10, 20))]
    head = " | ".join(f"{label} MAPE, K = {' / '.join(shots)}" for _, label in UNSEEN_DEVICE_COLUMNS)
    rows = [f"| family, setting | predictor | {head} | ours τ (K = {shots[-1]}) |",
            "|---|---|" + "---|" * (len(UNSEEN_DEVICE_COLUMNS) + 1)]
    if not res:
        return rows + ["| latency_unseen_device: not run yet |" + " |" * (len(UNSEEN_DEVICE_COLUMNS) + 2)]
    kinds: dict[str, list[dict]] = {}
    for family, settings in res["results"].items():
        for setting, r in settings.items():
            mape = {m: [r["shots"][k][m]["mape"]["mean"] for k in shots] for m, _ in UNSEEN_DEVICE_COLUMNS}
            best = min(mape, key=lambda m: mape[m][-1])
            cells = [("**{}**" if m == best else "{}").format(" / ".join(f"{v:.3f}" for v in mape[m]))
                     for m, _ in UNSEEN_DEVICE_COLUMNS]
            tau = r["shots"][shots[-1]]["ours"]["kendall_tau"]["mean"]
            rows.append(f"| {family}, {setting} | {r['predictor']} | {' | '.join(cells)} | {tau:.3f} |")
            kinds.setdefault(_device_kind(setting), []).append(mape)
    for kind, items in kinds.items():
        means = {m: [statistics.mean(i[m][k] for i in items) for k in range(len(shots))] for m, _ in UNSEEN_DEVICE_COLUMNS}
        best = min(means, key=lambda m: means[m][-1])
        cells = [("**{}**" if m == best else "{}").format(" / ".join(f"{v:.3f}" for v in means[m]))
                 for m, _ in UNSEEN_DEVICE_COLUMNS]
        rows.append(f"| **mean, {kind} ({len(items)} rows)** | | {' | '.join(cells)} | |")
    return rows


def _device_kind(setting: str) -> str:
    device = setting.rsplit("_", 1)[0] if setting.rsplit("_", 1)[-1].isdigit() else setting
    if any(device.startswith(g) for g in ("1080ti", "2080ti", "titan", "v100")):
        return "GPUs"
    if device.startswith(("gold", "silver")):
        return "server CPUs"
    return "phones, Raspberry Pi, FPGA, Eyeriss"


def latency_unseen_tau_table() -> list[str]:
    """Kendall tau within the held-out family, from the runs (mean ± std over seeds)."""
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| held-out family, setting | seeds | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    for name in LATENCY_UNSEEN:
        res = _load(name)
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
            stats = {k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
                     for k, v in taus[setting].items()}
            best = max(stats, key=lambda k: stats[k]["mean"])
            cells = [("**{}**" if k == best else "{}").format(_ms(stats[k])) if k in stats else "–" for k in LATENCY_MODELS]
            rows.append(f"| {name.removeprefix('latency_unseen_')}, {setting} | "
                        f"{', '.join(map(str, sorted(seeds[setting])))} | {' | '.join(cells)} |")
    return rows


def latency_family_table() -> list[str]:
    head = " | ".join(LATENCY_MODELS.values())
    rows = [f"| setting | family | {head} |", "|---|---|" + "---|" * len(LATENCY_MODELS)]
    for name in LATENCY_IN_DOMAIN:
        res = _load(name)
        for setting, models in ((res or {}).get("summary") or {}).items():
            families = next(iter(models.values()))["per_family"]
            for family in families:
                values = {k: m["per_family"][family]["mape"]["mean"] for k, m in models.items()
                          if k in LATENCY_MODELS and family in m["per_family"]}
                best = min(values, key=values.get)
                cells = [("**{:.4f}**" if k == best else "{:.4f}").format(values[k]) if k in values else "–"
                         for k in LATENCY_MODELS]
                rows.append(f"| {_recipe(name)}{setting} | {family} | {' | '.join(cells)} |")
    return rows


def latency_label_table() -> list[str]:
    res = _load("latency_label_ceiling")
    rows = ["| family | setting | cross-setting fit MAPE | cross-setting fit Acc(10 %) | median latency / 2080ti_1 | "
            "log corr. with the same GPU at batch 32 |", "|---|---|---|---|---|---|"]
    if not res:
        return rows + ["| latency_label_ceiling: not run yet | | | | | |"]
    for family, fits in res["cross_setting"].items():
        for setting, fit in fits.items():
            ratio = res["scale_vs_2080ti_1"][family].get(setting)
            gpu = setting.removesuffix("_1")
            corr = res["log_corr_batch1_vs_batch32"][family].get(gpu) if setting.endswith("_1") else None
            rows.append(f"| {family} | {setting} | {_ms(fit['mape'])} | {_ms(fit['acc_10pct'])} | "
                        f"{'–' if ratio is None else f'{ratio:.2f}'} | {'–' if corr is None else f'{corr:.2f}'} |")
    return rows


MEASURED_IN_DOMAIN = "latency_measured_cpu"
MEASURED_UNSEEN_PREFIX = "latency_measured_cpu_unseen_"


def _mape_acc(row: dict | None) -> str:
    """'MAPE ± std / Acc(10 %) ± std' of one summary row's metrics (overall or one family's)."""
    if row is None:
        return "–"
    return f"{_ms(row['mape'])} / {row['acc_10pct']['mean']:.3f} ± {row['acc_10pct']['std']:.3f}"


def _bold_best(cells: dict[str, str], mapes: dict[str, float]) -> list[str]:
    best = min(mapes, key=mapes.get) if mapes else None
    return [f"**{cells[k]}**" if k == best else cells.get(k, "–") for k in LATENCY_MODELS]


def measured_in_domain_table() -> list[str]:
    """Issue 6, Table 1 analogue on the dataset measured on this machine: per family and over all test
    models, MAPE and Acc(10 %) of every model (mean ± std over seeds, same splits)."""
    head = " | ".join(f"{v} MAPE / Acc(10 %)" for v in LATENCY_MODELS.values())
    rows = [f"| family | test models | seeds | {head} |", "|---|---|---|" + "---|" * len(LATENCY_MODELS)]
    res = _load(MEASURED_IN_DOMAIN)
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
            mapes = {k: m["per_family"][family]["mape"]["mean"] for k, m in models.items()
                     if k in LATENCY_MODELS and family in m["per_family"]}
            rows.append(f"| {family} | {num} | {seeds} | {' | '.join(_bold_best(cells, mapes))} |")
        cells = {k: _mape_acc(m["overall"]) for k, m in models.items() if k in LATENCY_MODELS}
        mapes = {k: m["overall"]["mape"]["mean"] for k, m in models.items() if k in LATENCY_MODELS}
        num = runs[0]["test"][setting]["overall"]["num"]
        rows.append(f"| **all test models** | {num} | {seeds} | {' | '.join(_bold_best(cells, mapes))} |")
        fam_means = {k: statistics.mean(m["per_family"][f]["mape"]["mean"] for f in families)
                     for k, m in models.items() if k in LATENCY_MODELS}
        cells = {k: f"{v:.4f}" for k, v in fam_means.items()}
        rows.append(f"| **average over families** | | | {' | '.join(_bold_best(cells, fam_means))} |")
    return rows


# the first Table 2 runs: the in-domain config (graph-level sum readout, no op groups) at 60 epochs
MEASURED_UNSEEN_SUM_PREFIX = "latency_measured_cpu_unseen-sum_"
# the second: graph-level sum readout with op-group tokens and op dropout, before the roofline readout
MEASURED_UNSEEN_SUM_GROUPS_PREFIX = "latency_measured_cpu_unseen-sum-groups_"


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
        rows.append(f"| **average over the {complete} held-out families with every model** | | "
                    f"{' | '.join(_bold_best(cells, avg))} |")
    return rows


MEASURED_PILOT_PREFIX = "latency_measured_cpu_pilot_"


def measured_pilot_table() -> list[str]:
    """Recipe pilots on the measured dataset (one seed each; the data column says which labels)."""
    rows = ["| pilot | labels | split | model | epochs | batch | lr | value loss | readout / output | channel flags | "
            "op groups / op dropout | test models | test MAPE | Acc(10 %) | worst families (MAPE) | train s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob(f"{MEASURED_PILOT_PREFIX}*.json")):
        res = json.loads(path.read_text())
        data = res["config"]["data"]
        # pilots run before the committed dataset was relabelled on one host carry "mixed" in their names;
        # the "here" ones read a scratch copy of the labels measured on this host by then
        if "mixed" in path.stem:
            labels = "mixed hosts"
        else:
            labels = "this host only" if data["dataset_dir"].startswith("runs/") else "one host, whole dataset"
        if data.get("max_per_family"):
            labels += f", {data['max_per_family']} per family"
        for run in res["runs"]:
            tr, mc = run.get("train"), run.get("model_config")  # none for the cost-feature baselines
            metrics = next(iter(run["test"].values()))
            fam = sorted(metrics["per_family"].items(), key=lambda kv: -kv[1]["mape"])[:3]
            worst = ", ".join(f"{f} {m['mape']:.2f}" for f, m in fam)
            encoding = res["config"].get("encoding", {})
            split = f"unseen: {data['test_family']}" if data.get("split") == "unseen" else "in domain"
            groups = f"yes / {mc.get('op_dropout', 0.0):g}" if tr and encoding.get("op_groups") else "no"
            rows.append(f"| {path.stem.removeprefix(MEASURED_PILOT_PREFIX)} | {labels} | {split} | {LATENCY_MODELS[run['model']]} | "
                        + (f"{tr['epochs']} | {tr['batch_size']} | {tr['lr']:g} | {tr['value_loss']} | "
                           f"{mc.get('readout', 'sum')} / {mc['output']} | " if tr else "– | – | – | – | – | ")
                        # the cost-feature baselines read no tokens
                        + (("yes | " if encoding.get("channel_alignment") else "no | ") + f"{groups} | " if tr else "– | – | ")
                        + f"{metrics['overall']['num']} | "
                        f"{metrics['overall']['mape']:.3f} | {metrics['overall']['acc_10pct']:.3f} | {worst} | "
                        f"{run['train_seconds']:.0f} |")
    return rows


SEARCH_STRATEGIES = ("random", "evolution", "tpe", "evolution-guided", "tpe-guided", "predictor-v1", "predictor-v2",
                     "predictor")
SEARCH_FILES = ("search_nb201", "search_nb201_pixel3_10.6756ms")


#: the paper's Table 3 (NAR-Former V2 row): (training cells, tested on) -> tau
NB101_PAPER = {"nb101_accuracy_424": (424, "all 423,624 cells", 0.773), "nb101_accuracy_4236": (4236, "all 423,624 cells", 0.861)}


def nb101_table() -> list[str]:
    """The held-out mini-protocol on the shared 292-cell subset, its size baselines, and the paper's
    protocol, which needs the official file."""
    rows = ["| protocol | data | train / valid / test cells | predictor | tau (mean ± std) | seeds | per-seed tau | train time per run |",
            "|---|---|---|---|---|---|---|---|"]
    res = _load("nb101_accuracy_subset")
    base = _load("nb101_subset_baselines")
    if res and res.get("runs"):
        s, cfg = res["summary"], res["config"]
        n_test = res["runs"][0].get("n_test", "?")
        split = f"{cfg['data']['n_train']} / {cfg['data']['n_valid']} / {n_test}"
        model = f"NAR-Former V2 {cfg['model']['hidden']} × {cfg['model']['num_blocks']}, {cfg['train']['epochs']} ep"
        per_seed = ", ".join(f"{r['kendall_tau']:.3f}" for r in res["runs"])
        rows.append(f"| held-out mini-protocol (new split per seed) | shared NASLib subset (292 cells) | {split} | "
                    f"{model} | {s['kendall_tau_mean']:.4f} ± {s['kendall_tau_std']:.4f} | {len(res['runs'])} | "
                    f"{per_seed} | "
                    f"{s['train_seconds_mean'] / 60:.1f} ± {s['train_seconds_std'] / 60:.1f} min |")
        if base:
            for key, what in (("params_tau", "parameter count"), ("flops_tau", "FLOPs")):
                st = base["summary"][key]
                per_seed = ", ".join(f"{r[key]:.3f}" for r in base["runs"])
                rows.append(f"| same splits | same | {split} | {what} alone (no learning) | {st['mean']:.4f} ± "
                            f"{st['std']:.4f} | {len(base['runs'])} | {per_seed} | – |")
    else:
        rows.append("| held-out mini-protocol | shared NASLib subset | | not run yet | | | | |")
    for name, (n, tested, paper) in NB101_PAPER.items():
        ours = _load(name)
        text = "not run: needs nasbench_only108.tfrecord" if not ours or not ours.get("runs") else \
            f"{ours['summary']['kendall_tau_mean']:.4f} ± {ours['summary']['kendall_tau_std']:.4f}"
        rows.append(f"| paper protocol (`configs/{name}.yaml`) | official file | {n} / 200 / {tested} | paper: {paper}; ours | "
                    f"{text} | | | |")
    return rows


def search_table() -> list[str]:
    """Mean ± std best test accuracy per budget, share of runs that returned the optimum, median
    evaluations to it, for every dataset and strategy of the search benchmarks."""
    budgets = (25, 50, 100, 150, 200)
    rows = ["| bound | dataset | strategy | seeds | " + " | ".join(f"best test @{b}" for b in budgets)
            + " | optimum by 100 | by 200 | median evals to optimum | violations | mean s/run |",
            "|---|---|---|---|" + "---|" * (len(budgets) + 5)]
    for name in SEARCH_FILES:
        res = _load(name)
        if not res or not res.get("summary"):
            rows.append(f"| {name}: not run yet |" + " |" * (len(budgets) + 8))
            continue
        bound = res.get("constraint")
        bound_text = f"{bound['device']} ≤ {bound['max_ms']:g} ms" if bound else "none"
        order = ("cifar10", "cifar100", "ImageNet16-120")
        for dataset, by_strategy in sorted(res["summary"].items(), key=lambda kv: order.index(kv[0])):
            for label in SEARCH_STRATEGIES:
                row = by_strategy.get(label)
                if row is None:
                    continue
                best = max(r["best_test_50"]["mean"] for r in by_strategy.values() if "best_test_50" in r)
                cells = []
                for b in budgets:
                    st = row.get(f"best_test_{b}")
                    text = "–" if st is None else f"{st['mean']:.2f} ± {st['std']:.2f}"
                    cells.append(f"**{text}**" if st is not None and b == 50 and st["mean"] == best else text)
                med = row["median_evaluations_to_optimum"]
                rows.append(
                    f"| {bound_text} | {dataset} | {label} | {row['seeds']} | {' | '.join(cells)} | "
                    f"{row.get('reached_100', 0):.0%} | {row.get('reached_200', 0):.0%} | "
                    f"{'not reached' if med is None else f'{med:g}'} | {row.get('latency_violations', '–')} | "
                    f"{row['wall_seconds_mean']:.1f} |")
    return rows


def real_networks_table() -> list[str]:
    """benchmarks/real_networks.py check: torchvision/timm networks through the ONNX encoder."""
    run = _load("real_networks")
    if run is None:
        return ["| (no results: run `python benchmarks/real_networks.py check`) |", "|---|"]
    rows, s = run["rows"], run["summary"]
    published = [r for r in rows if r.get("published_gmacs") and r.get("published_resolution") == r["resolution"]]
    worst = max(abs(r["macs_rel_diff"]) for r in rows if r.get("macs_rel_diff") is not None)

    def verdicts(key: str) -> str:
        v = s[key]
        return f"{v['exact']} exactly 32x, {v['refused']} refused with an error, {v['wrong']} wrong, {v['crashed']} crashed"

    return [
        "| check | result |",
        "|---|---|",
        f"| networks (torchvision + timm, weight-free, opset 17) | {s['networks']}: {s['at_224']} at 224, {s['at_160']} at 160, "
        f"{s['families']} families |",
        f"| encoded | {s['encoded']} of {s['networks']}; tensors left unsized: {s['unresolved_shapes']} |",
        f"| Conv/Gemm/MatMul/Einsum MACs within 1 % of FlopCounterMode | {s['macs_within_1pct']} of {s['networks']} "
        f"(largest difference {100 * worst:.2f} %) |",
        f"| FlopCounterMode vs torchvision's published GMACs | {len(published)} networks, largest difference "
        f"{100 * max(abs(r['reference_vs_published_rel']) for r in published):.2f} % (the published figures are rounded) |",
        f"| batch 32, file re-read at batch 32 (`latency --batch 32`) | {verdicts('batch32_reexport_free')} |",
        f"| batch 32, graph re-batched (`rebatch`, search spaces' graphs) | {verdicts('batch32_rebatch')} |",
        f"| encode time, one thread (best of {run['command'].split('--repeats ')[1].split()[0] if '--repeats' in run['command'] else '?'}) | "
        f"ResNet-50 {s['resnet50_encode_ms']:.1f} ms, timm Swin-T {s['swin_t_encode_ms']:.0f} ms, torchvision Swin-T "
        f"{s['swin_t_torchvision_encode_ms']:.0f} ms, median {s['encode_ms']['median']:.1f} ms |",
    ]


def bad_inputs_table() -> list[str]:
    """benchmarks/bad_inputs.py: every bad input tried, by category."""
    run = _load("bad_inputs")
    if run is None:
        return ["| (no results: run `python benchmarks/bad_inputs.py`) |", "|---|"]
    rows = ["| category | kinds tried | clear error | right result | neither |", "|---|---|---|---|---|"]
    for category, c in run["summary"]["by_category"].items():
        rows.append(f"| {category} | {c['kinds']} | {c['clear error']} | {c['correct result']} | {c['fail']} |")
    t = run["summary"]["total"]
    rows.append(f"| **all** | **{t['kinds']}** | **{t['clear error']}** | **{t['correct result']}** | **{t['fail']}** |")
    return rows


REAL_MODELS = {"grounded": "NAR-Former V2 + per-operator times (grounded readout)",
               "op_feature": "NAR-Former V2 + per-operator times (token feature, roofline readout)",
               "graph": "NAR-Former V2 graph model alone (roofline readout)", "op_sum": "sum of per-operator predictions (nn-Meter)",
               "op_sum_fit": "sum of per-operator predictions x one factor", "nnlp_gnn": "NNLP GNN",
               "gbdt": "GBDT on cost features", "flops_memory_line": "FLOPs + memory line"}


def _shipped_real_model() -> str | None:
    """The benchmark model behind the shipped latency-cpu-ort (its checkpoint's folder is the model's name)."""
    manifest = Path(__file__).resolve().parent.parent / "nas_predictor" / "pretrained" / "manifest.json"
    entry = json.loads(manifest.read_text()).get("latency-cpu-ort", {}) if manifest.is_file() else {}
    source = entry.get("source_checkpoint")
    return Path(source).parent.name if source else None


def _real_label(name: str, label: str) -> str:
    return f"**{label}; shipped**" if name == _shipped_real_model() else label


def _pm(stat: dict | None, pct: bool = True, digits: int = 1) -> str:
    if not stat:
        return "-"
    scale = 100 if pct else 1
    unit = " %" if pct else ""
    worst = f" (worst {scale * stat['worst']:.{digits}f})" if stat.get("n", 1) > 1 else ""
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}{unit}{worst}"


def latency_real_table(part: str = "all") -> list[str]:
    """Real torchvision/timm networks, labels of the training machine (or after 5-shot calibration)."""
    run = _load("latency_real")
    if not run:
        return ["| model | status |", "|---|---|", "| all | not run yet |"]
    summary = run["summary"]
    rows = ["| model | seeds | MAPE | Acc(10 %) | Spearman | max error |", "|---|---|---|---|---|---|"]
    for name, label in REAL_MODELS.items():
        row = summary.get(name)
        if not row or part not in row:
            continue
        r = row[part]
        rows.append(f"| {_real_label(name, label)} | {len(row['seeds'])} | {_pm(r.get('mape'))} | {_pm(r.get('acc_10pct'), digits=0)} | "
                    f"{_pm(r.get('spearman'), pct=False, digits=3)} | {_pm(r.get('max_error'), digits=0)} |")
    return rows


def latency_real_lofo_table() -> list[str]:
    run = _load("latency_real_lofo")
    if not run or "lofo_average" not in run.get("summary", {}):
        return ["| model | status |", "|---|---|", "| all | not run yet |"]
    rows = ["| model | families held out | average MAPE over families |", "|---|---|---|"]
    for name, label in REAL_MODELS.items():
        row = run["summary"]["lofo_average"].get(name)
        if row:
            rows.append(f"| {_real_label(name, label)} | {', '.join(map(str, row['families']))} | {_pm(row['mape_mean_over_families'])} |")
    return rows


def latency_real_speed_table() -> list[str]:
    """Seconds to predict 1,000 real networks: the shipped predictor timed alone (``--speed``), and each
    neural model of the run, timed on its own core right after training (one thread)."""
    run = _load("latency_real")
    rows = ["| predictor | threads | from graphs | reading the ONNX files | from ONNX files | timed |", "|---|---|---|---|---|---|"]
    if run and run.get("speed"):
        sp = run["speed"]
        for threads, t in sp["threads"].items():
            rows.append(f"| shipped `{sp['predictor']}` | {threads} | {t['predict_from_graphs_s']:.1f} s | "
                        f"{1000 * t['onnx_encode_mean_s']:.0f} ms each | {t['predict_from_onnx_s']:.0f} s | alone, `--speed` |")
    for name, label in REAL_MODELS.items():
        times = [r["predict_speed"] for r in (run or {}).get("runs", []) if r["model"] == name and r.get("predict_speed")]
        if times:
            graphs = [t["predict_from_graphs_s"] for t in times]
            rows.append(f"| {_real_label(name, label)} | 1 | {statistics.mean(graphs):.1f} s (worst {max(graphs):.1f}) | - | - | "
                        f"after training, {len(times)} seed(s), the other core training |")
    if len(rows) == 2:
        rows.append("| - | - | not run yet | - | - | - |")
    return rows


def real_retest_table() -> list[str]:
    path = Path(__file__).resolve().parent / "latency_dataset" / "real_networks_cpu_1t" / "retest_summary.json"
    if not path.is_file():
        return ["| networks | status |", "|---|---|", "| all | retest not measured yet |"]
    r = json.loads(path.read_text())
    return ["| networks | mean diff | median diff | p90 diff | max diff | within 5 % | within 10 % | measured |",
            "|---|---|---|---|---|---|---|---|",
            f"| {r['networks']} | {100 * r['mean_diff']:.1f} % | {100 * r['median_diff']:.1f} % | {100 * r['p90_diff']:.1f} % | "
            f"{100 * r['max_diff']:.1f} % | {100 * r['within_5pct']:.0f} % | {100 * r['within_10pct']:.0f} % | "
            f"{r['first'][:16]} to {r['last'][:16]} UTC |"]


# docs/latency.md heading -> table under it; `--update-docs` rewrites them as --update-readme does the README's.
DOCS_TABLES = {
    "docs/latency.md": {
        "#### Real-network labels: test-retest agreement": real_retest_table,
        "#### Real networks, labels of the training machine": latency_real_table,
        "#### Real networks, families seen in training": lambda: latency_real_table("seen"),
        "#### Real networks, families never seen in training": lambda: latency_real_table("unseen"),
        "#### Real networks after calibrating with 5 timed networks": lambda: latency_real_table("calibrated_5"),
        "#### Leave one generated family out": latency_real_lofo_table,
        "#### Predicting 1,000 real networks": latency_real_speed_table,
    },
}

# README heading -> table under it; `--update-readme` rewrites the first table after each heading.
README_TABLES = {
    "#### NAS-Bench-201 accuracy prediction (paper Table 4)": accuracy_table,
    "#### Ensembles (averaging trained predictors)": ensemble_table,
    "#### Scoring all 15,625 cells (graph building + tokenising + model)": speed_table,
    "#### Recipe search (781 cells, seed 0, one run each)": recipe_table,
    "#### Recipe search, second round (equivalence augmentation, weight averaging)": augment_table,
    "#### Whole-network latency, in domain (paper Table 1 analogue)": latency_in_domain_table,
    "#### Whole-network latency per family (in domain, test MAPE, mean over seeds)": latency_family_table,
    "#### Whole-network latency, unseen structure (paper Table 2 analogue)": latency_unseen_table,
    "#### Whole-network latency, unseen structure: ranking within the held-out family": latency_unseen_tau_table,
    "#### Whole-network latency, unseen structure: rescaled by a few measured networks": latency_few_shot_table,
    "#### Whole-network latency on devices no predictor saw: a few timings": latency_unseen_device_table,
    "#### Latency labels: how much other measurements of the same network explain": latency_label_table,
    "#### Latency measured on this machine: recipe pilots": measured_pilot_table,
    "#### Latency measured on this machine, in domain (NNLQP Table 1 analogue)": measured_in_domain_table,
    "#### Latency measured on this machine, unseen family (NNLQP Table 2 analogue)": measured_unseen_table,
    "#### Latency measured on this machine, unseen family: first runs (in-domain recipe)":
        lambda: measured_unseen_table(MEASURED_UNSEEN_SUM_PREFIX),
    "#### Latency measured on this machine, unseen family: second runs (sum readout, op groups)":
        lambda: measured_unseen_table(MEASURED_UNSEEN_SUM_GROUPS_PREFIX),
    "#### Predictor-guided search on NAS-Bench-201": search_table,
    "#### NAS-Bench-101 accuracy prediction (paper Table 3 analogue)": nb101_table,
    "#### Real torchvision/timm networks through the ONNX encoder": real_networks_table,
    "#### Bad inputs: each one a clear error or a right result": bad_inputs_table,
}


def update_readme(path: Path, tables: dict | None = None) -> None:
    lines = path.read_text().splitlines()
    for heading, make in (README_TABLES if tables is None else tables).items():
        if heading not in lines:
            raise SystemExit(f"{path}: heading {heading!r} not found")
        start = lines.index(heading) + 1
        # the section's table: its first "|" line, or, for a section without one yet, a new table just
        # before the next heading (never the next section's table)
        while start < len(lines) and not lines[start].startswith(("|", "#")):
            start += 1
        if start == len(lines) or lines[start].startswith("#"):
            lines[start:start] = [""]
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        lines[start:end] = make()
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if "--update-readme" in sys.argv:
        update_readme(Path(__file__).resolve().parents[1] / "README.md")
    if "--update-docs" in sys.argv:
        for doc, tables in DOCS_TABLES.items():
            update_readme(Path(__file__).resolve().parents[1] / doc, tables)
    if "--update-readme" not in sys.argv and "--update-docs" not in sys.argv:
        for heading, make in README_TABLES.items():
            print(f"{heading}\n")
            print("\n".join(make()) + "\n")
