"""Pick the best of several trained checkpoints (by VALIDATION tau, never test) and ship it as package data.

Writes nas_predictor/pretrained/<name>.pt (int8 or fp16 storage when that leaves Kendall tau unchanged
to 4 decimals)
and its manifest entry (sha256, source run, metrics).

    python tools/ship_pretrained.py --name nb201-accuracy runs/bench781/seed*/predictor.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nas_predictor.calibration import fit_linear_calibration  # noqa: E402
from nas_predictor.config import ExperimentConfig, validate_config  # noqa: E402
from nas_predictor.evaluate import evaluate_on_benchmark  # noqa: E402
from nas_predictor.metrics import kendall_tau  # noqa: E402
from nas_predictor.predictor import Predictor, sha256_file  # noqa: E402
from nas_predictor.pretrained_cards import PRETRAINED_DIR, read_manifest, write_manifest  # noqa: E402
from nas_predictor.train import prepare_data  # noqa: E402


def validation_tau(checkpoint: Path, data_dir: str | None = None, average: bool | None = None) -> float | None:
    """Kendall tau of the whole predictor (ensemble mean, equivalence averaging as configured) on its
    run's validation cells against their own training-target labels; None for checkpoints that were
    not trained on labels (e.g. distilled students)."""
    predictor = Predictor.load(checkpoint)
    experiment = predictor.meta.get("experiment")
    if not experiment or "distilled_from" in predictor.meta:
        return None
    cfg = validate_config(experiment, str(checkpoint))
    # The split depends only on the space and the data section, so runs of one setting share it.
    data = _prepared(json.dumps({"space": cfg.space, "data": cfg.data.model_dump()}, sort_keys=True), data_dir)
    valid_archs = [data.archs[i] for i in data.valid_idx]
    return kendall_tau(data.train_labels[data.valid_idx], predictor.predict(valid_archs, average_equivalent=average))


@lru_cache(maxsize=None)
def _prepared(key: str, data_dir: str | None):
    return prepare_data(ExperimentConfig.model_validate_json(key), data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--average-equivalent", action=argparse.BooleanOptionalAction, default=None,
                        help="score arch strings as the mean over equivalent cells (default: as the checkpoint)")
    args = parser.parse_args()

    scores = {path: validation_tau(path, args.data_dir, args.average_equivalent) for path in args.checkpoints}
    for path, tau in scores.items():
        print(f"validation tau {tau if tau is None else round(tau, 4)}  {path}")
    best = args.checkpoints[0] if len(args.checkpoints) == 1 else max(args.checkpoints, key=lambda p: scores[p] or -1.0)
    predictor = Predictor.load(best)
    if args.average_equivalent is not None:
        predictor.meta["average_equivalent"] = args.average_equivalent
    if "calibration" not in predictor.meta:
        # Fit on the run's own training cells and labels (never test labels); rankings are unchanged.
        data = prepare_data(validate_config(predictor.meta["experiment"], str(best)), args.data_dir)
        train_graphs = [data.graphs[i] for i in data.train_idx]
        predictor.meta["calibration"] = fit_linear_calibration(
            predictor.predict_graphs_raw(train_graphs), data.train_labels[data.train_idx]
        )
    full = evaluate_on_benchmark(predictor, args.data_dir)
    # The smallest storage whose Kendall tau over all cells equals the float32 one to 4 decimals.
    dtype, chosen = "float32", full
    with tempfile.TemporaryDirectory() as tmp:
        for candidate in ("int8", "float16"):
            path = predictor.save(Path(tmp) / f"{candidate}.pt", weights=candidate)
            result = evaluate_on_benchmark(Predictor.load(path), args.data_dir)
            print(f"{candidate}: tau {result['kendall_tau']:.5f} (float32 {full['kendall_tau']:.5f})")
            if round(result["kendall_tau"], 4) == round(full["kendall_tau"], 4):
                dtype, chosen = candidate, result
                break
    target = PRETRAINED_DIR / f"{args.name}.pt"
    predictor.save(target, weights=dtype)
    manifest = read_manifest()
    manifest[args.name] = {
        "file": target.name,
        "sha256": sha256_file(target),
        "description": args.description,
        "source_checkpoint": str(best),
        "validation_tau": scores[best],
        "dtype": dtype,
        "members": len(predictor.models),
        "kendall_tau_all_cells": chosen["kendall_tau"],
        "kendall_tau_fp32": full["kendall_tau"],
        "average_equivalent": chosen["average_equivalent"],
        "kendall_tau_plain": chosen["kendall_tau_plain"],
        "target": chosen["target"],
        "num_archs": chosen["num_archs"],
    }
    write_manifest(manifest)
    print(json.dumps(manifest[args.name], indent=2))


if __name__ == "__main__":
    main()
