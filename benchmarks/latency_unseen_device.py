"""Whole-network latency on devices no shipped predictor saw, from a few timings on that device.

A user's GPU (or phone, or CPU) is rarely one of the settings a shipped predictor learnt. What they
can do: time a few candidate networks on their device and let ``nas-predictor latency --calibrate``
(``search --latency-calibrate``, ``LatencyFilter(calibrate=...)``) rescale the predictor. This
measures how well that works on every HELP setting no shipped predictor has (NB201, FBNet and OFA
networks; 1080ti, titanx, v100, pixel2/3, raspi4, eyeriss, fpga, several Xeons, ... at their
batch sizes), on networks outside every shipped predictor's training subset.

For each (family, setting) and K timed networks (K drawn at random from the held-out networks, 20
draws per seed, seeds 0-2), scored on the other held-out networks:

- ``ours``: the shipped predictor of the setting's batch (``latency-help-b1`` for batch 1 and
  devices without one, ``latency-help-b32`` otherwise, its graphs re-batched to the setting's batch).
  Each of its outputs is rescaled by the K timings (one factor, ``fit_latency_map(fit="scale")``); the
  output whose rescaled predictions fit the K timings best (median absolute log error) is used:
  ``nas-predictor latency --setting nearest --calibrate TIMINGS --calibrate-fit scale``. Nothing but
  the K timings decides.
- ``measured_reference``: the same choice and rescaling applied to the *measured* latencies of the
  same networks on the predictor's settings: what a perfect predictor of those settings would reach,
  i.e. how much of the error is the device change itself.
- ``ours_power`` / ``measured_reference_power``: the same with latency = a * prediction^b, a and b
  fitted on the K timings (``fit="power"``, least squares in log space): for devices whose latencies
  grow faster or slower with network size than on the predictor's devices.
- ``ours_auto``: ``fit="auto"`` of ``fit_latency_map`` (the ``--calibrate`` default): one factor
  below 4 timings, from there the power fit where it predicts left-out timings better.
- ``ours_power_flops``: log latency = a + b log prediction + c log FLOPs (three weights from the K
  timings): the prediction's structure plus the FLOPs share some devices (mobile CPUs, accelerators)
  pay far more for than GPUs do.
- ``flops_power``: least squares of log latency on log FLOPs over the K timings (latency = a *
  FLOPs^b), the usual fallback without a predictor.
- ``flops_scale``: latency proportional to FLOPs, the factor from the K timings.

NB201 networks whose cell output does not depend on its input (341 of 15,625: every path to the
output crosses a ``none`` edge) are left out: HW-NAS-Bench's pixel3 and raspi4 measurements (which
HELP includes) time them at 0.003-0.5 ms, a network the mobile runtime folded to constants, where
every other device takes the usual few ms. Useless as candidates, and no ONNX-level predictor can
know which runtime folds them.

    python benchmarks/latency_unseen_device.py
    python benchmarks/latency_unseen_device.py --families nasbench201 --settings pixel3 1080ti_1 --networks 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from nas_predictor.calibration import choose_latency_map, fit_latency_map  # noqa: E402
from nas_predictor.data.latency_graphs import network_graphs  # noqa: E402
from nas_predictor.data.latency_tables import help_settings, load_help_latency, parse_setting  # noqa: E402
from nas_predictor.latency_experiment import family_subset, latency_metrics  # noqa: E402
from nas_predictor.onnx.rebatch import rebatch  # noqa: E402
from nas_predictor.predictor import load_predictor  # noqa: E402

FAMILIES = ("nasbench201", "fbnet", "ofa_mbv3")
PREDICTORS = {"batch1": "latency-help-b1", "batched": "latency-help-b32"}
SHOTS = (5, 10, 20)
SEEDS = (0, 1, 2)
DRAWS = 20
METRICS = ("mape", "acc_10pct", "kendall_tau")


def training_archs(predictors: dict, data_dir: str | None) -> dict[str, set[str]]:
    """Every network any of the predictors was trained, validated or tested on, by family: the subset
    its experiment drew (the same draw as nas_predictor.latency_experiment.prepare_latency_data)."""
    seen: dict[str, set[str]] = {f: set() for f in FAMILIES}
    for predictor in predictors.values():
        d = predictor.meta["experiment"]["data"]
        rng = np.random.default_rng(d["subset_seed"])
        for family in d["families"]:
            archs = load_help_latency(family, help_settings(family, data_dir)[0], data_dir).archs
            seen[family].update(archs[i] for i in family_subset(len(archs), d["max_per_family"], rng))
    return seen


def usable(family: str, arch: str) -> bool:
    """False for NB201 cells whose output does not depend on the input (see the module doc)."""
    if family != "nasbench201":
        return True
    from search_spaces.nasbench201 import functional_key, parse_arch

    return "x" in functional_key(parse_arch(arch))


def fit_map(x: np.ndarray, flops: np.ndarray, truth: np.ndarray, mode: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(x, flops) -> predicted latency`` fitted on a few timings. ``scale`` / ``power`` / ``auto``:
    the product's own ``fit_latency_map`` (what ``--calibrate`` uses); ``power_flops``: log latency =
    a + b log x + c log FLOPs by least squares (minimum-norm where the timings cannot tell them apart)."""
    if mode != "power_flops":
        latency_map = fit_latency_map(x, truth, mode)
        return lambda x_, flops_: latency_map.apply(x_)
    design = lambda x_, f_: np.stack([np.ones(len(x_)), np.log(x_), np.log(f_)], axis=1)  # noqa: E731
    w, *_ = np.linalg.lstsq(design(x, flops), np.log(truth), rcond=None)
    return lambda x_, flops_: np.exp(design(x_, flops_) @ w)


