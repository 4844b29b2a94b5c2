"""Benchmark tables (accuracy, latency), where to find them, and their splits."""

from nas_predictor.data.nb101 import NB101Table, load_nb101_subset, load_nb101_tfrecord
from nas_predictor.data.nb201 import NB201Table, load_nb201_table, load_table
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
