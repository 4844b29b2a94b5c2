"""How predictable are HELP's latency labels from the same networks' other measurements?

Two checks behind the latency tables' shortfalls, computed from the shared data alone (no model):

- ``cross_setting``: for each family and in-domain setting, least squares of log latency on the log
  latencies the *same* networks got on every other setting of that family (plus a constant), fitted
  on 90 % of the networks and scored on the other 10 % (seeds 0-2). Where the labels are a smooth
  function of the network, this gets low MAPE; where it stays high, and our predictors hit a floor
  near it too, the labels carry variation that nothing about the network explains (measurement
  noise, or device behaviour no other measurement shares).
- ``scale``: per family, the median latency on each GPU setting divided by the median on 2080ti_1.
  A predictor that never saw a family can only carry over the device ratios of the families it saw;
  where a family's ratio differs, it is off by that factor.

    python benchmarks/latency_label_ceiling.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

import numpy as np  # noqa: E402

from nas_predictor.data.latency_tables import help_settings, load_help_latency  # noqa: E402
from nas_predictor.metrics import acc_within, mape  # noqa: E402

FAMILIES = ("nasbench201", "fbnet", "ofa_mbv3")
TARGETS = ("titan_rtx_1", "2080ti_1", "titanxp_1", "titan_rtx_32", "2080ti_32", "titanxp_32", "gold_6226", "samsung_a50")
GPU_SHARED = ("titan_rtx_1", "2080ti_1", "titanxp_1", "titan_rtx_32", "2080ti_32", "titanxp_32")
SEEDS = (0, 1, 2)


def log_latencies(family: str) -> dict[str, np.ndarray]:
    """log latency per setting, every setting's records in the same network order."""
    tables = {s: load_help_latency(family, s) for s in help_settings(family)}
    order = list(next(iter(tables.values())).archs)
    out = {}
    for setting, table in tables.items():
        by_arch = dict(zip(table.archs, table.latency_ms))
        if set(by_arch) != set(order):
            raise ValueError(f"{family}/{setting}: its networks differ from the other settings' files")
        out[setting] = np.log(np.array([by_arch[a] for a in order], dtype=np.float64))
    return out


def cross_setting_fit(logs: dict[str, np.ndarray], target: str, seed: int) -> dict[str, float]:
    n = len(logs[target])
    x = np.stack([logs[s] for s in sorted(logs) if s != target] + [np.ones(n)], axis=1)
    idx = np.random.default_rng(seed).permutation(n)
    train, test = idx[: int(0.9 * n)], idx[int(0.9 * n):]
    w, *_ = np.linalg.lstsq(x[train], logs[target][train], rcond=None)
    truth, pred = np.exp(logs[target][test]), np.exp(x[test] @ w)
    return {"mape": mape(truth, pred), "acc_10pct": acc_within(truth, pred, 0.10)}


def main() -> None:
    cross: dict[str, dict] = {}
    scale: dict[str, dict] = {}
    correlation: dict[str, dict] = {}
    for family in FAMILIES:
        logs = log_latencies(family)
        cross[family] = {}
        for target in TARGETS:
            if target not in logs:
                continue
            fits = [cross_setting_fit(logs, target, seed) for seed in SEEDS]
            cross[family][target] = {
                k: {"mean": statistics.mean(f[k] for f in fits), "std": statistics.stdev(f[k] for f in fits)}
                for k in ("mape", "acc_10pct")
            }
        base = float(np.median(np.exp(logs["2080ti_1"])))
        scale[family] = {s: float(np.median(np.exp(logs[s]))) / base for s in GPU_SHARED}
        # Same GPU, batch 1 against batch 32: how much of the batch-1 ordering the GPU itself repeats.
        correlation[family] = {
            gpu: float(np.corrcoef(logs[f"{gpu}_1"], logs[f"{gpu}_32"])[0, 1]) for gpu in ("titan_rtx", "2080ti", "titanxp")
        }
    save_results(RESULTS / "latency_label_ceiling.json", {
        "benchmark": "latency_label_ceiling", "command": command_line(), "machine": machine(), "seeds": list(SEEDS),
        "cross_setting": cross, "scale_vs_2080ti_1": scale, "log_corr_batch1_vs_batch32": correlation,
    })
    for family in FAMILIES:
        row = "  ".join(f"{t} {v['mape']['mean']:.4f}/{v['acc_10pct']['mean']:.3f}" for t, v in cross[family].items())
        print(f"{family}: cross-setting MAPE/Acc(10%): {row}")
        print(f"{family}: median latency / 2080ti_1: " + "  ".join(f"{s} {r:.2f}" for s, r in scale[family].items()))
        print(f"{family}: log corr batch 1 vs 32: " + "  ".join(f"{g} {c:.2f}" for g, c in correlation[family].items()))


if __name__ == "__main__":
    main()
