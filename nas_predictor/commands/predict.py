"""``nas-predictor predict``: a predictor's value for given architecture strings."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas_predictor.cli import print_json
from nas_predictor.errors import NasPredictorError


def _archs(args: argparse.Namespace) -> list[str]:
    archs = list(args.arch or [])
    if args.archs_file:
        try:
            text = Path(args.archs_file).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise NasPredictorError(f"--archs-file {args.archs_file!r}: cannot read it "
                                    f"({getattr(err, 'strerror', None) or type(err).__name__})") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise NasPredictorError(f"--archs-file {args.archs_file!r} holds no architecture (one per line)")
        archs += lines
    if not archs:
        raise NasPredictorError("give at least one --arch ARCH (or --archs-file FILE)")
    return archs


def run(args: argparse.Namespace) -> int:
    from nas_predictor.predictor import load_predictor

    predictor = load_predictor(args.checkpoint, args.device)
    if predictor.meta.get("task") == "latency":  # it has no space: arch strings mean nothing to it
        raise NasPredictorError(
            f"{args.checkpoint} is a latency predictor of whole networks: it reads ONNX files, not architecture "
            f"strings (use `nas-predictor latency MODEL.onnx --predictor {args.checkpoint}`)")
    archs = _archs(args)
    preds = predictor.predict(archs, average_equivalent=False if args.no_equivalence_average else None)
    if args.json:
        print_json([{"arch": a, "prediction": float(p)} for a, p in zip(archs, preds)])
    else:
        for arch, pred in zip(archs, preds):
            print(f"{pred:10.4f}  {arch}")
    return 0
