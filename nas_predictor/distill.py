"""Distilling a (large or ensembled) predictor into a compact one for fast scoring of a whole space.

The student learns the teacher's predictions on unlabeled architectures (e.g. every cell of
NAS-Bench-201), so no extra benchmark labels are used: only what the teacher already knows.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_predictor.graph import ArchGraph
from nas_predictor.losses import all_pairs_ranking_loss, relative_squared_error
from nas_predictor.architectures import build_model
from nas_predictor.model_config import ModelConfig
from nas_predictor.predictor import Predictor
from nas_predictor.train import linear_warmup_decay


def distill(
    teacher: Predictor,
    graphs: Sequence[ArchGraph],
    student_cfg: ModelConfig,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 2e-3,
    lambda_sr: float = 30.0,
    seed: int = 0,
    progress: bool = True,
    teacher_outputs: np.ndarray | None = None,
) -> tuple[Predictor, dict]:
    """Train a student on the teacher's outputs for ``graphs``; returns the student and a report.

    ``teacher_outputs`` (uncalibrated, label units, one per graph) replaces the teacher's own plain
    outputs, e.g. its outputs averaged over equivalent cells, so the student learns that invariance.
    """
    start = time.perf_counter()
    batch = teacher.tokenizer.encode(list(graphs))
    outputs = teacher.predict_graphs_raw(graphs) if teacher_outputs is None else np.asarray(teacher_outputs)
    if outputs.shape != (len(graphs),) or not np.all(np.isfinite(outputs)):
        raise ValueError(f"teacher_outputs must be {len(graphs)} finite numbers, got shape {outputs.shape}")
    # Model units (e.g. fractions), the scale the student's relative loss is defined on.
    targets = torch.from_numpy(outputs * teacher.label_scale).float()
    teacher_seconds = time.perf_counter() - start
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = teacher.device  # the student trains where the teacher runs (CPU or CUDA)
    student = build_model(student_cfg)
    student.init_output(float(targets.mean()))
    student.to(device)
    batch, targets = batch.to(device), targets.to(device)
    optim = torch.optim.Adam(student.parameters(), lr=lr)
    steps = math.ceil(len(batch) / batch_size) * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optim, linear_warmup_decay(steps, 0.1))
    for _ in tqdm(range(epochs), desc="distill", disable=not progress, leave=False):
        student.train()
        perm = torch.randperm(len(batch), generator=gen).to(device)
        for i in range(0, len(batch), batch_size):
            idx = perm[i : i + batch_size]
            pred = student(batch.select(idx))
            # The ranking term matters most: a search only needs the teacher's ordering.
            loss = relative_squared_error(pred, targets[idx]) + lambda_sr * all_pairs_ranking_loss(pred, targets[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    student.eval()
    meta = {
        **{k: v for k, v in teacher.meta.items() if k not in ("metrics", "model")},
        "model": student_cfg.model_dump(),
        "distilled_from": teacher.meta.get("name", "teacher"),
        "distillation": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "lambda_sr": lambda_sr,
                         "seed": seed, "num_graphs": len(graphs)},
    }
    report = {"teacher_seconds": teacher_seconds, "seconds": time.perf_counter() - start}
    return Predictor(meta, [student], device=str(device)), report
