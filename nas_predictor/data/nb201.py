"""The NAS-Bench-201 accuracy table: 15,625 cells in official index order, one column per metric."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.errors import DataError

NB201_NUM_ARCHS = 15625
NB201_CSV = Path("nb201_derived") / "nb201_accuracies.csv"

# Training target (CIFAR-10-valid, validation accuracy, 200 epochs) and evaluation target
# (CIFAR-10 test accuracy, 200 epochs), as in the paper. Values are percentages in the table.
TRAIN_TARGET = "c10valid_valid_200ep"
EVAL_TARGET = "c10_test_200ep"


@dataclass(frozen=True)
class NB201Table:
    """Arch strings in NB201 index order plus named metric columns (percent, float64)."""

    arch_strs: list[str]
    columns: dict[str, np.ndarray] = field(repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.arch_strs)
        for name, values in self.columns.items():
            if len(values) != n:
                raise DataError(f"{self.source}: column {name!r} has {len(values)} values for {n} archs")

    def __len__(self) -> int:
        return len(self.arch_strs)

    def column(self, name: str) -> np.ndarray:
        """Values of one metric; raises DataError naming the available columns, or a NaN row."""
        if name not in self.columns:
            raise DataError(
                f"{self.source}: no column {name!r}; available: {', '.join(sorted(self.columns))}"
            )
        values = self.columns[name]
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(
                f"{self.source}: column {name!r} has {bad.size} non-finite value(s), first at index {bad[0]}"
            )
        return values


def _parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None


def load_nb201_table(data_dir: str | os.PathLike | None = None) -> NB201Table:
    """Read ``nb201_derived/nb201_accuracies.csv`` from the shared data directory."""
    path = resolve_data_dir(data_dir) / NB201_CSV
    if not path.is_file():
        raise DataError(f"NAS-Bench-201 table not found at {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "arch_str" not in reader.fieldnames:
            raise DataError(f"{path}: missing header or 'arch_str' column")
        metric_names = [c for c in reader.fieldnames if c not in ("index", "arch_str")]
        arch_strs: list[str] = []
        raw: dict[str, list[float]] = {c: [] for c in metric_names}
        for line_no, row in enumerate(reader, start=2):
            if "index" in row and row["index"] != str(len(arch_strs)):
                raise DataError(f"{path}:{line_no}: expected index {len(arch_strs)}, got {row['index']!r}")
            arch_strs.append(row["arch_str"])
            for name in metric_names:
                value = row[name]
                raw[name].append(math.nan if value in ("", None) else _parse_float(value, f"{path}:{line_no}"))
    if len(arch_strs) != NB201_NUM_ARCHS:
        raise DataError(f"{path}: expected {NB201_NUM_ARCHS} rows, found {len(arch_strs)}")
    columns = {name: np.asarray(vals, dtype=np.float64) for name, vals in raw.items()}
    return NB201Table(arch_strs=arch_strs, columns=columns, source=str(path))
