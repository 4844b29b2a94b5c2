"""Table of benchmarks/zero_cost_validation.py: our zero-cost proxies against NASLib's published scores."""

from __future__ import annotations

from . import common


def zero_cost_validation_table() -> list[str]:
    """Per space and proxy: Spearman and Kendall against NASLib's scores, our own seed-to-seed Spearman."""
    columns = ("space", "proxy", "cells", "Spearman vs NASLib", "Kendall vs NASLib", ">= 0.95",
               "ours: seed 0 vs seed 1 (Spearman)", "vs NASWOT v1's published jacov (ours; NASLib's)")
    res = common.load("zero_cost_validation")
    if not res or not res.get("runs"):
        return common.not_run(*columns)
    rows = common.header(*columns)
    for space, run in sorted(res["runs"].items()):
        for proxy, r in run["proxies"].items():
            repeat = next((v for k, v in r.items() if k.startswith("spearman_ours_seed")), None)
            rows.append(common.row(space, proxy, f"{r['cells']} of {run['of']}", f"{r['spearman']:.4f}",
                                   f"{r['kendall']:.4f}", "yes" if r["spearman"] >= 0.95 else "**no**",
                                   "–" if repeat is None else f"{repeat:.4f}",
                                   f"{r['spearman_ours_vs_nwot_v1']:.4f}; {r['spearman_naslib_vs_nwot_v1']:.4f} "
                                   f"({r['nwot_v1_cells']} cells)" if "nwot_v1_cells" in r else "–"))
    return rows


# the proxy ablation (issue 31): results file -> what the model reads besides the cell
ABLATION = {"nb201_accuracy_781": "nothing (the recipe)", "nb201_accuracy_781_proxies_size": "size (params, FLOPs)",
            "nb201_accuracy_781_proxies_saliency": "saliency (synflow, snip, grad_norm)",
            "nb201_accuracy_781_proxies_activation": "activation (jacov, NASWOT)",
            "nb201_accuracy_781_proxies_all": "all seven"}
NB201_1563 = {"nb201_accuracy_1563": "nothing (the recipe)", "nb201_accuracy_1563_proxies_all": "all seven"}
NB101_ABLATION = {"nb101_accuracy_subset": "nothing (the recipe)", "nb101_accuracy_subset_proxies_all": "all seven"}
RANDOM_SIZES = (78, 156, 469, 781, 1563)
#: PINAT's published Kendall tau on NAS-Bench-201 (random training cells, tau on the rest)
PINAT = {78: 0.549, 156: 0.631, 469: 0.706, 781: 0.761, 1563: 0.784}


def _taus(res: dict | None) -> list[float]:
    return [r["kendall_tau"] for r in (res or {}).get("runs", [])]


def _stat(taus: list[float]) -> str:
    import statistics

    if not taus:
        return "not run yet"
    std = statistics.stdev(taus) if len(taus) > 1 else 0.0
    return f"{statistics.mean(taus):.4f} ± {std:.4f} (min {min(taus):.4f}, {len(taus)} seeds)"


def proxy_ablation_table() -> list[str]:
    """The NAR-Former split (781 and 1,563 cells) and the NB101 subset, without and with proxies."""
    rows = common.header("protocol", "the model reads besides the cell", "tau (mean ± std, worst seed)",
                         "minus without proxies", "target")
    groups = (("NB201, NAR-Former split, 781 cells", ABLATION, (0.890, 0.880)),
              ("NB201, NAR-Former split, 1,563 cells", NB201_1563, (0.905, None)),
              ("NB101 subset, 100 cells (resplit per seed)", NB101_ABLATION, None))
    for protocol, table, bound in groups:
        base = _taus(common.load(next(iter(table))))
        for name, reads in table.items():
            taus = _taus(common.load(name))
            delta = "–" if name == next(iter(table)) or not taus or not base else \
                f"{sum(taus) / len(taus) - sum(base) / len(base):+.4f}"
            if bound is None:
                target = "the ablation"
            else:
                target = f">= {bound[0]:.3f}" + (f", every seed >= {bound[1]:.3f}" if bound[1] else "")
                if taus:
                    met = sum(taus) / len(taus) >= bound[0] and (bound[1] is None or min(taus) >= bound[1])
                    target += " met" if met else " not met"
            rows.append(common.row(protocol, reads, _stat(taus), delta, target))
    return rows


