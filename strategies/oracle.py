"""Oracles: what a search pays for. An evaluation returns the value the search maximises and a report
(values the search must not see, such as test accuracy, for the summary).

Tables and functions, one interface, so the same strategy code drives both:
- :class:`NB201TableOracle`: the real NAS-Bench-201 200-epoch accuracies of the shared data (or an
  official ``.pth`` table). On CIFAR-10 the search sees the validation accuracy of the ``cifar10-valid``
  runs and reports show the test accuracy of the ``cifar10`` runs (the protocol of NAS-Bench-201 and
  of the predictor-guided NAS papers). The shared data has no 200-epoch validation accuracies for
  CIFAR-100 and ImageNet16-120, so there the search sees, and reports show, the test accuracy.
- :class:`NB101TableOracle`: the real NAS-Bench-101 accuracies (official tfrecord, or the shared
  500-cell subset), looked up by the official cell hash.
- :class:`FunctionOracle`: any user function ``arch -> float`` (a training run, say), or one returning
  ``(value, report_dict)``.

Any finite value is a result (accuracies, negated losses, zero). An oracle that raises is a failed
evaluation, recorded with its error, and the search goes on; an oracle that returns NaN or an infinity
(in its value or its report) stops the search with an :class:`OracleError` naming the architecture:
such a number cannot be ranked, and written down it would make every later summary a silent wrong answer.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from nas_predictor.errors import ConfigError, NasPredictorError


class OracleError(NasPredictorError, ValueError):
    """An oracle returned something that is not a result (NaN, infinity, not a number)."""


@dataclass
class Evaluation:
    value: float  # what the search maximises; NaN = the evaluation failed (see error)
    report: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and math.isfinite(self.value)


class Oracle(abc.ABC):
    """Evaluates architectures of one search space."""

    #: the report key that summaries rank final results by (e.g. "test_accuracy"); None = the value
    report_key: str | None = None
    #: what the value is, with its unit, for plot axes (e.g. "CIFAR-10 validation accuracy (%)")
    value_label: str = "value"

    @property
    def report_label(self) -> str | None:
        """What ``report[report_key]`` is, with its unit, for plot legends; None without a report key."""
        return self.report_key

    @abc.abstractmethod
    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
        """(value, report) of one architecture; may raise."""

    def evaluate(self, arch: str) -> Evaluation:
        """One evaluation. An exception becomes a failed Evaluation (the error text is kept in the
        history) and the search goes on; a value or report entry that is not a finite number is an
        OracleError naming ``arch`` (see the module docstring)."""
        t0 = time.perf_counter()
        try:
            value, report = self._evaluate(arch)
        except Exception as exc:  # a user's training run may fail in any way; the search goes on
            return Evaluation(math.nan, {}, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - t0
        value = _finite(value, f"{self.describe()} returned the value {value!r} for {arch!r}")
        clean = {}
        for key, entry in dict(report).items():
            clean[str(key)] = _finite(entry, f"{self.describe()} reported {key}={entry!r} for {arch!r}")
        return Evaluation(value, clean, seconds)

    def describe(self) -> str:
        return type(self).__name__


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OracleError(f"{what}: not a number; return a finite float (raise an exception to record a "
                          "failed evaluation)") from None
    if not math.isfinite(number):
        raise OracleError(f"{what}: not a finite number; return a finite float (raise an exception to record "
                          "a failed evaluation); the evaluations before it are kept in the history")
    return number


class FunctionOracle(Oracle):
    """A user function ``arch -> value`` or ``arch -> (value, report)``."""

    def __init__(self, fn: Callable[[str], Any], name: str | None = None, label: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError(f"FunctionOracle needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")
        # the plots' name for the value: yours, or the function's
        self.value_label = label or f"value of {self.name}"

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
        out = self.fn(arch)
        if isinstance(out, tuple):
            value, report = out
            return value, dict(report)
        return out, {}

    def describe(self) -> str:
        return f"function {self.name}"


#: dataset -> (column the search sees, column reports show) of the shared NB201 table
NB201_COLUMNS = {
    "cifar10": ("c10valid_valid_200ep", "c10_test_200ep"),
    "cifar100": ("c100_test_200ep_natsv1", "c100_test_200ep_natsv1"),
    "ImageNet16-120": ("in16_test_200ep_natsv1", "in16_test_200ep_natsv1"),
}
#: first part of a benchmark column -> its dataset (NAS-Bench-101's valid_acc / test_acc are CIFAR-10)
DATASET_NAMES = {"c10valid": "CIFAR-10", "c10": "CIFAR-10", "c100": "CIFAR-100", "in16": "ImageNet16-120",
                 "valid": "CIFAR-10", "test": "CIFAR-10"}


def column_label(column: str, predicted: bool = False) -> str:
    """An axis label for a benchmark accuracy column (percent): "CIFAR-10 validation accuracy (%)", or
    with ``predicted`` "predicted CIFAR-10 accuracy (%)"; an unknown column keeps its own name."""
    dataset = DATASET_NAMES.get(column.split("_")[0])
    if dataset is None:
        return f"predicted {column}" if predicted else column
    if predicted:
        return f"predicted {dataset} accuracy (%)"
    kind = "validation" if column.startswith("valid") or "_valid_" in column else "test"
    return f"{dataset} {kind} accuracy (%)"


class NB201TableOracle(Oracle):
    """Real NAS-Bench-201 accuracies (percent) looked up in the benchmark table."""

    report_key = "test_accuracy"

    def __init__(self, dataset: str = "cifar10", data_dir: str | None = None, table_file: str | None = None) -> None:
        from nas_predictor.data import load_table
        from search_spaces.nasbench201 import NASBench201

        if dataset not in NB201_COLUMNS:
            raise ConfigError(f"unknown NAS-Bench-201 dataset {dataset!r}; choose from {', '.join(NB201_COLUMNS)}")
        self.dataset = dataset
        table = load_table(table_file, data_dir)
        search_col, test_col = NB201_COLUMNS[dataset]
        self.search_values = table.column(search_col)
        self.test_values = table.column(test_col)
        self.arch_strs = table.arch_strs
        self._space = NASBench201()
        self._row = {a: i for i, a in enumerate(table.arch_strs)}
        self.source = table.source
        self.value_label = column_label(search_col)
        self._report_label = column_label(test_col)

    @property
    def report_label(self) -> str:
        return self._report_label

    def index(self, arch: str) -> int:
        key = self._space.canonical(arch)
        if key not in self._row:
            raise ConfigError(f"{arch!r} is not in the NAS-Bench-201 table")
        return self._row[key]

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
        i = self.index(arch)
        return self.search_values[i], {"test_accuracy": float(self.test_values[i])}

    def global_optimum(self, allowed: np.ndarray | None = None) -> dict[str, Any]:
        """The architecture a perfect search would return (best search value among ``allowed`` rows,
        a boolean mask, default all) and its test accuracy; also the best test accuracy there is."""
        mask = np.ones(len(self.arch_strs), bool) if allowed is None else np.asarray(allowed, bool)
        rows = np.flatnonzero(mask)
        best = rows[np.argmax(self.search_values[rows])]
        return {"arch": self.arch_strs[best], "search_value": float(self.search_values[best]),
                "test_accuracy": float(self.test_values[best]),
                "best_test_accuracy": float(self.test_values[rows].max()),
                "best_test_arch": self.arch_strs[rows[np.argmax(self.test_values[rows])]]}

    def describe(self) -> str:
        search_col, test_col = NB201_COLUMNS[self.dataset]
        return f"NAS-Bench-201 {self.dataset} table ({self.source}): search sees {search_col}, reports {test_col}"


class NB101TableOracle(Oracle):
    """Real NAS-Bench-101 accuracies (percent, 108 epochs, mean over the repeats) looked up by the
    official cell hash, so any isomorphic relabelling of a cell finds it. From the official
    ``nasbench_only108.tfrecord`` (``table_file``; every valid cell is in it) the search sees the
    validation accuracy and reports show the test accuracy. Without it, the shared NASLib subset: 292
    cells with validation accuracy only (search and reports both see it); any other cell fails with an
    error naming the table, recorded as a failed evaluation."""

    def __init__(self, table_file: str | None = None, data_dir: str | None = None, progress: bool = True) -> None:
        from nas_predictor.data.nb101 import load_nb101_subset, load_nb101_tfrecord
        from search_spaces.nasbench101 import NASBench101

        if table_file is None:
            table = load_nb101_subset(data_dir).merged()
        else:
            table = load_nb101_tfrecord(table_file, progress=progress)
        self.search_values = table.valid_acc
        self.test_values = table.test_acc
        self.report_key = "test_accuracy" if table.test_acc is not None else "validation_accuracy"
        self.value_label = column_label("valid_acc")
        self.arch_strs = table.arch_strs
        self._row = {h: i for i, h in enumerate(table.hashes)}
        self._space = NASBench101()
        self.source = table.source

    def index(self, arch: str) -> int:
        key = self._space.equivalence_key(arch)
        if key not in self._row:
            raise ConfigError(f"cell {key} ({arch}) is not among the {len(self._row)} cells of {self.source}"
                              + ("" if self.test_values is not None else
                                 "; every cell is in the official nasbench_only108.tfrecord (table_file)"))
        return self._row[key]

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
        i = self.index(arch)
        if self.test_values is None:
            return self.search_values[i], {"validation_accuracy": float(self.search_values[i])}
        return self.search_values[i], {"test_accuracy": float(self.test_values[i])}

    @property
    def report_label(self) -> str:
        return column_label("test_acc" if self.test_values is not None else "valid_acc")

    def describe(self) -> str:
        seen = "reports test accuracy" if self.test_values is not None else "reports it too (no test accuracy)"
        return f"NAS-Bench-101 table ({self.source}, {len(self._row)} cells): search sees validation accuracy, {seen}"


class PredictorOracle(Oracle):
    """A trained accuracy predictor standing in for real evaluations (no benchmark data, no training):
    its values are predictions, and every report says so."""

    report_key = "predicted_accuracy"

    def __init__(self, predictor: str, device: str = "cpu") -> None:
        from nas_predictor.predictor import load_predictor

        self.name = predictor
        self.predictor = load_predictor(predictor, device=device)
        # predictions of the column it was trained on, in its units (percent for the benchmark tables)
        self.value_label = column_label(str(self.predictor.meta.get("target", "accuracy")), predicted=True)

    @property
    def report_label(self) -> str:
        return self.value_label  # the report repeats the prediction, so that summaries say what it is

    def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
        value = float(self.predictor.predict([arch])[0])
        return value, {"predicted_accuracy": value}

    def describe(self) -> str:
        return f"predictions of {self.name} (no real evaluation)"
