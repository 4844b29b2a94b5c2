"""Ensemble of already trained NB201 predictors (e.g. the per-seed checkpoints of nb201_accuracy.py).

The members' predictions are averaged; Kendall tau is computed over all 15,625 cells. The cost of an
ensemble is the sum of its members' training times (reported alongside).

    python benchmarks/nb201_ensemble.py --name nb201_accuracy_781_ensemble5 runs/bench781/seed*/predictor.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.evaluate import evaluate_on_benchmark  # noqa: E402
from nas_predictor.predictor import Predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--name", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--save", default=None, help="also write the ensemble checkpoint here")
    parser.add_argument("--average-equivalent", action=argparse.BooleanOptionalAction, default=None,
                        help="score cells as the mean over equivalent cells (default: as the first checkpoint)")
    args = parser.parse_args()

    loaded = [Predictor.load(p) for p in args.checkpoints]
    meta = dict(loaded[0].meta, name=args.name, ensemble_of=[str(p) for p in args.checkpoints])
    ensemble = Predictor(meta, [m for p in loaded for m in p.models])
    if args.average_equivalent is not None:
        ensemble.meta["average_equivalent"] = args.average_equivalent
    result = evaluate_on_benchmark(ensemble, args.data_dir)
    train_seconds = []
    for path in args.checkpoints:
        results_json = Path(path).with_name("results.json")
        if results_json.is_file():
            train_seconds.append(json.loads(results_json.read_text())["train_seconds"])
    out = {
        "benchmark": "nb201_ensemble", "name": args.name, "command": command_line(), "machine": machine(),
        "members": [str(p) for p in args.checkpoints],
        "member_kendall_tau": [p.meta.get("metrics", {}).get("kendall_tau") for p in loaded],
        "total_train_seconds": sum(train_seconds) if len(train_seconds) == len(loaded) else None,
        **result,
    }
    save_results(RESULTS / f"{args.name}.json", out)
    if args.save:
        ensemble.save(args.save)
    print(f"{args.name}: tau {result['kendall_tau']:.4f} (plain {result['kendall_tau_plain']:.4f}) from {len(loaded)} members "
          f"(members {', '.join(f'{t:.4f}' for t in out['member_kendall_tau'] if t is not None)})")


if __name__ == "__main__":
    main()