def random_split_table() -> list[str]:
    """The TNASP / PINAT protocol: tau on every other cell after N random training cells, against PINAT."""
    rows = common.header("training cells", "PINAT", "ours, cells only", "ours, with all proxies",
                         "best of ours minus PINAT (worst seed)", "target")
    for n in RANDOM_SIZES:
        plain = _taus(common.load(f"nb201_accuracy_781_random{n}"))
        proxied = _taus(common.load(f"nb201_accuracy_781_random{n}_proxies_all"))
        best = max((t for t in (plain, proxied) if t), key=lambda t: sum(t) / len(t), default=None)
        need = 0.05 if n <= 156 else 0.0
        lead = "–" if best is None else f"{sum(best) / len(best) - PINAT[n]:+.4f} ({min(best) - PINAT[n]:+.4f})"
        verdict = "" if best is None else (" met" if sum(best) / len(best) - PINAT[n] >= need else " not met")
        rows.append(common.row(n, PINAT[n], _stat(plain), _stat(proxied), lead,
                               f"ahead by >= {need:.2f}{verdict}" if need else f"ahead{verdict}"))
    return rows


SEARCH_BASELINES = ("random", "evolution", "tpe")
SEARCH_OURS = ("predictor", "predictor-zc", "predictor-zc-warm", "predictor-zc-fit")


def new_seed_search_table() -> list[str]:
    """NAS-Bench-201 CIFAR-10 search on 50 seeds (50-99) earlier benchmarks never used: the baselines and ours."""
    import statistics

    columns = ("strategy", "seeds", "mean best test at 50 (± std; worst seed)", "at 25 / 100 / 200",
               "runs with the optimum within 64 evaluations", "target")
    res = common.load("search_nb201_new_seeds")
    if not res or not res.get("runs"):
        return common.not_run(*columns)
    budgets = ("25", "50", "100", "150", "200")

    def mean_at(runs: list[dict], budget: str) -> float | None:
        values = [r["best_test"][budget] for r in runs if budget in r["best_test"]]
        return statistics.mean(values) if values else None

    by_label = {label: [r for r in res["runs"] if r["strategy"] == label and r["dataset"] == "cifar10"]
                for label in SEARCH_BASELINES + SEARCH_OURS}
    best_baseline = {b: max((m for m in (mean_at(by_label[x], b) for x in SEARCH_BASELINES if by_label[x])
                             if m is not None), default=None) for b in budgets}
    rows = common.header(*columns)
    for label, runs in by_label.items():
        if not runs:
            continue
        at50 = [r["best_test"]["50"] for r in runs]
        reached = sum(r["evaluations_to_optimum"] is not None and r["evaluations_to_optimum"] <= 64 for r in runs)
        others = " / ".join("–" if mean_at(runs, b) is None else f"{mean_at(runs, b):.2f}" for b in ("25", "100", "200"))
        target = ""
        if label in SEARCH_OURS:
            ahead = all(mean_at(runs, b) is None or best_baseline[b] is None or mean_at(runs, b) > best_baseline[b]
                        for b in budgets)
            met = statistics.mean(at50) >= 94.34 and reached >= 0.8 * len(runs) and ahead
            target = (f">= 94.34, >= 80 %, ahead of every baseline at every budget: {'met' if met else 'not met'}"
                      f"{'' if ahead else ' (behind a baseline somewhere)'}")
        rows.append(common.row(label, f"{len(runs)} ({min(r['seed'] for r in runs)}-{max(r['seed'] for r in runs)})",
                               f"{statistics.mean(at50):.2f} ± {statistics.stdev(at50) if len(at50) > 1 else 0:.2f}; "
                               f"{min(at50):.2f}", others, f"{reached} of {len(runs)}", target))
    return rows


