"""``nas-predictor measure``: the real latency of ONNX files (onnxruntime; exit 2 when any failed)."""

from __future__ import annotations

import argparse
import sys

from nas_predictor.cli import print_json
from nas_predictor.errors import NasPredictorError


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nas_predictor.latency import Measurer

    if args.provider == "torch-cuda":
        raise NasPredictorError(
            "--provider torch-cuda times a PyTorch module, and an ONNX file carries none: call "
            "nas_predictor.latency.measure_torch_cuda(module, input_shape, onnx_source=FILE) from Python "
            "(the dataset builder does), or measure the file here with --provider cpu, cuda or tensorrt")
    measurer = Measurer(args.provider, core=args.core)  # an uninstalled provider fails before any file is read
    labels, errors = {}, {}
    with tqdm(total=len(args.models), unit="model", disable=args.json or len(args.models) < 2,
              file=sys.stderr) as bar:
        for outcome in measurer.measure_many(args.models, batch=args.batch):
            if outcome.error is not None:  # one bad file does not hide the others' results
                errors[outcome.index] = {"model": args.models[outcome.index], "error": str(outcome.error)}
            else:
                labels[outcome.index] = outcome.label
            bar.update()
    rows = [labels[i].to_dict() for i in sorted(labels)]
    failed = [errors[i] for i in sorted(errors)]
    if args.json:
        print_json({"provider": args.provider, "results": rows, "errors": failed})
    else:
        for i in sorted(labels):
            print(labels[i].summary())
        for err in failed:
            print(f"nas-predictor: error: {err['error']}", file=sys.stderr)
    return 2 if failed else 0
