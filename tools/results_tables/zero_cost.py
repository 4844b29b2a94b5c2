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
