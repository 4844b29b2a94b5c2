"""One training run with config overrides, printing tau over all cells (used for the recipe search).

    python benchmarks/nb201_recipe_search.py train.epochs=120 train.lambda_sr=30 train.sr_mode=all_pairs
"""

from __future__ import annotations

import json
import sys

from nas_predictor.config import load_config
from nas_predictor.train import run_experiment


def main() -> None:
    cfg = load_config(None, sys.argv[1:])
    result = run_experiment(cfg, progress=False)
    result.pop("predictor")
    print(json.dumps({k: result[k] for k in ("kendall_tau", "kendall_tau_unseen", "train_seconds", "members")}))


if __name__ == "__main__":
    main()