def choose_and_fit(candidates: np.ndarray, flops: np.ndarray, truth: np.ndarray, mode: str):
    """The candidate column whose predictions, mapped by ``fit_map``, fit ``truth`` best, with its map:
    the product's ``choose_latency_map`` (what ``--setting nearest`` does), and the same criterion
    (median absolute log error on the timed networks) for the benchmark-only ``power_flops``."""
    if mode != "power_flops":
        j, latency_map = choose_latency_map(candidates, truth, mode)
        return j, lambda x_, flops_: latency_map.apply(x_)
    best = (np.inf, 0, None)
    for j in range(candidates.shape[1]):
        f = fit_map(candidates[:, j], flops, truth, mode)
        err = float(np.median(np.abs(np.log(truth / f(candidates[:, j], flops)))))
        if err < best[0]:
            best = (err, j, f)
    return best[1], best[2]


def score(truth: np.ndarray, flops: np.ndarray, methods: dict[str, tuple[np.ndarray, str]], shots: int, seed: int,
          draws: int) -> dict[str, dict]:
    """Mean metrics over ``draws`` random draws of ``shots`` timed networks, per method (candidate
    columns and a ``fit_map`` mode); the timed networks are left out of the scoring. Every method sees
    the same draws."""
    rng = np.random.default_rng([seed, shots])
    per_draw: dict[str, list[dict]] = {m: [] for m in methods}
    chosen: dict[str, list[int]] = {m: [] for m in methods}
    n = len(truth)
    for _ in range(draws):
        timed = rng.choice(n, shots, replace=False)
        rest = np.setdiff1d(np.arange(n), timed)
        for name, (candidates, mode) in methods.items():
            j, f = choose_and_fit(candidates[timed], flops[timed], truth[timed], mode)
            chosen[name].append(j)
            per_draw[name].append(latency_metrics(truth[rest], f(candidates[rest, j], flops[rest])))
    out = {}
    for name, rows in per_draw.items():
        out[name] = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
        if methods[name][0].shape[1] > 1:
            out[name]["source_counts"] = np.bincount(chosen[name], minlength=methods[name][0].shape[1]).tolist()
    return out