def zero_cost_ranking_table() -> list[str]:
    """Each proxy alone (and their vote) against the benchmark's accuracy over every cell: no label used."""
    columns = ("space", "proxy", "cells", "Kendall tau", "Spearman")
    res = common.load("zero_cost_ranking")
    if not res or not res.get("runs"):
        return common.not_run(*columns)
    rows = common.header(*columns)
    for space, run in sorted(res["runs"].items()):
        best = max(r["kendall"] for r in run["proxies"].values())
        for proxy, r in run["proxies"].items():
            tau = f"**{r['kendall']:.4f}**" if r["kendall"] == best else f"{r['kendall']:.4f}"
            rows.append(common.row(space, proxy, run["cells"], tau, f"{r['spearman']:.4f}"))
    return rows


def _mean(taus: list[float]) -> float:
    return sum(taus) / len(taus)


def readme_targets_table() -> list[str]:
    """The README's table of issue 31's targets: each protocol's number with the proxies (mean ± std, worst
    seed), the one without them, the literature's, and whether the target is met."""
    import statistics

    rows = common.header("protocol", "ours with the proxies", "ours without", "literature", "target")

    def verdict(taus: list[float], mean_at_least: float, every_seed: float | None = None) -> str | None:
        if not taus:
            return None
        met = _mean(taus) >= mean_at_least and (every_seed is None or min(taus) >= every_seed)
        return "met" if met else "not met"

    def judged(target: str, with_proxies: str | None, without: str | None) -> str:
        """The target and, for each variant that has run, whether it meets it."""
        said = "; ".join(f"{who}: {met}" for who, met in (("with", with_proxies), ("without", without)) if met)
        return f"{target}: {said}" if said else f"{target}: not run yet"

    for cells, stem, literature, bound in ((781, "nb201_accuracy_781", "paper 0.874", (0.890, 0.880)),
                                           (1563, "nb201_accuracy_1563", "paper 0.888, NN-Former 0.890", (0.905, None))):
        taus, plain = _taus(common.load(f"{stem}_proxies_all")), _taus(common.load(stem))
        target = f">= {bound[0]:.3f}" + (f", every seed >= {bound[1]:.3f}" if bound[1] else "")
        rows.append(common.row(f"NB201, NAR-Former split, {cells:,} cells", _stat(taus), _stat(plain), literature,
                               judged(target, verdict(taus, *bound), verdict(plain, *bound))))
    for n in RANDOM_SIZES:
        taus = _taus(common.load(f"nb201_accuracy_781_random{n}_proxies_all"))
        plain = _taus(common.load(f"nb201_accuracy_781_random{n}"))
        need = 0.05 if n <= 156 else 1e-9
        target = f"PINAT + {need:.2f}" if need > 0.01 else "ahead of PINAT"
        rows.append(common.row(f"NB201, TNASP / PINAT random split, {n:,} cells", _stat(taus), _stat(plain),
                               f"PINAT {PINAT[n]}",
                               judged(target, verdict(taus, PINAT[n] + need), verdict(plain, PINAT[n] + need))))
    rows.append(common.row("NB101 subset, 100 cells (resplit per seed)",
                           _stat(_taus(common.load("nb101_accuracy_subset_proxies_all"))),
                           _stat(_taus(common.load("nb101_accuracy_subset"))), "–", "the ablation"))
    res = common.load("search_nb201_new_seeds") or {}

    def search(label: str) -> tuple[str, str | None]:
        """The search's cell, and whether it meets the target (None: not run)."""
        runs = [r for r in res.get("runs", []) if r["strategy"] == label and r["dataset"] == "cifar10"]
        if not runs:
            return "not run yet", None
        at50 = [r["best_test"]["50"] for r in runs]
        within = sum(r["evaluations_to_optimum"] is not None and r["evaluations_to_optimum"] <= 64 for r in runs)
        met = statistics.mean(at50) >= 94.34 and within >= 0.8 * len(runs)
        return (f"{statistics.mean(at50):.2f} ± {statistics.stdev(at50) if len(at50) > 1 else 0:.2f} (min "
                f"{min(at50):.2f}); optimum within 64 in {within} of {len(at50)}"), "met" if met else "not met"

    (with_proxies, met_with), (without, met_without) = search("predictor-zc"), search("predictor")
    rows.append(common.row("search, NB201 CIFAR-10, 50 new seeds: best test at 50 evaluations", with_proxies,
                           without, "94.34 (published predictor-guided)",
                           judged(">= 94.34 and the optimum within 64 in >= 80 %", met_with, met_without)))
    return rows
