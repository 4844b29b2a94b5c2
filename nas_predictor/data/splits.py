"""Train / validation / test index splits: the paper's (index order) and seeded random ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_predictor.errors import DataError


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def _check(n_total: int, n_train: int, n_valid: int) -> None:
    if n_train < 1 or n_valid < 0 or n_train + n_valid > n_total:
        raise DataError(f"cannot take {n_train} train + {n_valid} validation items from {n_total}")


def paper_split(n_total: int, n_train: int, n_valid: int = 200) -> Split:
    """First n_train in index order train, next n_valid validation, test = all items (as the paper)."""
    _check(n_total, n_train, n_valid)
    idx = np.arange(n_total)
    return Split(train=idx[:n_train], valid=idx[n_train : n_train + n_valid], test=idx)


def random_split(n_total: int, n_train: int, n_valid: int = 200, seed: int = 0) -> Split:
    """A seeded random train/validation draw; test = all items, like the paper's protocol."""
    _check(n_total, n_train, n_valid)
    perm = np.random.default_rng(seed).permutation(n_total)
    return Split(train=np.sort(perm[:n_train]), valid=np.sort(perm[n_train : n_train + n_valid]), test=np.arange(n_total))


def held_out(split: Split) -> Split:
    """The same train/validation, tested only on the items neither holds."""
    used = np.union1d(split.train, split.valid)
    return Split(train=split.train, valid=split.valid, test=np.setdiff1d(split.test, used))
