"""NAS-Bench-201/-101 accuracy prediction and search tables."""

from __future__ import annotations

import json

from . import common
from .common import RESULTS

# results file -> the paper's tau for its setting; our recipe first, then the earlier ones it replaced
PAPER = {
    "nb201_accuracy_781": 0.874,
    "nb201_accuracy_1563": 0.888,
    "nb201_accuracy_1563_512x120": 0.888,
    "nb201_accuracy_781_512x160": 0.874,
    "nb201_accuracy_781_no_augment": 0.874,
    "nb201_accuracy_1563_no_augment": 0.888,
    "nb201_accuracy_781_2x120": 0.874,
}


def _reach(run: dict, paper: float) -> str:
    if run.get("seconds_to_paper_tau") is not None:
        return f"{run['seconds_to_paper_tau'] / 60:.1f} min"
    if "reevaluated" in run and not run.get("curve"):  # re-scored afterwards: only the final tau is known
        return f"at the end ({run['train_seconds'] / 60:.1f} min)" if run["kendall_tau"] >= paper else "not reached"
    return "not reached"


def accuracy_table() -> list[str]:
    rows = [
        "| setting | model, epochs, recipe | paper tau | our tau, equivalence-averaged (mean ± std) | "
        "our tau, each cell alone (mean ± std) | seeds | per-seed tau (averaged / alone) | "
        "train time per run (mean ± std) | time to paper tau (per seed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, paper in PAPER.items():
        res = common.load(name)
        if not res or not res.get("runs"):
            rows.append(f"| {name} | | {paper} | not run yet | | | | | |")
            continue
        s = res["summary"]
        per_seed = ", ".join(
            f"{r['kendall_tau']:.4f} / {r.get('kendall_tau_plain', r['kendall_tau']):.4f}" for r in res["runs"]
        )
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
    rows = common.header("ensemble", "members", "tau (equivalence-averaged)", "tau (each cell alone)",
                         "member taus (as each was evaluated)", "total training time")
    for path in sorted(RESULTS.glob("*ensemble*.json")):
        res = json.loads(path.read_text())
        total = res.get("total_train_seconds")
        averaged = f"{res['kendall_tau']:.4f}" if res.get("average_equivalent") else "not run"
        plain = res.get("kendall_tau_plain", res["kendall_tau"])
        rows.append(common.row(res["name"], len(res["members"]), averaged, f"{plain:.4f}",
                               ", ".join(f"{t:.4f}" for t in res["member_kendall_tau"] if t is not None),
                               "" if total is None else f"{total / 60:.0f} min"))
    return rows


def speed_table() -> list[str]:
    res = common.load("nb201_predict_speed")
    rows = common.header("predictor", "members × (hidden × blocks)", "parameters", "threads",
                         "seconds for all 15,625 cells (median; mean ± std)", "tau (averaged / alone)")
    if not res:
        return rows
    for name, e in res["predictors"].items():
        tau = f"{e['kendall_tau']:.4f}"
        if "kendall_tau_plain" in e:
            tau += f" / {e['kendall_tau_plain']:.4f}" if e.get("average_equivalent") else " (alone)"
        rows.append(common.row(
            name, f"{e.get('members', 1)} × ({e['hidden']} × {e['num_blocks']})", f"{e['parameters']:,}", e["threads"],
            f"{e['seconds_median']:.2f} ({e['seconds_mean']:.2f} ± {e['seconds_std']:.2f}, n={len(e['seconds'])})", tau))
    return rows


#: the paper's Table 3 (NAR-Former V2 row): (training cells, tested on) -> tau
NB101_PAPER = {
    "nb101_accuracy_424": (424, "all 423,624 cells", 0.773),
    "nb101_accuracy_4236": (4236, "all 423,624 cells", 0.861),
}


def nb101_table() -> list[str]:
    """The held-out mini-protocol on the shared 292-cell subset, its size baselines, and the paper's
    protocol, which needs the official file."""
    rows = [
        "| protocol | data | train / valid / test cells | predictor | tau (mean ± std) | seeds | per-seed tau |"
        " train time per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    res = common.load("nb101_accuracy_subset")
    base = common.load("nb101_subset_baselines")
    if res and res.get("runs"):
        s, cfg = res["summary"], res["config"]
        n_test = res["runs"][0].get("n_test", "?")
        split = f"{cfg['data']['n_train']} / {cfg['data']['n_valid']} / {n_test}"
        model = f"NAR-Former V2 {cfg['model']['hidden']} × {cfg['model']['num_blocks']}, {cfg['train']['epochs']} ep"
        per_seed = ", ".join(f"{r['kendall_tau']:.3f}" for r in res["runs"])
        rows.append(
            f"| held-out mini-protocol (new split per seed) | shared NASLib subset (292 cells) | {split} | "
            f"{model} | {s['kendall_tau_mean']:.4f} ± {s['kendall_tau_std']:.4f} | {len(res['runs'])} | "
            f"{per_seed} | "
            f"{s['train_seconds_mean'] / 60:.1f} ± {s['train_seconds_std'] / 60:.1f} min |"
        )
        if base:
            for key, what in (("params_tau", "parameter count"), ("flops_tau", "FLOPs")):
                st = base["summary"][key]
                per_seed = ", ".join(f"{r[key]:.3f}" for r in base["runs"])
                rows.append(
                    f"| same splits | same | {split} | {what} alone (no learning) | {st['mean']:.4f} ± "
                    f"{st['std']:.4f} | {len(base['runs'])} | {per_seed} | – |"
                )
    else:
        rows.append("| held-out mini-protocol | shared NASLib subset | | not run yet | | | | |")
    for name, (n, tested, paper) in NB101_PAPER.items():
        ours = common.load(name)
        text = (
            "not run: needs nasbench_only108.tfrecord"
            if not ours or not ours.get("runs")
            else f"{ours['summary']['kendall_tau_mean']:.4f} ± {ours['summary']['kendall_tau_std']:.4f}"
        )
        rows.append(
            f"| paper protocol (`configs/{name}.yaml`) | official file | {n} / 200 / {tested} | paper: {paper}; ours | "
            f"{text} | | | |"
        )
    return rows


SEARCH_STRATEGIES = (
    "random",
    "evolution",
    "tpe",
    "evolution-guided",
    "tpe-guided",
    "predictor-v1",
    "predictor-v2",
    "predictor",
)


SEARCH_FILES = ("search_nb201", "search_nb201_pixel3_10.6756ms")


def search_table() -> list[str]:
    """Mean ± std best test accuracy per budget, share of runs that returned the optimum, median
    evaluations to it, for every dataset and strategy of the search benchmarks."""
    budgets = (25, 50, 100, 150, 200)
    rows = [
        "| bound | dataset | strategy | seeds | "
        + " | ".join(f"best test @{b}" for b in budgets)
        + " | optimum by 100 | by 200 | median evals to optimum | violations | mean s/run |",
        "|---|---|---|---|" + "---|" * (len(budgets) + 5),
    ]
    for name in SEARCH_FILES:
        res = common.load(name)
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
                    f"{row['wall_seconds_mean']:.1f} |"
                )
    return rows


def digits_search_table() -> list[str]:
    """benchmarks/digits_search.py: the digits space of examples/own_space_digits.py, trained for real under
    a latency bound; best validation accuracy (what the search maximises) per strategy over seeds."""
    columns = ("bound", "strategy", "seeds", "best validation (mean ± std)", "worst seed", "best test (mean ± std)",
               "best validation @10 / @20 / @30", "evaluated over the bound", "mean s/run")
    res = common.load("digits_search")
    if not res or not res.get("summary"):
        return common.not_run(*columns)
    bound = res["settings"]["bound"]
    rows = common.header(*columns)
    for label, row in res["summary"].items():
        def stat(s: dict) -> str:
            return f"{s['mean']:.2f} ± {s['std']:.2f}"

        worst = row["worst_seed"]
        curve = " / ".join(stat(row[f"best_validation_at_{b}"]) if f"best_validation_at_{b}" in row else "–"
                           for b in (10, 20, 30))
        rows.append(common.row(f"{bound['source']} ≤ {bound['max_ms']:g} ms", label, len(row["seeds"]),
                               stat(row["best_validation"]), f"{worst['best_validation']:.2f} (seed {worst['seed']})",
                               stat(row["best_test"]), curve, row["evaluations_over_bound"],
                               f"{row['wall_seconds']['mean']:.0f}"))
    return rows


def opaque_nb201_table(stem: str = "search_nni_opaque_nb201") -> list[str]:
    """benchmarks/search_nni_opaque_nb201.py: NAS-Bench-201 searched as an opaque NNI model space, our
    whole-network predictor-guided search against NNI's own strategies and our cell path; best test
    accuracy (mean ± std, worst seed) at 25 / 50 / 100 evaluations, wall time per run."""
    columns = ("dataset", "strategy", "seeds", "best test @25", "@50", "@100", "worst @100", "s/run (mean, max)",
               "opaque - this @100 (Welch p)")
    res = common.load(stem)
    if not res or not res.get("summary"):
        return common.not_run(*columns)
    rows = common.header(*columns)
    for dataset, strategies in res["summary"].items():
        comparison = res.get("comparison", {}).get(dataset, {})
        order = ("ours-opaque", "ours-cell", "nni-evolution", "nni-tpe", "nni-random")
        for label, row in sorted(strategies.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99):
            def stat(b: int) -> str:
                s = row.get(f"best_test_{b}")
                return f"{s['mean']:.2f} ± {s['std']:.2f}" if s else "–"

            worst = row.get("best_test_100", {}).get("worst")
            versus = comparison.get(label, {}).get("100")
            gap = "–"
            if versus:
                p = versus.get("p_value")
                gap = f"{versus['difference']:+.2f}" + (f" (p {p:.2g})" if p is not None else "")
            wall = row["wall_seconds"]
            rows.append(common.row(dataset, label, len(row["seeds"]), stat(25), stat(50), stat(100),
                                   "–" if worst is None else f"{worst:.2f}", f"{wall['mean']:.1f}, {wall['max']:.1f}",
                                   gap))
    return rows


def online_refit_table() -> list[str]:
    """benchmarks/online_refit_speed.py: the whole-network online surrogate refit from scratch on 100 opaque
    NAS-Bench-201 networks, one torch thread; its ranking of 200 others."""
    columns = ("networks (train / test)", "nodes exported / tokenised (median)", "graph read per network",
               "refit seconds (mean ± std, max)", "Kendall tau (mean ± std, worst)", "seeds", "load average")
    res = common.load("online_refit_speed")
    if not res:
        return common.not_run(*columns)
    fit, tau = res["summary"]["fit_seconds"], res["summary"]["tau"]
    loads = [r["load_average_1min"] for r in res["runs"]]
    return [*common.header(*columns), common.row(
        f"{res['train']} / {res['test']}", f"{res['exported_nodes_median']} / {res['tokenised_nodes_median']}",
        f"{1e3 * res['graph_read_seconds_per_network']:.0f} ms", f"{fit['mean']:.1f} ± {fit['std']:.1f}, {fit['max']:.1f}",
        f"{tau['mean']:.3f} ± {tau['std']:.3f}, {tau['worst']:.3f}", len(res["runs"]),
        f"{min(loads):.2f}-{max(loads):.2f}")]


def main_job_table() -> list[str]:
    """benchmarks/main_job.py: the README's main job, cold and warm, now and before the change that cut it."""
    rows = common.header("code", "cold cache (s)", "warm cache (s)", "runs")
    for stem, label in (("main_job", "current"), ("main_job_before", "before")):
        run = common.load(stem)
        if run is None:
            continue
        s = run["summary"]
        rows.append(common.row(f"{label} ({run['code']})",
                               *(f"{s[k]['mean']:.1f} ± {s[k]['std']:.1f} (worst {s[k]['worst']:.1f})"
                                 for k in ("cold", "warm")), f"{s['cold']['n']} + {s['warm']['n']}"))
    if len(rows) == 2:
        rows.append(common.row("(no results: run `python benchmarks/main_job.py`)", "", "", ""))
    return rows
