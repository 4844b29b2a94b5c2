"""``nas-predictor distill``: a compact student taught by a predictor on every architecture of its space."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas_predictor.cli import print_json


def run(args: argparse.Namespace) -> int:
    from nas_predictor.config import validate_model
    from nas_predictor.distill import distill
    from nas_predictor.evaluate import evaluate_on_benchmark
    from nas_predictor.model import ModelConfig
    from nas_predictor.predictor import atomic_write_json, load_predictor
    from nas_predictor.spaces import get_space

    teacher = load_predictor(args.teacher, args.device)
    space = get_space(teacher.space)
    archs = list(space)  # every architecture: no labels are used
    if args.max_archs and args.max_archs < len(archs):
        import numpy as np

        pick = np.random.default_rng(args.seed).choice(len(archs), args.max_archs, replace=False)
        archs = [archs[i] for i in sorted(pick)]
    graphs = [space.to_graph(a) for a in archs]
    student_cfg = validate_model(ModelConfig, {**teacher.meta["model"], "hidden": args.hidden,
                                               "num_blocks": args.blocks}, "distill --hidden/--blocks")
    outputs = teacher.predict_graphs_raw(graphs)
    if teacher.average_equivalent:  # teach the student the teacher's class means: it learns the invariance
        from nas_predictor.equivalence import class_mean

        outputs = class_mean(space, archs, lambda todo: teacher.predict_graphs_raw([space.to_graph(a) for a in todo]),
                             known=dict(zip(archs, outputs)))
    student, report = distill(teacher, graphs, student_cfg, args.epochs, args.batch_size, args.lr, args.lambda_sr,
                              seed=args.seed, progress=not args.quiet, teacher_outputs=outputs)
    out = Path(args.out)
    student.save(out / "predictor.pt")
    report["student"] = evaluate_on_benchmark(student, args.data_dir)
    report["teacher"] = evaluate_on_benchmark(teacher, args.data_dir)
    atomic_write_json(report, out / "results.json")
    print_json({"student_tau": report["student"]["kendall_tau"], "teacher_tau": report["teacher"]["kendall_tau"],
                "student_seconds": report["student"]["seconds"], "checkpoint": str(out / "predictor.pt")}, indent=2)
    return 0
