"""Benchmark tables (accuracy, latency), where to find them, and their splits."""

from __future__ import annotations

import os

from nas_predictor.data.nb101 import NB101Table, load_nb101_subset, load_nb101_tfrecord
from nas_predictor.data.nb201 import NB201Table, load_nb201_table
from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.data.splits import Split, paper_split, random_split

__all__ = [
    "NB101Table",
    "NB201Table",
    "Split",
    "load_nb101_subset",
    "load_nb101_tfrecord",
    "load_nb201_table",
    "load_table",
    "paper_split",
    "random_split",
    "resolve_data_dir",
]


def load_table(table_file: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> NB201Table:
    """The shared CSV, or an official ``NAS-Bench-201-v1_*.pth`` file when ``table_file`` is given."""
    if table_file is None:
        return load_nb201_table(data_dir)
    # Here, not in nb201.py: nb201_official builds on nb201 (and imports torch), so nb201 importing it
    # back made a circle.
    from nas_predictor.data.nb201_official import load_nb201_pth

    return load_nb201_pth(table_file)
