"""Lab probes for training runs: time-to-tau curves of an ensemble on the test cells, as epoch callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas_predictor.config import ExperimentConfig
from nas_predictor.encoding import GraphBatch
from nas_predictor.equivalence import class_mean
from nas_predictor.metrics import kendall_tau
from nas_predictor.spaces import get_space
from nas_predictor.train import MemberResult, parallel_members, run_experiment
from nas_predictor.train_data import PreparedData, cell_tokenizer, predict_batch


@dataclass
class CurveProbe:
    """An epoch callback (nas_predictor.train.EpochCallback): every ``every`` epochs, the predictions on
    fixed encoded cells. A dataclass of tensors, so members trained in worker processes can carry it."""

    batch: GraphBatch
    batch_size: int
    every: int

    def __call__(self, epoch: int, model: torch.nn.Module, device: torch.device) -> np.ndarray | None:
        if (epoch + 1) % self.every:
            return None
        return predict_batch(model, self.batch, device, self.batch_size)


def probe_test_cells(cfg: ExperimentConfig, data: PreparedData, every: int) -> CurveProbe:
    """A CurveProbe on all test cells of ``data``: the equivalence-averaged tau needs every member of a class."""
    batch = cell_tokenizer(cfg, data).encode([data.graphs[i] for i in data.test_idx])
    return CurveProbe(batch, cfg.train.eval_batch_size, every)


def ensemble_curve(
    cfg: ExperimentConfig, data: PreparedData, members: list[MemberResult], prep_seconds: float, index: int = 0,
) -> list[dict[str, float]]:
    """Tau of the ensemble (mean of the members' predictions recorded by callback ``index``, a
    CurveProbe on the test cells) against the eval target at each recorded epoch.

    ``train_seconds`` is the wall time to train every member that far: data preparation plus the
    members' times, summed when they train one after another, the slowest when they train in parallel.
    """
    if not members or len(members[0].records) <= index or not members[0].records[index]:
        return []
    truth = data.eval_labels[data.test_idx]
    test_archs = [data.archs[i] for i in data.test_idx]
    space = get_space(cfg.space) if cfg.predict.average_equivalent else None
    parallel = parallel_members(cfg, members)
    curve = []
    for k in range(min(len(m.records[index]) for m in members)):
        epoch = members[0].records[index][k][0]
        times = [m.start_delay + m.records[index][k][1] for m in members]
        pred = np.mean([m.records[index][k][2] for m in members], axis=0)
        entry = {"epoch": epoch, "train_seconds": prep_seconds + (max(times) if parallel else sum(times)),
                 "kendall_tau_plain": kendall_tau(truth, pred)}
        if space is not None:
            pred = class_mean(space, test_archs, None, known=dict(zip(test_archs, pred)), partial=True)
        entry["kendall_tau"] = kendall_tau(truth, pred)
        curve.append(entry)
    return curve


def run_with_curve(cfg: ExperimentConfig, data: PreparedData, every: int, **kwargs: Any) -> dict[str, Any]:
    """``run_experiment(cfg, prepared=data, **kwargs)``, with ``"curve"`` (the time-to-tau curve every
    ``every`` epochs; [] for 0) in the results. The probe's time is not training time."""
    callbacks = [probe_test_cells(cfg, data, every)] if every else []
    result = run_experiment(cfg, prepared=data, callbacks=callbacks, **kwargs)
    result["curve"] = ensemble_curve(cfg, data, result["member_results"], result["prep_seconds"])
    return result
