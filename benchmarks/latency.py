"""Whole-network latency prediction on HELP's measured latencies (paper Tables 1 and 2 analogues).

For each device setting and seed, NAR-Former V2 and the baselines are fitted on the *same* split
(``data.split_seed`` = the seed, ``train.seed`` = the seed) and scored on the same test records:

- ``narformer_v2``: the config's model (sum readout + static features), trained by nas_predictor.train;
- ``nnlp_gnn``: NNLQP's GraphSAGE-style GNN over the same node tokens, trained by the same loop;
- ``linear_flops`` / ``linear_flops_memory``: least squares on FLOPs (and memory access);
- ``gbdt``: gradient-boosted trees on the static features (needs scikit-learn, ``pip install .[bench]``).

Resumable: every finished (setting, seed, model) is appended to the results JSON at once and skipped
when the command is run again. The first run exports every network once into the graph cache
(``~/.cache/nas_predictor``), which takes most of an hour on two cores.

    python benchmarks/latency.py --config configs/latency_in_domain.yaml --settings titan_rtx_1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, append_locked, command_line, load_results, machine  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas_predictor.baselines import CostGBDT, CostLinearRegression  # noqa: E402
from nas_predictor.config import LatencyExperimentConfig, load_config  # noqa: E402
from nas_predictor.latency_experiment import (  # noqa: E402
    LatencyRecords,
    few_shot_metrics,
    metrics_by_setting,
    prepare_latency_data,
    run_latency_experiment,
)

MODELS = ("narformer_v2", "nnlp_gnn", "linear_flops", "linear_flops_memory", "gbdt")
METRICS = ("mape", "acc_5pct", "acc_10pct")


def fit_cost_baseline(name: str, records: LatencyRecords, seed: int) -> tuple[np.ndarray, float]:
    """Test predictions (test records, settings) of a cost-feature baseline, one fit per setting on
    the training and validation records measured there (it has no model selection, so both)."""
    fit_idx = np.concatenate([records.train, records.valid])
    graphs = lambda idx: [records.graphs[i] for i in idx]  # noqa: E731
    t0 = time.perf_counter()
    pred = np.full((len(records.test), len(records.settings)), np.nan)
    for k in range(len(records.settings)):
        known = fit_idx[~np.isnan(records.latency_ms[fit_idx, k])]
        if name == "linear_flops":
            model = CostLinearRegression(("flops",))
        elif name == "linear_flops_memory":
            model = CostLinearRegression(("flops", "memory_access"))
        else:
            model = CostGBDT(seed=seed)
        model.fit(graphs(known), records.latency_ms[known, k])
        pred[:, k] = model.predict(graphs(records.test))
    return pred, time.perf_counter() - t0


def few_shot(records: LatencyRecords, pred: np.ndarray, seed: int, shots: list[int]) -> dict:
    """{"few_shot": {shots: {setting: metrics}}}: the test predictions rescaled by that many measured
    test networks (few_shot_metrics); nothing without --few-shot."""
    if not shots:
        return {}
    return {"few_shot": {str(k): few_shot_metrics(records, records.test, pred, k, seed) for k in shots}}


def predict_speed(predictor, graphs: list, repeats: int = 3) -> dict:
    """Seconds to predict ``graphs`` (tokenising included), best and median of ``repeats``."""
    predictor.predict_graphs(graphs[:8])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.predict_graphs(graphs)
        times.append(time.perf_counter() - t0)
    return {"num_graphs": len(graphs), "seconds": times, "seconds_median": statistics.median(times),
            "torch_threads": torch.get_num_threads()}


def run_model(name: str, cfg: LatencyExperimentConfig, overrides: list[str], records: LatencyRecords, seed: int,
              args, save_dir: Path | None) -> dict:
    if name in ("linear_flops", "linear_flops_memory", "gbdt"):
        pred, seconds = fit_cost_baseline(name, records, seed)
        return {"test": metrics_by_setting(records, records.test, pred), "train_seconds": seconds,
                **few_shot(records, pred, seed, args.few_shot)}
    if name == "nnlp_gnn":
        # softplus output (the reference head's), not our exp one: the GNN's un-normalised neighbour sums
        # grow with network size, and with exp(z) its first steps overflowed the output clamp (loss 1.8e7
        # at batch 32) and it never recovered (MAPE 0.85-0.99 at 30 epochs, seed 0); --nnlp-set overrides.
        # NNLQP's readout is the graph-level sum (node_sum is our head's option)
        cfg = load_config(args.config, [*overrides, "model.architecture=nnlp_gnn", "model.output=softplus",
                                        "model.readout=sum", *args.nnlp_set])
    out = save_dir / f"{'+'.join(cfg.data.settings)}/seed{seed}/{name}" if save_dir else None
    result = run_latency_experiment(cfg, out_dir=out, progress=not args.quiet, prepared=records)
    entry = {"test": result["test"], "train_seconds": result["train_seconds"], "members": result["members"],
             "history": result["history"], "model_config": cfg.model.model_dump(), "train": cfg.train.model_dump()}
    if out is not None:
        entry["checkpoint"] = str(out / "predictor.pt")
    if args.few_shot:
        pred = result["predictor"].predict_graphs([records.graphs[i] for i in records.test])
        entry.update(few_shot(records, pred, seed, args.few_shot))
    if name == "narformer_v2" and args.speed_graphs:
        graphs = [records.graphs[i] for i in records.test[: args.speed_graphs]]
        entry["predict_speed"] = predict_speed(result["predictor"], graphs)
    return entry


def summarize(runs: list[dict]) -> dict:
    """mean ± std over seeds of each (setting, model): overall and per-family metrics."""
    groups: dict = {}
    for run in runs:
        for setting, metrics in run["test"].items():
            groups.setdefault(setting, {}).setdefault(run["model"], []).append((run, metrics))

    def stats(values: list[float]) -> dict:
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    summary: dict = {}
    for setting, models in groups.items():
        for model, items in models.items():
            row = {"seeds": [r["seed"] for r, _ in items], "trained_with": items[0][0]["settings"],
                   "overall": {m: stats([t["overall"][m] for _, t in items]) for m in METRICS}}
            row["per_family"] = {f: {m: stats([t["per_family"][f][m] for _, t in items]) for m in METRICS}
                                 for f in items[0][1]["per_family"]}
            row["train_seconds_mean"] = statistics.mean(r["train_seconds"] for r, _ in items)
            shot_runs = [r for r, _ in items if setting in next(iter(r.get("few_shot", {}).values()), {})]
            if shot_runs:
                row["few_shot"] = {k: {m: stats([r["few_shot"][k][setting][m] for r in shot_runs])
                                       for m in ("mape", "acc_10pct", "scale_all")}
                                   for k in shot_runs[0]["few_shot"] if all(k in r["few_shot"] for r in shot_runs)}
                row["few_shot_seeds"] = [r["seed"] for r in shot_runs]
            summary.setdefault(setting, {})[model] = row
    return summary


def same_config(stored: dict | None, cfg: LatencyExperimentConfig) -> bool:
    """Whether a results file's config is ``cfg``, once validated again: a key added to the config
    schema later (with a default that keeps the old behaviour) fills in, so older files still resume."""
    try:
        return LatencyExperimentConfig.model_validate(stored).model_dump() == cfg.model_dump()
    except ValueError:  # not a valid config any more: certainly not this one
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--settings", nargs="+", required=True,
                    help="HELP device settings, e.g. titan_rtx_1 2080ti_32; comma-joined settings of one batch "
                         "size (titan_rtx_1,2080ti_1) train one multi-device model")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--nnlp-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra override for the nnlp_gnn baseline only")
    ap.add_argument("--out", help="results JSON (default benchmarks/results/<config name>.json)")
    ap.add_argument("--save-dir", help="keep each trained predictor here")
    ap.add_argument("--data-dir")
    ap.add_argument("--speed-graphs", type=int, default=1000, help="time prediction of this many test graphs")
    ap.add_argument("--few-shot", nargs="+", type=int, default=[], metavar="K",
                    help="also score each model after rescaling its test predictions by K measured test networks "
                         "per setting (one factor; mean over 20 random draws), e.g. --few-shot 5 10")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    base = load_config(args.config, args.set)
    if not isinstance(base, LatencyExperimentConfig):
        ap.error(f"{args.config} is not a latency config (model.task: latency)")
    out_path = Path(args.out) if args.out else RESULTS / f"{base.name}.json"
    results = load_results(out_path)
    if results and not same_config(results.get("config"), base):
        ap.error(f"{out_path} holds runs of a different config; pass --out for a new file")
    results.update({"benchmark": "latency", "config": base.model_dump(), "machine": machine()})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    runs = results.setdefault("runs", [])
    done = {("+".join(r["settings"]), r["seed"], r["model"]) for r in runs}
    save_dir = Path(args.save_dir) if args.save_dir else None

    for group in args.settings:
        settings = group.split(",")
        for seed in args.seeds:
            todo = [m for m in args.models if ("+".join(settings), seed, m) not in done]
            if not todo:
                continue
            overrides = [*args.set, f"data.setting=[{', '.join(settings)}]", f"data.split_seed={seed}",
                         f"train.seed={seed}"]
            cfg = load_config(args.config, overrides)
            records = prepare_latency_data(cfg, args.data_dir, progress=not args.quiet)
            for name in todo:
                print(f"[{group} seed {seed}] {name} ...", flush=True)
                entry = run_model(name, cfg, overrides, records, seed, args, save_dir)
                entry.update({"settings": settings, "seed": seed, "model": name, "num_train": int(len(records.train)),
                              "num_valid": int(len(records.valid)), "num_test": int(len(records.test))})
                # parallel processes (other seeds) may share the file: merge under a lock
                results = append_locked(out_path, results, entry, summarize=summarize,
                                        key=lambda r: ("+".join(r["settings"]), r["seed"], r["model"]))
                runs = results["runs"]
                for setting, metrics in entry["test"].items():
                    o = metrics["overall"]
                    print(f"[{setting} seed {seed}] {name}: MAPE {o['mape']:.4f}  Acc(10%) {o['acc_10pct']:.3f}  "
                          f"({entry['train_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
