"""The TNASP / PINAT protocol on NAS-Bench-201: a seeded random sample of N labelled cells trains the
predictor, Kendall tau on every other cell (issue 31).

The literature's second protocol (TNASP, NeurIPS 2021; PINAT, AAAI 2024) differs from NAR-Former's
(the first N cells in index order, 200 more for validation, tau on all 15,625) in two ways that matter:
the training cells are a random draw per seed, and no labels exist beyond those N. So a run here uses
``data.split: random`` with ``data.split_seed`` = the seed, ``data.n_valid: 0`` (no validation cells:
the last epoch's weights are kept, there is nothing to select on) and ``data.test_on: rest`` (the test
cells never include a training cell). The recipe is the 781-cell one (configs/nb201_accuracy_781.yaml)
with the number of optimiser steps held at its own (240 epochs of 781 cells in batches of 32), so a
78-cell run takes as many steps as a 781-cell one instead of a tenth; never fewer than its 240 epochs.
No setting was chosen by looking at test cells.

Each size is one results file, ``benchmarks/results/<name>_random<N>.json``, run through
benchmarks/nb201_accuracy.py (resumable per seed):

    python benchmarks/accuracy_random_split.py --sizes 78 156 469 781 1563 --seeds 0 1 2 3 4
    python benchmarks/accuracy_random_split.py --tag proxies --set encoding.proxies=[all]

NAS-Bench-101 (PINAT's 100 / 172 / 424 / 4,236 cells) needs the official tfrecord and the 424-cell recipe:

    python benchmarks/accuracy_random_split.py --config configs/nb101_accuracy_424.yaml --sizes 100 172 424 4236 \
        --set data.table_file=/data/nasbench_only108.tfrecord
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS  # noqa: E402

from nas_predictor.config import load_config  # noqa: E402

SIZES = (78, 156, 469, 781, 1563)
RECIPE = HERE.parent / "configs" / "nb201_accuracy_781.yaml"


def epochs_for(n_train: int, recipe_cells: int, recipe_epochs: int, batch_size: int) -> int:
    """Epochs that give ``n_train`` cells the recipe's number of optimiser steps (at least its epochs)."""
    steps = recipe_epochs * math.ceil(recipe_cells / batch_size)
    return max(recipe_epochs, math.ceil(steps / math.ceil(n_train / batch_size)))


def out_path(name: str, n_train: int, tag: str | None, folder: Path = RESULTS) -> Path:
    return folder / f"{name}_random{n_train}{'_' + tag if tag else ''}.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(RECIPE), help="the recipe (default configs/nb201_accuracy_781.yaml)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    ap.add_argument("--tag", default=None, help="suffix of the results files (e.g. proxies)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results files go")
    ap.add_argument("--save-dir", default=None, help="keep each run's checkpoint under here")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    recipe = load_config(args.config, args.set)
    for n in args.sizes:
        epochs = epochs_for(n, recipe.data.n_train, recipe.train.epochs, recipe.train.batch_size)
        overrides = [*args.set, "data.split=random", f"data.n_train={n}", "data.n_valid=0", "data.test_on=rest",
                     f"train.epochs={epochs}"]
        command = [sys.executable, str(HERE / "nb201_accuracy.py"), "--config", args.config, "--resplit",
                   "--out", str(out_path(recipe.name, n, args.tag, args.out_dir)), "--seeds", *map(str, args.seeds)]
        for item in overrides:
            command += ["--set", item]
        if args.save_dir:
            command += ["--save-dir", str(Path(args.save_dir) / f"random{n}")]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        print(f"{n} training cells, {epochs} epochs: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
