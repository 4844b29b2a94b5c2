"""Ship a trained latency predictor as package data: pick the best of several runs by VALIDATION MAPE
(never test), store it in the smallest dtype that leaves its test MAPE unchanged to 4 decimals, and
write manifest entries: one for the file and one per device setting (``latency-titan_rtx_1`` is the
multi-device file with that setting as its default).

    python benchmarks/ship_latency.py --name latency-help-b1 runs/lat/*/seed*/narformer_v2/predictor.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nas_predictor.config import LatencyExperimentConfig  # noqa: E402
from nas_predictor.latency_experiment import evaluate_latency, prepare_latency_data  # noqa: E402
from nas_predictor.predictor import PRETRAINED_DIR, Predictor, atomic_write_json, sha256_file  # noqa: E402


def validation_mape(checkpoint: Path) -> float:
    """Mean validation MAPE of the run's members at their kept epochs (from the run's results.json)."""
    results = json.loads((checkpoint.parent / "results.json").read_text())
    members = results["members"]
    return sum(m["best_valid_mape"] for m in members) / len(members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--name", required=True, help="file / manifest name, e.g. latency-help-b1")
    parser.add_argument("--description", default="")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    scores = {path: validation_mape(path) for path in args.checkpoints}
    for path, score in scores.items():
        print(f"validation MAPE {score:.4f}  {path}")
    best = min(args.checkpoints, key=lambda p: scores[p])
    predictor = Predictor.load(best)
    cfg = LatencyExperimentConfig.model_validate(predictor.meta["experiment"])
    records = prepare_latency_data(cfg, args.data_dir, progress=True)
    full = evaluate_latency(predictor, records, records.test)
    dtype, chosen = "float32", full
    with tempfile.TemporaryDirectory() as tmp:
        path = predictor.save(Path(tmp) / "float16.pt", weights="float16")
        half = evaluate_latency(Predictor.load(path), records, records.test)
        same = all(round(half[s]["overall"]["mape"], 4) == round(full[s]["overall"]["mape"], 4) for s in full)
        print(f"float16: {'unchanged' if same else 'changed'} test MAPE")
        if same:
            dtype, chosen = "float16", half
    target = PRETRAINED_DIR / f"{args.name}.pt"
    predictor.save(target, weights=dtype)
    digest = sha256_file(target)
    manifest_path = PRETRAINED_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for key in [k for k, v in manifest.items() if v.get("file") == target.name]:
        del manifest[key]  # re-shipping replaces the file's old entries
    settings = predictor.settings
    common = {"file": target.name, "sha256": digest, "task": "latency", "unit": "ms", "dtype": dtype,
              "source_checkpoint": str(best), "validation_mape": scores[best], "families": cfg.data.families,
              "split": cfg.data.split, "num_test": int(len(records.test))}
    manifest[args.name] = {**common, "settings": settings, "description": args.description or
                           f"NAR-Former V2 latency predictor (ms), {len(settings)} device settings: {', '.join(settings)}",
                           "test": {s: chosen[s]["overall"] for s in chosen}}
    for setting in settings:
        manifest[f"latency-{setting}"] = {
            **common, "setting": setting, "test": chosen[setting]["overall"] if setting in chosen else None,
            "description": f"latency (ms) on {setting}: the {setting} output of {args.name}",
        }
    atomic_write_json(manifest, manifest_path)
    print(json.dumps(manifest[args.name], indent=2))


if __name__ == "__main__":
    main()
