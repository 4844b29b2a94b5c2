"""NAS-Bench-101 accuracy tables: the NASLib 500-cell subset and the official tfrecord files.

Both give an :class:`NB101Table`: canonical (pruned) arch strings in the file's order, the official
hashes, accuracies in percent (x100 of the official fractions, the unit of the NAS-Bench-201 tables),
trainable parameter counts. The official file is read without TensorFlow (``nb101_tfrecord``).
"""

from __future__ import annotations

import ast
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_predictor.data.nb101_tfrecord import read_nb101_records
from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.errors import ArchError, DataError
from nas_predictor.nb101_cell import (
    CONV1X1,
    CONV3X3,
    INPUT,
    MAXPOOL3X3,
    OUTPUT,
    Cell,
    canonical_cell,
    cell_hash,
    format_arch,
)

NB101_SUBSET_JSON = Path("naslib_zc_subsets") / "zc_nasbench101.json"
NUM_VERTICES = 7
# NASLib's op codes of the subset keys (its ``all_ops`` order).
NASLIB_OPS = (INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3)


@dataclass(frozen=True)
class NB101Table:
    """One row per unique cell, in the source's order.

    valid_acc / test_acc: percent, mean over the repeats at the chosen epoch budget (test_acc None when
    the source has none); params: trainable parameters (a count); train_time: seconds, mean over the
    repeats (None when unknown); mflops: millions of FLOPs (None when unknown).
    """

    arch_strs: list[str]
    hashes: list[str]
    valid_acc: np.ndarray = field(repr=False)
    test_acc: np.ndarray | None = field(repr=False)
    params: np.ndarray = field(repr=False)
    train_time: np.ndarray | None = field(default=None, repr=False)
    mflops: np.ndarray | None = field(default=None, repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.arch_strs)
        columns = {"hashes": self.hashes, "valid_acc": self.valid_acc, "test_acc": self.test_acc,
                   "params": self.params, "train_time": self.train_time, "mflops": self.mflops}
        for name, values in columns.items():
            if values is not None and len(values) != n:
                raise DataError(f"{self.source}: {name} has {len(values)} values for {n} cells")

    def __len__(self) -> int:
        return len(self.arch_strs)

    #: metric names of :meth:`column` (the names configs use in data.train_target / data.eval_target)
    COLUMNS = ("valid_acc", "test_acc", "params", "train_time", "mflops")

    def column(self, name: str) -> np.ndarray:
        """Values of one metric by name; DataError names what this table has."""
        have = [c for c in self.COLUMNS if getattr(self, c) is not None]
        if name not in have:
            raise DataError(f"{self.source}: no column {name!r}; this table has {', '.join(have)}"
                            + (" (the NASLib subset has no test accuracy)" if name == "test_acc" else ""))
        return np.asarray(getattr(self, name), dtype=np.float64)

    def merged(self) -> "NB101Table":
        """One row per hash, in order of first appearance, metrics averaged over the repeats. The NASLib
        subset lists 292 cells in 500 rows (one 55 times): kept apart, a split would put copies of one
        cell on both sides and test on what it trained on."""
        first: dict[str, int] = {}
        groups: dict[str, list[int]] = {}
        for i, h in enumerate(self.hashes):
            first.setdefault(h, i)
            groups.setdefault(h, []).append(i)
        if len(first) == len(self.hashes):
            return self
        keep = list(first.values())

        def mean(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.array([np.mean(values[groups[self.hashes[i]]]) for i in keep])

        return NB101Table(
            arch_strs=[self.arch_strs[i] for i in keep], hashes=[self.hashes[i] for i in keep],
            valid_acc=mean(self.valid_acc), test_acc=mean(self.test_acc), params=mean(self.params),
            train_time=mean(self.train_time), mflops=mean(self.mflops), source=f"{self.source} (repeats merged)",
        )


def load_nb101_subset(data_dir: str | os.PathLike | None = None) -> NB101Table:
    """The NASLib zero-cost subset ``naslib_zc_subsets/zc_nasbench101.json`` (500 cells, file order).

    Keys are ``str()`` of a 56-tuple: the 7x7 adjacency row by row, then 7 NASLib op codes. The file has
    a 108-epoch validation accuracy (percent, one value per cell) and NASLib's params/flops (millions),
    but no test accuracy: ``test_acc`` is None. Zero-cost proxies are not read.
    """
    path = resolve_data_dir(data_dir) / NB101_SUBSET_JSON
    if not path.is_file():
        raise DataError(f"NAS-Bench-101 subset not found at {path}")
    try:
        cells = json.loads(path.read_text())["nasbench101"]["cifar10"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a NASLib NAS-Bench-101 file ({type(err).__name__}: {err})") from None
    arch_strs, hashes, valid, params, mflops = [], [], [], [], []
    for key, entry in cells.items():
        cell = _naslib_cell(key, path)
        arch_strs.append(format_arch(cell))
        hashes.append(cell_hash(cell))
        valid.append(_number(entry, "val_accuracy", key, path))
        # NASLib stores params in millions; the table (like the official file) counts them
        params.append(round(_number(entry, "params", key, path) * 1e6))
        mflops.append(_number(entry, "flops", key, path))
    return NB101Table(arch_strs, hashes, np.array(valid), None, np.array(params, dtype=np.float64),
                      mflops=np.array(mflops), source=str(path))


def _naslib_cell(key: str, path: Path) -> Cell:
    try:
        codes = ast.literal_eval(key)
        if not isinstance(codes, tuple) or len(codes) != NUM_VERTICES * NUM_VERTICES + NUM_VERTICES:
            raise ValueError(f"expected a tuple of {NUM_VERTICES * (NUM_VERTICES + 1)} ints")
        matrix = [codes[r * NUM_VERTICES : (r + 1) * NUM_VERTICES] for r in range(NUM_VERTICES)]
        ops = tuple(NASLIB_OPS[c] for c in codes[NUM_VERTICES * NUM_VERTICES :])
        return canonical_cell(Cell(matrix, ops))
    except (ValueError, SyntaxError, TypeError, IndexError, ArchError) as err:
        raise DataError(f"{path}: malformed cell key {key!r}: {err}") from None


def _number(entry: object, name: str, key: str, path: Path) -> float:
    value = entry.get(name) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{path}: cell {key!r} has no finite number {name!r} (got {value!r})")
    return float(value)


def load_nb101_tfrecord(
    path: str | os.PathLike, *, epochs: int = 108, progress: bool = True, max_records: int | None = None
) -> NB101Table:
    """The official ``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord``, aggregated like the API.

    One row per module hash in order of first appearance (the order ``NASBench.hash_iterator()`` gives,
    since the API fills a dict record by record). For the ``epochs`` budget: validation and test accuracy
    of the final evaluation and training time, each the mean over the cell's repeats (3 in the official
    files); params from the cell's first record, as the API's ``fixed_statistics``. Cells without a record
    at ``epochs`` (possible with ``max_records``) are left out. Accuracies are percent (x100).
    ``max_records`` stops after that many records (a quick look at the head of a 2 GB file).
    """
    order: dict[str, int] = {}
    arch_strs: list[str] = []
    params: list[float] = []
    sums: dict[str, list[float]] = {}  # hash -> [repeats, valid, test, time] at ``epochs``
    seen_epochs: set[int] = set()
    for record in read_nb101_records(path, progress=progress, max_records=max_records):
        if record.module_hash not in order:
            order[record.module_hash] = len(order)
            arch_strs.append(record.arch)
            params.append(float(record.trainable_parameters))
        seen_epochs.add(record.epochs)
        if record.epochs == epochs:
            acc = sums.setdefault(record.module_hash, [0, 0.0, 0.0, 0.0])
            acc[0] += 1
            acc[1] += record.final_validation_accuracy
            acc[2] += record.final_test_accuracy
            acc[3] += record.final_training_time
    if not sums:
        raise DataError(f"{path}: no records with {epochs} epochs (the file has epochs {sorted(seen_epochs)})")
    kept = [h for h in order if h in sums]
    means = np.array([[total / sums[h][0] for total in sums[h][1:]] for h in kept])
    return NB101Table(
        arch_strs=[arch_strs[order[h]] for h in kept],
        hashes=kept,
        valid_acc=100.0 * means[:, 0],
        test_acc=100.0 * means[:, 1],
        params=np.array([params[order[h]] for h in kept]),
        train_time=means[:, 2],
        source=str(path),
    )
