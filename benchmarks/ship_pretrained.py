"""Pick the best of several trained checkpoints (by VALIDATION tau, never test) and ship it as package data.

Writes nas_predictor/pretrained/<name>.pt (fp16 when that leaves Kendall tau unchanged to 4 decimals)
and its manifest entry (sha256, source run, metrics).

    python benchmarks/ship_pretrained.py --name nb201-accuracy runs/bench781/seed*/predictor.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nas_predictor.calibration import fit_linear_calibration  # noqa: E402
from nas_predictor.config import validate_config  # noqa: E402
from nas_predictor.evaluate import evaluate_on_benchmark  # noqa: E402
from nas_predictor.train import prepare_data  # noqa: E402
from nas_predictor.predictor import PRETRAINED_DIR, Predictor, atomic_write_json, sha256_file  # noqa: E402


def validation_tau(checkpoint: Path) -> float | None:
    """Best validation tau of a training run (None for checkpoints that were not trained on labels,
    e.g. distilled students)."""
    results = json.loads(checkpoint.with_name("results.json").read_text())
    members = results.get("members")
    return max(m["best_valid_tau"] for m in members) if members else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    best = args.checkpoints[0] if len(args.checkpoints) == 1 else max(args.checkpoints, key=validation_tau)
    predictor = Predictor.load(best)
    if "calibration" not in predictor.meta:
        # Fit on the run's own training cells and labels (never test labels); rankings are unchanged.
        data = prepare_data(validate_config(predictor.meta["experiment"], str(best)), args.data_dir)
        train_graphs = [data.graphs[i] for i in data.train_idx]
        predictor.meta["calibration"] = fit_linear_calibration(
            predictor.predict_graphs_raw(train_graphs), data.train_labels[data.train_idx]
        )
    full = evaluate_on_benchmark(predictor, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        half_path = predictor.save(Path(tmp) / "half.pt", half=True)
        half = evaluate_on_benchmark(Predictor.load(half_path), args.data_dir)
    use_half = round(half["kendall_tau"], 4) == round(full["kendall_tau"], 4)
    target = PRETRAINED_DIR / f"{args.name}.pt"
    predictor.save(target, half=use_half)
    manifest_path = PRETRAINED_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    chosen = half if use_half else full
    manifest[args.name] = {
        "file": target.name,
        "sha256": sha256_file(target),
        "description": args.description,
        "source_checkpoint": str(best),
        "validation_tau": validation_tau(best),
        "dtype": "float16" if use_half else "float32",
        "kendall_tau_all_cells": chosen["kendall_tau"],
        "kendall_tau_fp32": full["kendall_tau"],
        "target": chosen["target"],
        "num_archs": chosen["num_archs"],
    }
    atomic_write_json(manifest, manifest_path)
    print(json.dumps(manifest[args.name], indent=2))


if __name__ == "__main__":
    main()
