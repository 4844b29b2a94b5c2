"""Evaluating a predictor on a whole benchmark table (all NAS-Bench-201 cells)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nas_predictor.data import load_table
from nas_predictor.metrics import summarize
from nas_predictor.predictor import Predictor
from nas_predictor.spaces import get_space


def evaluate_on_benchmark(
    predictor: Predictor, data_dir: str | None = None, target: str | None = None, batch_size: int | None = None,
    table_file: str | None = None,
) -> dict[str, Any]:
    """Predict every architecture in the benchmark table and compare with ``target`` (default: the
    evaluation target the predictor was trained for, CIFAR-10 test accuracy for NB201)."""
    experiment = predictor.meta.get("experiment", {})
    target = target or experiment.get("data", {}).get("eval_target", "c10_test_200ep")
    table = load_table(table_file, data_dir)
    truth = table.column(target)
    space = get_space(predictor.space)
    start = time.perf_counter()
    graphs = [space.to_graph(a) for a in table.arch_strs]
    pred = predictor.predict_graphs(graphs, batch_size)
    seconds = time.perf_counter() - start
    return {
        "target": target,
        "num_archs": int(len(truth)),
        **summarize(truth, pred),
        "seconds": seconds,
        "archs_per_second": len(truth) / seconds,
        "best_predicted_arch": table.arch_strs[int(np.argmax(pred))],
        "best_predicted_arch_true_accuracy": float(truth[int(np.argmax(pred))]),
    }
