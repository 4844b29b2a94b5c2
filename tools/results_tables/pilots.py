"""The one table of recipe pilots and superseded runs: one row per run, what it tried and what it scored."""

from __future__ import annotations

import json
import statistics

from . import common
from .common import LATENCY_MODELS, RESULTS
from .measured import MEASURED_UNSEEN_SUM_GROUPS_PREFIX, MEASURED_UNSEEN_SUM_PREFIX, _mape_acc

MEASURED_PILOT_PREFIX = "latency_measured_cpu_pilot_"
# pilots and superseded runs of the other benchmarks, shown one row per file (per trial for the search)
OTHER_PILOTS = (
    "latency_in_domain_b1_pilot_*",
    "latency_in_domain_b32_pilot_*",
    "latency_unseen_*_pilot_*",
    "latency_real_pilot_*",
    "latency_real_s27_ema_lag",
    "latency_real_s28_first67",
    "search_predictor_pilot",
)
SHORT = {
    "narformer_v2": "ours",
    "nnlp_gnn": "NNLP GNN",
    "nnlp_gnn_exp_output": "NNLP GNN (exp output)",
    "gbdt": "GBDT",
    "linear_flops_memory": "FLOPs + memory line",
    "linear_flops": "FLOPs line",
}


def _row(file: str, run: str, what: str, seeds: str, result: str) -> str:
    return f"| `{file}` | {run} | {what} | {seeds} | {result} |"


def recipe_rows() -> list[str]:
    """NB201 recipe search, first round (781 cells, seed 0, one run each)."""
    res = common.load("nb201_recipe_search")
    rows = []
    for r in (res or {}).get("runs", []):
        ov = " ".join(o for o in r["overrides"] if not o.startswith("train.threads"))
        rows.append(
            _row(
                "nb201_recipe_search",
                r["run"],
                f"781 cells: `{ov}`",
                "0",
                f"tau {r['kendall_tau']:.4f}, {r['train_seconds']:.0f} s",
            )
        )
    return rows


def augment_rows() -> list[str]:
    """NB201 recipe search, second round (equivalence augmentation, merged classes, weight averaging)."""
    rows = []
    for name in ("nb201_recipe_search_augment", "nb201_recipe_search_ema"):
        for t in (common.load(name) or {}).get("trials", []):
            train, model, runs = t["train"], t["model"], t["runs"]
            what = (
                f"{t['n_train']} cells, {model['hidden']} × {model['num_blocks']}, {train['epochs']} ep, "
                f"equivalence augment {'yes' if train.get('equivalence_augment') else 'no'}, merged classes "
                f"{'yes' if train.get('merge_equivalent') else 'no'}, EMA {train.get('ema_decay') or '–'}"
            )
            result = "; ".join(
                f"seed {r['seed']}: tau {r['kendall_tau']:.4f} (last epoch "
                f"{'–' if r['last_epoch_kendall_tau'] is None else format(r['last_epoch_kendall_tau'], '.4f')}), "
                f"{r['train_seconds']:.0f} s"
                for r in runs
            )
            rows.append(_row(name, t["trial"], what, ", ".join(str(r["seed"]) for r in runs), result))
    return rows


def measured_pilot_rows() -> list[str]:
    """Recipe pilots on the measured CPU dataset (one seed each; 'labels' says which labels they read)."""
    rows = []
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
        encoding = res["config"].get("encoding", {})
        split = f"unseen: {data['test_family']}" if data.get("split") == "unseen" else "in domain"
        for run in res["runs"]:
            tr, mc = run.get("train"), run.get("model_config")  # none for the cost-feature baselines
            metrics = next(iter(run["test"].values()))
            fam = sorted(metrics["per_family"].items(), key=lambda kv: -kv[1]["mape"])[:3]
            worst = ", ".join(f"{f} {m['mape']:.2f}" for f, m in fam)
            what = f"labels: {labels}; {split}"
            if tr:  # the cost-feature baselines read no tokens and have no training recipe
                groups = f"yes / {mc.get('op_dropout', 0.0):g}" if encoding.get("op_groups") else "no"
                what += (
                    f"; {tr['epochs']} ep, batch {tr['batch_size']}, lr {tr['lr']:g}, {tr['value_loss']}; "
                    f"readout / output {mc.get('readout', 'sum')} / {mc['output']}; channel flags "
                    f"{'yes' if encoding.get('channel_alignment') else 'no'}; op groups / op dropout {groups}"
                )
            o = metrics["overall"]
            rows.append(
                _row(
                    path.stem,
                    f"{path.stem.removeprefix(MEASURED_PILOT_PREFIX)}: {LATENCY_MODELS[run['model']]}",
                    what,
                    str(run["seed"]),
                    f"test MAPE {o['mape']:.3f}, Acc(10 %) {o['acc_10pct']:.3f} on {o['num']} models; worst "
                    f"families (MAPE) {worst}; {run['train_seconds']:.0f} s",
                )
            )
    return rows