def summarise(per_seed: list[dict]) -> dict:
    """{method: {metric: {mean, std}}} over seeds (std 0 for one seed)."""
    out: dict = {}
    for name in per_seed[0]:
        out[name] = {}
        for m in METRICS:
            values = [s[name][m] for s in per_seed]
            out[name][m] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        if "source_counts" in per_seed[0][name]:
            out[name]["source_counts"] = np.sum([s[name]["source_counts"] for s in per_seed], axis=0).tolist()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--settings", nargs="+", default=None,
                    help="target settings (default: every HELP setting of the family no shipped predictor has)")
    ap.add_argument("--networks", type=int, default=500, help="held-out networks per family (default 500)")
    ap.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "latency_unseen_device.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: prediction of a few hundred graphs, on a shared 2-core machine

    predictors = {k: load_predictor(name, device="cpu") for k, name in PREDICTORS.items()}
    known = {s for p in predictors.values() for s in p.settings}
    seen = training_archs(predictors, args.data_dir)
    results: dict = {}
    networks: dict = {}
    for family in args.families:
        settings = {s: load_help_latency(family, s, args.data_dir) for s in help_settings(family, args.data_dir)}
        archs = next(iter(settings.values())).archs
        unseen = [i for i, a in enumerate(archs) if a not in seen[family] and usable(family, a)]
        pick = np.sort(np.random.default_rng(1234).choice(unseen, min(args.networks, len(unseen)), replace=False))
        networks[family] = {"held_out": len(unseen), "used": len(pick)}
        base_graphs = network_graphs(family, [archs[i] for i in pick], 1, None, workers=2,
                                     progress=True)
        targets = [s for s in (args.settings or settings) if s in settings and s not in known]
        results[family] = {}
        for target in tqdm(targets, desc=f"{family} settings", dynamic_ncols=True):
            batch = parse_setting(target)[1]
            key = "batch1" if batch == 1 else "batched"
            predictor = predictors[key]
            graphs = base_graphs if batch == 1 else [rebatch(g, batch) for g in base_graphs]
            truth = np.asarray(settings[target].latency_ms, dtype=np.float64)[pick]
            ours = predictor.predict_graphs(graphs).reshape(len(graphs), -1)
            sources = [s for s in predictor.settings if s in settings]
            reference = np.stack([np.asarray(settings[s].latency_ms, dtype=np.float64)[pick] for s in sources], axis=1)
            flops = np.array([g.scalars["flops"] for g in graphs], dtype=np.float64)
            per_shots = {}
            for shots in args.shots:
                methods = {"ours": (ours, "scale"), "ours_power": (ours, "power"), "ours_auto": (ours, "auto"),
                           "ours_power_flops": (ours, "power_flops"),
                           "measured_reference": (reference, "scale"), "measured_reference_power": (reference, "power"),
                           "flops_power": (flops[:, None], "power"), "flops_scale": (flops[:, None], "scale")}
                per_seed = [score(truth, flops, methods, shots, seed, args.draws) for seed in args.seeds]
                per_shots[str(shots)] = summarise(per_seed)
            results[family][target] = {"predictor": PREDICTORS[key], "batch_size": batch,
                                       "ours_sources": predictor.settings, "reference_sources": sources,
                                       "shots": per_shots}
            best = per_shots[str(max(args.shots))]
            tqdm.write(f"{family} {target} K={max(args.shots)} MAPE: " + "  ".join(
                f"{name} {v['mape']['mean']:.4f}" for name, v in best.items()))
    out = {"benchmark": "latency_unseen_device", "command": command_line(), "machine": machine(),
           "predictors": PREDICTORS, "shots": args.shots, "seeds": args.seeds, "draws": args.draws,
           "networks": networks, "results": results}
    save_results(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
