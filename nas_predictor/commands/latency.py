"""``nas-predictor latency``: predicted latency of ONNX files, each with its in-distribution check; with
--max-ms a deployment gate. Exit: 0 all pass, 1 some over budget, 2 an error, 3 a verdict rests on an
unsure prediction."""

from __future__ import annotations

import argparse
import sys

from nas_predictor.cli import print_json
from nas_predictor.errors import NasPredictorError


def run(args: argparse.Namespace) -> int:
    from nas_predictor.latency_domain import graph_depth
    from nas_predictor.latency_estimator import LatencyEstimator
    from nas_predictor.onnx import onnx_to_graph

    estimator = LatencyEstimator.create(args.predictor, args.setting, args.batch, args.calibrate, args.calibrate_fit,
                                        device=args.device)
    setting, batch, calibration = estimator.setting, estimator.batch_size, estimator.calibration
    rows, errors = [], []
    for path in args.models:
        try:
            graph = onnx_to_graph(path, batch_size=batch)
            [record] = estimator.estimate([graph], [path])
        except NasPredictorError as err:  # one bad file does not hide the others' results
            errors.append({"model": path, "error": str(err)})
            continue
        row = {"model": path, "predicted_ms": record.latency_ms, "model_ms": record.model_ms,
               "fallback_ms": record.fallback_ms, "source": record.source,
               "in_distribution": record.in_distribution, "reasons": list(record.reasons), "batch_size": batch,
               "setting": setting, "nodes": graph.num_nodes, "depth": graph_depth(graph),
               "gflops": graph.scalars["flops"] / 1e9}
        if calibration:
            row["unscaled_ms"] = record.unscaled_ms
        if args.max_ms is not None:
            row["max_ms"] = args.max_ms
            row["pass"] = record.latency_ms <= args.max_ms
        rows.append(row)
    if args.json:
        out = {"predictor": str(args.predictor), "results": rows, "errors": errors}
        if calibration:
            out["calibration"] = calibration
        print_json(out)
    else:
        _print_rows(rows, errors, estimator, args.calibrate)
    if errors:
        return 2
    if args.max_ms is not None and not args.allow_unsure and any(r["in_distribution"] is not True for r in rows):
        unsure = [r["model"] for r in rows if r["in_distribution"] is not True]
        print(f"nas-predictor: {len(unsure)} verdict(s) rest on predictions outside the predictor's training "
              f"domain ({', '.join(unsure[:3])}{' ...' if len(unsure) > 3 else ''}): exit 3 "
              "(--allow-unsure accepts them)", file=sys.stderr)
        return 3
    return 1 if any(not r.get("pass", True) for r in rows) else 0


def _print_rows(rows: list[dict], errors: list[dict], estimator, timings: str | None) -> None:
    latency_map, calibration = estimator.latency_map, estimator.calibration
    if calibration:
        how = (f"rescaled {latency_map.describe()}: one factor" if latency_map.exponent == 1.0
               else f"mapped to {latency_map.describe()}: a power law")
        print(f"{how} fitted to {calibration['num_measured']} measured models in {timings} "
              f"(setting {estimator.setting})")
    for row in rows:
        verdict = f"  {'PASS' if row['pass'] else 'FAIL'} (budget {row['max_ms']:g} ms)" if "pass" in row else ""
        unsure = ""
        if row["in_distribution"] is not True:
            used = (f"FLOPs/memory fallback; the network said {row['model_ms']:.3f} ms"
                    if row["source"] == "fallback" else "unchecked")
            unsure = f"  UNSURE: {row['reasons'][0]} ({used})"
        print(f"{row['predicted_ms']:10.3f} ms  {row['model']}  [{estimator.setting}, batch {estimator.batch_size}]"
              f"{verdict}{unsure}")
    for err in errors:
        print(f"nas-predictor: error: {err['error']}", file=sys.stderr)