def measured_unseen_rows(prefix: str, what: str) -> list[str]:
    """Earlier unseen-family recipes on the measured dataset: one row per held-out family, then the mean."""
    rows, means, complete = [], {}, 0
    for path in sorted(RESULTS.glob(f"{prefix}*.json")):
        res = json.loads(path.read_text())
        for models in (res.get("summary") or {}).values():
            mapes = {k: m["overall"]["mape"]["mean"] for k, m in models.items() if k in LATENCY_MODELS}
            cells = [f"{SHORT[k]} {_mape_acc(m['overall'])}" for k, m in models.items() if k in LATENCY_MODELS]
            seeds = sorted({s for m in models.values() for s in m["seeds"]})
            rows.append(
                _row(
                    path.stem,
                    f"held out: {path.stem.removeprefix(prefix)}",
                    what,
                    ", ".join(map(str, seeds)),
                    "MAPE / Acc(10 %): " + "; ".join(cells),
                )
            )
            if all(k in mapes for k in LATENCY_MODELS):
                complete += 1
                for k, v in mapes.items():
                    means.setdefault(k, []).append(v)
    if means:
        avg = "; ".join(f"{SHORT[k]} {statistics.mean(v):.4f}" for k, v in means.items())
        rows.append(
            _row(
                f"{prefix}*",
                f"**average over the {complete} held-out families with every model**",
                what,
                "",
                f"MAPE: {avg}",
            )
        )
    return rows


def _what(data: dict, script: str) -> str:
    """The recorded command lines, from the script name on (the interpreter and path are the same)."""
    commands = common.recorded_commands(data)
    return "<br>".join(f"`{c.split(script, 1)[-1].strip() or c}`" for c in commands) or "not recorded"


def _latency_result(data: dict) -> str:
    """Headline of a latency pilot: each model's test MAPE, averaged over the file's settings or parts."""
    summary = data.get("summary") or {}
    first = next(iter(summary.values()), {})
    if "all" in first:  # benchmarks/latency_real.py: {model: {all: ..., generated_test: ...}}
        return "; ".join(
            f"{model} real networks {100 * row['all']['mape']['mean']:.1f} %, generated test "
            f"{100 * row['generated_test']['mape']['mean']:.1f} %"
            for model, row in summary.items()
            if "all" in row and "generated_test" in row
        )
    per_model: dict[str, list[float]] = {}
    for models in summary.values():
        for key, m in models.items():
            per_model.setdefault(key, []).append(m["overall"]["mape"]["mean"])
    return "mean test MAPE over the settings: " + "; ".join(
        f"{SHORT.get(k, k)} {statistics.mean(v):.4f}" for k, v in per_model.items()
    )


def _search_rows(data: dict) -> list[str]:
    rows = []
    for t in data.get("trials", []):
        runs = t["runs"]
        at = {b: statistics.mean(r[f"best_test_{b}"] for r in runs) for b in (50, 100)}
        reached = sum(r["evaluations_to_optimum"] is not None for r in runs)
        note = f"; {t['note']}" if t.get("note") else ""
        rows.append(
            _row(
                "search_predictor_pilot",
                t["trial"],
                f"`{t['command']}`",
                common.seed_text({r["seed"] for r in runs}),
                f"mean best test @50 {at[50]:.2f}, @100 {at[100]:.2f}; optimum in {reached} of {len(runs)} runs{note}",
            )
        )
    return rows


def other_rows() -> list[str]:
    rows = []
    stems = [s for pattern in OTHER_PILOTS for s in common.glob_stems(pattern)]
    for stem in dict.fromkeys(stems):
        data = common.load(stem)
        if stem == "search_predictor_pilot":
            rows += _search_rows(data)
            continue
        script = "latency_real.py" if data.get("benchmark") == "latency_real" else "latency.py"
        rows.append(
            _row(
                stem,
                "all models of the file",
                _what(data, script),
                common.seed_text(common.run_seeds(data)),
                _latency_result(data),
            )
        )
    return rows


def pilots_table() -> list[str]:
    rows = ["| results file | run | what was tried | seeds | result |", "|---|---|---|---|---|"]
    rows += recipe_rows() + augment_rows() + measured_pilot_rows()
    rows += measured_unseen_rows(
        MEASURED_UNSEEN_SUM_PREFIX, "first unseen-family runs: the in-domain config (sum readout, no op groups), 60 ep"
    )
    rows += measured_unseen_rows(
        MEASURED_UNSEEN_SUM_GROUPS_PREFIX, "second runs: sum readout with op-group tokens and op dropout 0.2, 60 ep"
    )
    return rows + other_rows()


def pilot_stems() -> list[str]:
    """Every results file the pilots table reads, for its section's seeds and machine."""
    stems = ["nb201_recipe_search", "nb201_recipe_search_augment", "nb201_recipe_search_ema"]
    for pattern in (
        f"{MEASURED_PILOT_PREFIX}*",
        f"{MEASURED_UNSEEN_SUM_PREFIX}*",
        f"{MEASURED_UNSEEN_SUM_GROUPS_PREFIX}*",
        *OTHER_PILOTS,
    ):
        stems += common.glob_stems(pattern)
    return list(dict.fromkeys(stems))
