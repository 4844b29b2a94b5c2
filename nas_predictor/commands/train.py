"""``nas-predictor train``: train a predictor from a YAML experiment config."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas_predictor.cli import print_json


def run(args: argparse.Namespace) -> int:
    from nas_predictor.config import LatencyExperimentConfig, load_config
    from nas_predictor.train import run_experiment

    cfg = load_config(args.config, args.set or [])
    if args.device is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": args.device})})
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if isinstance(cfg, LatencyExperimentConfig):
        from nas_predictor.latency_experiment import run_latency_experiment

        results = run_latency_experiment(cfg, out, args.data_dir, progress=not args.quiet)
        results.pop("predictor")
        print_json({k: results[k] for k in ("settings", "split", "num_train", "num_test", "test",
                                            "train_seconds", "checkpoint")}, indent=2)
        return 0
    results = run_experiment(cfg, out, args.data_dir, progress=not args.quiet)
    results.pop("predictor")
    summary = {k: results[k] for k in ("kendall_tau", "kendall_tau_plain", "kendall_tau_unseen", "mape", "num_archs",
                                       "train_seconds", "checkpoint")}
    print_json(summary, indent=2)
    return 0
