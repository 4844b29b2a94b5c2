"""``nas-predictor evaluate``: score every benchmark architecture and report Kendall tau, MAPE, Acc(x %)."""

from __future__ import annotations

import argparse
import time

from nas_predictor.io import dumps_strict


def run(args: argparse.Namespace) -> int:
    from nas_predictor.evaluate import evaluate_on_benchmark
    from nas_predictor.predictor import load_predictor

    start = time.perf_counter()
    predictor = load_predictor(args.checkpoint, args.device)
    result = evaluate_on_benchmark(predictor, args.data_dir, args.target, args.batch_size, args.table,
                                   average_equivalent=False if args.no_equivalence_average else None)
    result["load_seconds"] = time.perf_counter() - start - result["seconds"]
    result["predictor"] = str(args.checkpoint)
    text = dumps_strict(result, "evaluate's result")  # a NaN metric (constant predictions) is an error in both forms
    if args.json:
        print(text)
    else:
        print(f"predictor     {args.checkpoint}")
        print(f"target        {result['target']} ({result['num_archs']} architectures)")
        how = "mean over equivalent cells" if result["average_equivalent"] else "each cell alone"
        print(f"Kendall tau   {result['kendall_tau']:.4f} ({how}; each cell alone: {result['kendall_tau_plain']:.4f})")
        print(f"MAPE          {100 * result['mape']:.2f} %")
        print(f"Acc(1/5/10%)  {100 * result['acc_1pct']:.1f} / {100 * result['acc_5pct']:.1f} / "
              f"{100 * result['acc_10pct']:.1f} %")
        print(f"time          {result['seconds']:.2f} s to score all ({result['archs_per_second']:.0f} archs/s)")
        print(f"top predicted {result['best_predicted_arch']} (true {result['best_predicted_arch_true_accuracy']:.2f})")
    return 0
