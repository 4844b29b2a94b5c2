"""Tables of benchmarks/search_async_nb201.py: k asynchronous workers sharing one NAS-Bench-201 search."""

from __future__ import annotations

from . import common

STEM = "search_async_nb201"
ORDER = ("ours", "ours-zc", "ours-its", "tpe-liar", "random")
#: the strategies whose rows are followed by their lead over the best baseline
LEADS = ("ours", "ours-zc")


def _runs_in_order(summary: dict) -> list[str]:
    def key(name: str) -> tuple:
        label, k = name.rsplit("@", 1)
        return int(k), ORDER.index(label) if label in ORDER else 99

    return sorted(summary["by_evaluations"], key=key)


def _stat(s: dict | None) -> str:
    return "–" if not s else f"{s['mean']:.2f} ± {s['std']:.2f}"


def async_target_table() -> list[str]:
    """When each strategy at k workers first reached the target (the 1-worker search's mean best test at 100
    evaluations): simulated hours and evaluations, against the 1-worker search's own; best test by evaluations."""
    columns = ("strategy", "workers", "runs reaching the target", "hours to it (mean ± std)",
               "× the 1-worker hours (mean; median)", "evaluations to it", "more evaluations than 1 worker",
               "best test @25 / @50 / @100 evaluations")
    res = common.load(STEM)
    summary = (res or {}).get("summary")
    if not summary or "target" not in summary:
        return common.not_run(*columns)
    rows = common.header(*columns)
    for name in _runs_in_order(summary):
        label, k = name.rsplit("@", 1)
        t = summary["to_target"][name]
        by_n = summary["by_evaluations"][name]
        fraction = "–" if t["hours_fraction_of_one_worker"] is None else (
            f"{t['hours_fraction_of_one_worker']:.3f}; "
            + ("–" if t["median_hours_fraction_of_one_worker"] is None else f"{t['median_hours_fraction_of_one_worker']:.3f}"))
        more = "–" if t["more_evaluations_than_one_worker"] is None else f"{100 * t['more_evaluations_than_one_worker']:+.0f} %"
        evals = "–" if not t["evaluations"] else f"{t['evaluations']['mean']:.1f} ± {t['evaluations']['std']:.1f}"
        rows.append(common.row(label, k, f"{t['reached']} / {t['runs']}",
                               "–" if not t["hours"] else f"{t['hours']['mean']:.1f} ± {t['hours']['std']:.1f}",
                               fraction, evals, more, " / ".join(_stat(by_n[n]) for n in ("25", "50", "100"))))
    return rows


def async_hours_table() -> list[str]:
    """Mean best test accuracy at each simulated wall-clock checkpoint; a cell marks the runs that had no
    finished evaluation yet, and ours' rows give its lead over the best baseline at that k (Welch's p)."""
    res = common.load(STEM)
    summary = (res or {}).get("summary")
    hours = (summary or {}).get("hour_checkpoints", [])
    columns = ("strategy", "workers", *(f"{h:g} h" for h in hours))
    if not summary or not hours:
        return common.not_run("strategy", "workers", "hours")
    rows = common.header(*columns)
    for name in _runs_in_order(summary):
        label, k = name.rsplit("@", 1)
        cells = []
        for point in summary["by_hours"][name]:
            if not point["runs_with_a_result"]:
                cells.append("–")
                continue
            text = f"{point['mean']:.2f}"
            if point["runs_with_a_result"] < _runs(summary, name):
                text += f" ({point['runs_with_a_result']} runs)"
            cells.append(text)
        rows.append(common.row(label, k, *cells))
        if label in LEADS:
            rows.append(common.row(f"{label} − best baseline", k, *_leads(summary, label, int(k), hours)))
    return rows


def _runs(summary: dict, name: str) -> int:
    return summary["to_target"][name]["runs"]


