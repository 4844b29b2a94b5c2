"""Command line: nas-predictor train | evaluate | predict | latency | measure | distill | list | search."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from nas_predictor.errors import NasPredictorError

# what `nas-predictor latency` uses without --predictor: the shipped CPU (onnxruntime, one thread) predictor
DEFAULT_LATENCY_PREDICTOR = "latency-cpu-ort"
from nas_predictor.jsonl import dumps_strict


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``nas-predictor CMD: error: ...``, exit 2) like every other
    error of the command line; ``--help`` still shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, minimum: float | None = None, strict: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number of ``kind``, at least (or, ``strict``, above) ``minimum``."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'above' if strict else 'at least'} {minimum:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


#: argparse types shared by every command (strategies' ``search`` too)
positive_int = _number(int, 1)
non_negative_int = _number(int, 0)
positive_float = _number(float, 0.0, strict=True)
non_negative_float = _number(float, 0.0)
finite_float = _number(float)


def print_json(obj: object, **kwargs: object) -> None:
    """One strict JSON document on stdout (a NaN is an error naming its key, never printed)."""
    print(dumps_strict(obj, "standard output", **kwargs))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="benchmark data folder (default: $NAS_PREDICTOR_DATA or ../shared/data)")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda", "auto"],
                        help="where to run the model (default: auto = CUDA when torch sees a GPU)")


def _cmd_train(args: argparse.Namespace) -> int:
    from nas_predictor.config import LatencyExperimentConfig, load_config
    from nas_predictor.train import run_experiment

    cfg = load_config(args.config, args.set or [])
    if args.device is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": args.device})})
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if isinstance(cfg, LatencyExperimentConfig):
        from nas_predictor.latency_experiment import run_latency_experiment

        results = run_latency_experiment(cfg, out, args.data_dir, progress=not args.quiet)
        results.pop("predictor")
        print_json({k: results[k] for k in ("settings", "split", "num_train", "num_test", "test",
                                            "train_seconds", "checkpoint")}, indent=2)
        return 0
    results = run_experiment(cfg, out, args.data_dir, progress=not args.quiet)
    results.pop("predictor")
    summary = {k: results[k] for k in ("kendall_tau", "kendall_tau_plain", "kendall_tau_unseen", "mape", "num_archs",
                                       "train_seconds", "checkpoint")}
    print_json(summary, indent=2)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from nas_predictor.evaluate import evaluate_on_benchmark
    from nas_predictor.predictor import load_predictor

    start = time.perf_counter()
    predictor = load_predictor(args.checkpoint, args.device or "auto")
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
        print(f"Acc(1/5/10%)  {100 * result['acc_1pct']:.1f} / {100 * result['acc_5pct']:.1f} / {100 * result['acc_10pct']:.1f} %")
        print(f"time          {result['seconds']:.2f} s to score all ({result['archs_per_second']:.0f} archs/s)")
        print(f"top predicted {result['best_predicted_arch']} (true {result['best_predicted_arch_true_accuracy']:.2f})")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from nas_predictor.predictor import load_predictor

    predictor = load_predictor(args.checkpoint, args.device)
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
    preds = predictor.predict(archs, average_equivalent=False if args.no_equivalence_average else None)
    if args.json:
        print_json([{"arch": a, "prediction": float(p)} for a, p in zip(archs, preds)])
    else:
        for arch, pred in zip(archs, preds):
            print(f"{pred:10.4f}  {arch}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from nas_predictor.config import validate_model
    from nas_predictor.distill import distill
    from nas_predictor.evaluate import evaluate_on_benchmark
    from nas_predictor.model import ModelConfig
    from nas_predictor.predictor import atomic_write_json, load_predictor
    from nas_predictor.spaces import get_space

    teacher = load_predictor(args.teacher, args.device or "auto")
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


def _cmd_latency(args: argparse.Namespace) -> int:
    """Predicted latency of ONNX files, each with its in-distribution check; with --max-ms a deployment
    gate. Exit: 0 all pass, 1 some over budget, 2 an error, 3 a verdict rests on an unsure prediction."""
    from nas_predictor.data.latency_measurements import NEAREST, fit_map_to_measurements
    from nas_predictor.data.latency_tables import parse_setting
    from nas_predictor.latency_domain import assess_latency, graph_depth
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.predictor import load_predictor

    predictor = load_predictor(args.predictor, args.device or "auto")
    if predictor.meta.get("task") != "latency":
        raise NasPredictorError(f"{args.predictor} is not a latency predictor (it predicts {predictor.meta.get('task')!r})")
    setting = args.setting or predictor.default_setting
    if setting == NEAREST:
        if not args.calibrate:
            raise NasPredictorError("--setting nearest picks the predictor setting closest to your device from your "
                                    "timings: give --calibrate TIMINGS")
    else:
        predictor.predict_latency([], setting)  # an unknown setting fails before any file is read
    # fitted on the numbers this command reports (the fallback outside the training domain), as it maps those
    latency_map, calibration = (fit_map_to_measurements(args.calibrate, predictor, setting, args.batch,
                                                        args.calibrate_fit, reported=True)
                                if args.calibrate else (None, None))
    if calibration:
        setting = calibration["setting"]
    batch = args.batch or parse_setting(setting)[1]  # default: the batch the setting's latencies were measured at
    mapped = (lambda ms: float(latency_map.apply(ms))) if latency_map else float  # noqa: E731
    rows, errors = [], []
    for path in args.models:
        try:
            graph = onnx_to_graph(path, batch_size=batch)
            [estimate] = assess_latency(predictor, [graph], setting, [path])
            values = {"predicted_ms": mapped(estimate.predicted_ms), "model_ms": mapped(estimate.model_ms),
                      "fallback_ms": None if estimate.fallback_ms is None else mapped(estimate.fallback_ms)}
            broken = [k for k, v in values.items() if v is not None and not math.isfinite(v)]
            if broken:  # a power-law map can overflow: never a number to print
                raise NasPredictorError(f"{path}: the calibrated {broken[0]} is not finite ({values[broken[0]]})")
        except NasPredictorError as err:  # one bad file does not hide the others' results
            errors.append({"model": path, "error": str(err)})
            continue
        row = {"model": path, **values, "source": estimate.source, "in_distribution": estimate.in_distribution,
               "reasons": estimate.reasons, "batch_size": batch, "setting": setting, "nodes": graph.num_nodes,
               "depth": graph_depth(graph), "gflops": graph.scalars["flops"] / 1e9}
        if calibration:
            row["unscaled_ms"] = estimate.predicted_ms
        if args.max_ms is not None:
            row["max_ms"] = args.max_ms
            row["pass"] = values["predicted_ms"] <= args.max_ms
        rows.append(row)
    if args.json:
        out = {"predictor": str(args.predictor), "results": rows, "errors": errors}
        if calibration:
            out["calibration"] = calibration
        print_json(out)
    else:
        if latency_map:
            how = (f"rescaled {latency_map.describe()}: one factor" if latency_map.exponent == 1.0
                   else f"mapped to {latency_map.describe()}: a power law")
            print(f"{how} fitted to {calibration['num_measured']} measured models in {args.calibrate} "
                  f"(setting {setting})")
        for row in rows:
            verdict = f"  {'PASS' if row['pass'] else 'FAIL'} (budget {row['max_ms']:g} ms)" if "pass" in row else ""
            unsure = ""
            if row["in_distribution"] is not True:
                used = (f"FLOPs/memory fallback; the network said {row['model_ms']:.3f} ms"
                        if row["source"] == "fallback" else "unchecked")
                unsure = f"  UNSURE: {row['reasons'][0]} ({used})"
            print(f"{row['predicted_ms']:10.3f} ms  {row['model']}  [{setting}, batch {batch}]{verdict}{unsure}")
        for err in errors:
            print(f"nas-predictor: error: {err['error']}", file=sys.stderr)
    if errors:
        return 2
    if args.max_ms is not None and not args.allow_unsure and any(r["in_distribution"] is not True for r in rows):
        unsure = [r["model"] for r in rows if r["in_distribution"] is not True]
        print(f"nas-predictor: {len(unsure)} verdict(s) rest on predictions outside the predictor's training "
              f"domain ({', '.join(unsure[:3])}{' ...' if len(unsure) > 3 else ''}): exit 3 "
              "(--allow-unsure accepts them)", file=sys.stderr)
        return 3
    return 1 if any(not r.get("pass", True) for r in rows) else 0


def _cmd_measure(args: argparse.Namespace) -> int:
    """Measured latency of ONNX files (onnxruntime); exit 2 when any file could not be measured."""
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


def _cmd_list(args: argparse.Namespace) -> int:
    from nas_predictor.predictor import list_pretrained, pretrained_info

    for name in list_pretrained():
        info = pretrained_info(name)
        print(f"{name:24s} {info.get('description', '')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nas-predictor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a predictor from a YAML config")
    train.add_argument("config", help="YAML experiment config (see configs/)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=10")
    train.add_argument("--out", default=None, help="output folder (default runs/NAME-TIMESTAMP)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_common(train)
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="score every benchmark architecture and report Kendall tau etc.")
    ev.add_argument("checkpoint", metavar="CHECKPOINT_OR_NAME")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--target", default=None, help="table column to compare with (default: the training config's eval target)")
    ev.add_argument("--batch-size", type=positive_int, default=None,
                    help="cells per forward pass (default: 128 on CPU, 4096 on CUDA)")
    ev.add_argument("--table", default=None, help="official NAS-Bench-201 .pth file to take labels from")
    ev.add_argument("--no-equivalence-average", action="store_true",
                    help="score each cell alone, even if the predictor averages over equivalent cells")
    _add_common(ev)
    ev.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="predict for given architectures")
    pr.add_argument("checkpoint", metavar="CHECKPOINT_OR_NAME")
    pr.add_argument("--arch", action="append", help="architecture string (repeatable)")
    pr.add_argument("--archs-file", default=None, help="file with one architecture per line")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--no-equivalence-average", action="store_true",
                    help="score each architecture alone, even if the predictor averages over equivalent ones")
    pr.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    pr.set_defaults(func=_cmd_predict)

    di = sub.add_parser("distill", help="distill a predictor into a compact one on every architecture of its space")
    di.add_argument("teacher", metavar="CHECKPOINT_OR_NAME")
    di.add_argument("--out", required=True, help="output folder for predictor.pt and results.json")
    di.add_argument("--hidden", type=positive_int, default=128)
    di.add_argument("--blocks", type=positive_int, default=3)
    di.add_argument("--epochs", type=positive_int, default=30)
    di.add_argument("--batch-size", type=_number(int, 2), default=256)
    di.add_argument("--lr", type=positive_float, default=2e-3)
    di.add_argument("--lambda-sr", type=non_negative_float, default=30.0, help="weight of the all-pairs ranking loss")
    di.add_argument("--seed", type=non_negative_int, default=0)
    di.add_argument("--max-archs", type=non_negative_int, default=0,
                    help="distill on a random subset of this size (0 = all)")
    di.add_argument("--quiet", action="store_true")
    _add_common(di)
    di.set_defaults(func=_cmd_distill)

    la = sub.add_parser(
        "latency", help="predict the latency of ONNX models; with --max-ms, a PASS/FAIL gate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predicted latency of ONNX models, each checked against what the predictor was trained on "
                    "(op types, nodes, depth, FLOPs, params, memory access, batch, ensemble agreement). A network "
                    "outside that domain is marked UNSURE and reported by the FLOPs/memory fallback line fitted "
                    "on the predictor's training labels; --json gives in_distribution, reasons, model_ms and "
                    "fallback_ms for every model.",
        epilog="exit status:\n"
               "  0  every model predicted (and, with --max-ms, within budget on checked predictions)\n"
               "  1  with --max-ms: some model over budget\n"
               "  2  an error (bad file, setting, calibration, or a non-finite prediction); results of the\n"
               "     other models are still printed\n"
               "  3  with --max-ms: a PASS/FAIL verdict rests on a prediction outside the predictor's training\n"
               "     domain, or on a predictor without a domain summary (--allow-unsure: judge it anyway,\n"
               "     exit 0/1)")
    la.add_argument("models", nargs="+", metavar="MODEL.onnx")
    la.add_argument("--predictor", default=DEFAULT_LATENCY_PREDICTOR, metavar="NAME_OR_PATH",
                    help=f"latency predictor (see `list`; default {DEFAULT_LATENCY_PREDICTOR}: onnxruntime on one CPU "
                         "thread, batch 1, measured on the machine its metadata names; --calibrate adapts it to yours)")
    la.add_argument("--setting", default=None,
                    help="device setting of a multi-device predictor (default: its first; see `list`); with "
                         "--calibrate, 'nearest' picks the setting whose latencies fit your timings best")
    la.add_argument("--batch", type=positive_int, default=None,
                    help="batch size (default: the predictor's measured batch)")
    la.add_argument("--max-ms", type=positive_float, default=None,
                    help="latency budget: exit 1 when any model exceeds it")
    la.add_argument("--allow-unsure", action="store_true",
                    help="with --max-ms: judge predictions outside the training domain too (no exit 3)")
    la.add_argument("--json", action="store_true", help="print one JSON object")
    la.add_argument("--calibrate", default=None, metavar="MEASURED",
                    help="rescale the predictions by your own timings of a few models: the JSON of "
                         "`nas-predictor measure --json`, or a CSV of model,ms[,batch]; for a device or a "
                         "network family the predictor never saw (5-10 models are enough to fix its scale)")
    la.add_argument("--calibrate-fit", default="auto", choices=["auto", "scale", "power"],
                    help="scale: one factor; power: a * predicted^b with b held to 0.5-1.5, for a device of "
                         "another kind (a phone, a CPU, a large batch); auto (default): the power law only "
                         "from 4 timings, with b in 0.5-1.5 and a median leave-one-out error at least 10 %% "
                         "below one factor's, else one factor")
    la.add_argument("--device", default=None, choices=["cpu", "cuda", "auto"])
    la.set_defaults(func=_cmd_latency)

    me = sub.add_parser("measure", help="measure the real latency of ONNX models (onnxruntime, pinned, "
                                        "reference-gated on the CPU)")
    me.add_argument("models", nargs="+", metavar="MODEL.onnx")
    me.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "tensorrt", "torch-cuda"],
                    help="onnxruntime CPU (default), CUDA or TensorRT; torch-cuda is for Python callers")
    me.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the file's own, or 1)")
    me.add_argument("--core", type=_number(int, -1), default=None,
                    help="CPU core to pin the measurement to (default: the last allowed core; -1: no pinning)")
    me.add_argument("--json", action="store_true", help="print one JSON object with every record")
    me.set_defaults(func=_cmd_measure)

    ls = sub.add_parser("list", help="list shipped pretrained predictors")
    ls.set_defaults(func=_cmd_list)
    # Commands of the outer packages (``search`` from strategies) register themselves through this
    # entry-point group, so this module never imports them (imports point inwards).
    from importlib.metadata import entry_points

    for ep in entry_points(group="nas_predictor.commands"):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NasPredictorError as err:
        print(f"nas-predictor: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas-predictor: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nas-predictor ... | head`: the reader left early; exit as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
