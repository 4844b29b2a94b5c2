"""Evaluating a predictor on a whole benchmark table (all NAS-Bench-201 cells)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nas_predictor.data import load_table
from nas_predictor.metrics import kendall_tau, summarize
from nas_predictor.predictor import Predictor
from nas_predictor.spaces import get_space


def evaluate_on_benchmark(
    predictor: Predictor, data_dir: str | None = None, target: str | None = None, batch_size: int | None = None,
    table_file: str | None = None, average_equivalent: bool | None = None,
) -> dict[str, Any]:
    """Predict every architecture in the benchmark table and compare with ``target`` (default: the
    evaluation target the predictor was trained for, CIFAR-10 test accuracy for NB201).

    ``kendall_tau`` uses the predictor's equivalence averaging setting (or ``average_equivalent``);
    ``kendall_tau_plain`` always scores each cell alone. Both come from one pass over the table.
    """
    experiment = predictor.meta.get("experiment", {})
    target = target or experiment.get("data", {}).get("eval_target", "c10_test_200ep")
    average = predictor.average_equivalent if average_equivalent is None else average_equivalent
    table = load_table(table_file, data_dir)
    truth = table.column(target)
    space = get_space(predictor.space)
    start = time.perf_counter()
    graphs = [space.to_graph(a) for a in table.arch_strs]
    pred, plain = predictor.predict_with_plain(table.arch_strs, graphs, batch_size, average)
    seconds = time.perf_counter() - start
    return {
        "target": target,
        "num_archs": int(len(truth)),
        **summarize(truth, pred),
        "average_equivalent": average,
        "kendall_tau_plain": kendall_tau(truth, plain),
        "seconds": seconds,
        "archs_per_second": len(truth) / seconds,
        "best_predicted_arch": table.arch_strs[int(np.argmax(pred))],
        "best_predicted_arch_true_accuracy": float(truth[int(np.argmax(pred))]),
    }