def _leads(summary: dict, mine: str, k: int, hours: list) -> list[str]:
    """Per checkpoint: ``mine`` (ours, or ours with proxies) minus the better of TPE-with-liar and random at
    k, with that comparison's p; none where some run of either had no finished evaluation yet (the means
    would not be of the same runs)."""
    def complete(name: str, h) -> bool:
        points = [p for p in summary["by_hours"].get(name, []) if p["hours"] == h]
        return bool(points) and points[0]["runs_with_a_result"] == _runs(summary, name)

    cells = []
    for h in hours:
        if not all(complete(f"{label}@{k}", h) for label in (mine, "tpe-liar", "random")):
            cells.append("– (not every run had a result)")
            continue
        worst = None
        for other in ("tpe-liar", "random"):
            for point in summary["versus"].get(f"{mine}@{k} vs {other}@{k}", []):
                if point["hours"] == h and (worst is None or point["difference"] < worst["difference"]):
                    worst = point
        if worst is None:
            cells.append("–")
        else:
            p = worst.get("p_value")
            cells.append(f"{worst['difference']:+.2f}" + ("" if p is None else f" (p {p:.2g})"))
    return cells


def async_postgres_table() -> list[str]:
    """benchmarks/search_async_postgres.py: the real multi-process run on PostgreSQL against the simulator at
    the same k (mean best test accuracy; Welch's p where both have several runs)."""
    columns = ("workers", "runs (real / simulated)", "trials: completed, distinct, failed, pruned",
               *(f"@{n} evaluations" for n in ("25", "50", "100")), *(f"{h} h" for h in ("2", "4", "8", "16")))
    res = common.load("search_async_postgres")
    if not res or not res.get("summary"):
        return common.not_run(*columns)
    rows = common.header(*columns)
    for k, comparison in sorted(res["summary"].items(), key=lambda kv: int(kv[0])):
        runs = [r for r in res["runs"] if str(r["workers"]) == k]

        def cell(point: dict | None) -> str:
            if not point:
                return "–"
            p = point.get("p_value")
            return f"{point['real']:.2f} vs {point['simulated']:.2f}" + ("" if p is None else f" (p {p:.2g})")

        trials = (f"{sum(r['completed'] for r in runs)}, {sum(r['distinct_completed_archs'] for r in runs)}, "
                  f"{sum(r['failed'] for r in runs)}, {sum(r['trials'] - r['completed'] - r['failed'] for r in runs)}")
        rows.append(common.row(k, f"{len(runs)} / {comparison['simulated_runs']}", trials,
                               *(cell(comparison["by_evaluations"].get(n)) for n in ("25", "50", "100")),
                               *(cell(comparison["by_hours"].get(h)) for h in ("2", "4", "8", "16"))))
    return rows


def readme_async_table() -> list[str]:
    """The README's short form of the target table: per k, ours' time to the 1-worker target as a fraction
    of the 1-worker search's (and its evaluations), against TPE-with-liar's and random search's time."""
    columns = ("workers", "runs each", "ours: time (× 1 worker)", "ours: evaluations",
               "Optuna TPE, constant liar: time", "random search: time")
    res = common.load(STEM)
    summary = (res or {}).get("summary")
    if not summary or "target" not in summary:
        return common.not_run(*columns)
    to = summary["to_target"]

    def time(t: dict | None, bold: bool = False) -> str:
        if not t:
            return "–"
        if 2 * t["reached"] < t["runs"]:  # a mean over the few lucky runs would read as fast
            return f"never (0 of {t['runs']})" if not t["reached"] else f"only {t['reached']} of {t['runs']} runs reach it"
        text = f"{t['hours_fraction_of_one_worker']:.2f}"
        text = f"**{text}**" if bold else text
        return text + ("" if t["reached"] == t["runs"] else f" ({t['reached']} of {t['runs']} runs)")

    rows = common.header(*columns)
    ks = sorted({int(name.rsplit("@", 1)[1]) for name in to})
    for k in ks:
        ours = to.get(f"ours@{k}")
        if not ours:
            continue
        runs = sorted({to[name]["runs"] for name in to if name.endswith(f"@{k}")
                       and name.split("@")[0] in ("ours", "tpe-liar", "random")})
        if k == 1:
            hours = summary["target"]["one_worker_hours"]["mean"]
            some = "" if ours["reached"] == ours["runs"] else f"; {ours['reached']} of {ours['runs']} runs"
            mine = f"1 ({hours:.0f} simulated hours{some})"
            evals = f"{ours['evaluations']['mean']:.1f}"
        else:
            mine = time(ours, bold=True)
            evals = "–" if not ours["evaluations"] else (
                f"{ours['evaluations']['mean']:.1f} ({100 * ours['more_evaluations_than_one_worker']:+.0f} %)")
        rows.append(common.row(k, " / ".join(map(str, runs)), mine, evals,
                               time(to.get(f"tpe-liar@{k}")), time(to.get(f"random@{k}"))))
    return rows
