"""benchmarks/accuracy_random_split.py (the TNASP / PINAT protocol): each seed draws its own training
cells, no validation labels exist, the test cells never include a training cell; a size takes the
recipe's number of optimiser steps."""

import numpy as np

from pathlib import Path

from nas_predictor.config import load_config
from nas_predictor.train_data import prepare_data

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "nb201_accuracy_781.yaml"


def _split(n_train: int, seed: int):
    cfg = load_config(str(RECIPE),
                      ["data.split=random", f"data.n_train={n_train}", "data.n_valid=0", "data.test_on=rest",
                       f"data.split_seed={seed}"])
    return prepare_data(cfg)


def test_the_split_is_seeded_and_never_overlaps_train_and_test(nb201_table):
    a, again, other = _split(78, 3), _split(78, 3), _split(78, 4)
    assert len(a.train_idx) == 78 and len(a.valid_idx) == 0
    np.testing.assert_array_equal(a.train_idx, again.train_idx)  # the seed fixes the draw
    assert len(np.intersect1d(a.train_idx, other.train_idx)) < 10  # another seed, other cells
    assert len(np.intersect1d(a.train_idx, a.test_idx)) == 0
    assert len(a.test_idx) == len(a.archs) - 78 == 15_625 - 78  # every other cell is a test cell
    assert a.train_idx.min() > 0 and a.train_idx.max() > 10_000  # a draw over the space, not its first cells


def test_each_size_gets_the_recipes_optimiser_steps_and_at_least_its_epochs(load_benchmark):
    bench = load_benchmark("accuracy_random_split")
    assert bench.epochs_for(781, 781, 240, 32) == 240
    assert bench.epochs_for(78, 781, 240, 32) == 2000  # 25 batches x 240 epochs = 6,000 steps, 3 batches each
    assert bench.epochs_for(1563, 781, 240, 32) == 240  # never fewer epochs than the recipe
    assert bench.out_path("nb201", 156, "proxies").name == "nb201_random156_proxies.json"
