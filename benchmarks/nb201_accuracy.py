"""NAS-Bench-201 accuracy prediction (paper Table 4): Kendall tau over all 15,625 cells, one run per seed.

Resumable: every finished seed is appended to the results JSON at once; seeds already there are skipped.

    python benchmarks/nb201_accuracy.py --config configs/nb201_accuracy_781.yaml --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, machine, save_results  # noqa: E402

from nas_predictor.config import load_config  # noqa: E402
from nas_predictor.train import prepare_data, run_experiment  # noqa: E402


def time_to_tau(history: list[dict], tau: float) -> float | None:
    """Training seconds until the curve tau (every 5th cell, eval target) first reached ``tau``."""
    for entry in history:
        if entry.get("curve_tau", -1.0) >= tau:
            return entry["train_seconds"]
    return None


def summarize(runs: list[dict]) -> dict:
    taus = [r["kendall_tau"] for r in runs]
    secs = [r["train_seconds"] for r in runs]
    return {
        "seeds": [r["seed"] for r in runs],
        "kendall_tau_mean": statistics.mean(taus),
        "kendall_tau_std": statistics.stdev(taus) if len(taus) > 1 else 0.0,
        "train_seconds_mean": statistics.mean(secs),
        "train_seconds_std": statistics.stdev(secs) if len(secs) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<config name>.json)")
    parser.add_argument("--save-dir", default=None, help="keep each seed's checkpoint here")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--paper-tau", type=float, default=None, help="report training time until this tau")
    args = parser.parse_args()

    base = load_config(args.config, args.set)
    out = Path(args.out) if args.out else RESULTS / f"{base.name}.json"
    results = load_results(out)
    results.update({"benchmark": "nb201_accuracy", "config": base.model_dump(), "command": command_line(),
                    "machine": machine()})
    runs = results.setdefault("runs", [])
    done = {r["seed"] for r in runs}
    data = prepare_data(base, args.data_dir)
    for seed in args.seeds:
        if seed in done:
            print(f"seed {seed}: already in {out}, skipped")
            continue
        cfg = load_config(args.config, [*args.set, f"train.seed={seed}"])
        save_dir = Path(args.save_dir) / f"seed{seed}" if args.save_dir else None
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        result = run_experiment(cfg, save_dir, args.data_dir, progress=False, prepared=data)
        result.pop("predictor")
        result.pop("config")
        if args.paper_tau is not None:
            result["paper_tau"] = args.paper_tau
            result["seconds_to_paper_tau"] = time_to_tau(result["history"][0], args.paper_tau)
        runs.append({"seed": seed, "started": started, **result})
        results["summary"] = summarize(runs)
        save_results(out, results)
        print(f"seed {seed}: tau {result['kendall_tau']:.4f} (unseen {result['kendall_tau_unseen']:.4f}) "
              f"train {result['train_seconds']:.0f} s", flush=True)
    if runs:
        s = summarize(runs)
        print(f"{base.name}: tau {s['kendall_tau_mean']:.4f} +- {s['kendall_tau_std']:.4f} over seeds {s['seeds']}")


if __name__ == "__main__":
    main()
