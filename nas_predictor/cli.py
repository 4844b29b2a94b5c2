"""The ``nas-predictor`` command line: the parser, shared argparse types and ``main``. The commands' bodies live in
``nas_predictor.commands`` and are imported only when their command runs, so ``--help`` and ``list`` start without
torch; the outer packages add theirs (``search``, ``dataset``) through the ``nas_predictor.commands`` entry points."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from typing import Callable, Sequence

from nas_predictor.errors import NasPredictorError
from nas_predictor.io import dumps_strict
from nas_predictor.latency_estimator import DEFAULT_CLI_PREDICTOR as DEFAULT_LATENCY_PREDICTOR


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``nas-predictor CMD: error: ...``, exit 2) like every other
    error of the command line; ``--help`` still shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N: the I-th of N shards."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= I < N")
    return index, count


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


DEVICES = ("auto", "cpu", "cuda")
DEVICE_HELP = "where the predictor runs: auto (default; CUDA when torch sees a GPU, else the CPU), cpu or cuda"


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = "auto", help: str = DEVICE_HELP) -> None:
    """``--device``, with the same choices, default (auto) and words in every command."""
    parser.add_argument("--device", default=default, choices=DEVICES, help=help)


def _add_common(parser: argparse.ArgumentParser, device_default: str | None = "auto",
                device_help: str = DEVICE_HELP) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="benchmark data folder (default: $NAS_PREDICTOR_DATA or ../shared/data)")
    add_device_argument(parser, device_default, device_help)


def _add_scoring_arguments(parser: argparse.ArgumentParser, checkpoint_help: str, json_help: str, unit: str) -> None:
    """The predictor and output options of the commands that score architectures (evaluate, predict)."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_NAME", help=checkpoint_help)
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--no-equivalence-average", action="store_true",
                        help=f"score each {unit} alone, even if the predictor averages over equivalent {unit}s")


def _command(module: str) -> Callable[[argparse.Namespace], int]:
    """A command body imported only when it runs (``nas_predictor.commands.<module>.run``)."""
    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(f"nas_predictor.commands.{module}").run(args)

    run.__name__ = f"run_{module}"
    return run


def _add_predictor_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a predictor from a YAML config")
    train.add_argument("config", help="YAML experiment config (see configs/)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. train.epochs=10")
    train.add_argument("--out", default=None, help="output folder (default runs/NAME-TIMESTAMP)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    # None keeps the config's train.device, itself auto unless the config says otherwise
    _add_common(train, None, "where to train: auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda "
                             "(default: the config's train.device, auto unless set)")
    train.set_defaults(func=_command("train"))

    ev = sub.add_parser("evaluate", help="score every benchmark architecture and report Kendall tau etc.")
    _add_scoring_arguments(ev, "a shipped predictor's name (see `list`) or a predictor.pt file",
                           "print one JSON object", "cell")
    ev.add_argument("--target", default=None,
                    help="table column to compare with (default: the training config's eval target)")
    ev.add_argument("--batch-size", type=positive_int, default=None,
                    help="cells per forward pass (default: 128 on CPU, 4096 on CUDA)")
    ev.add_argument("--table", default=None, help="official NAS-Bench-201 .pth file to take labels from")
    _add_common(ev)
    ev.set_defaults(func=_command("evaluate"))

    pr = sub.add_parser("predict", help="predict for given architectures")
    _add_scoring_arguments(pr, "a shipped accuracy predictor's name (see `list`) or a predictor.pt file",
                           "print one JSON list of {arch, prediction}", "architecture")
    pr.add_argument("--arch", action="append", help="architecture string (repeatable)")
    pr.add_argument("--archs-file", default=None, help="file with one architecture per line")
    add_device_argument(pr)
    pr.set_defaults(func=_command("predict"))

    di = sub.add_parser("distill", help="distill a predictor into a compact one on every architecture of its space")
    di.add_argument("teacher", metavar="CHECKPOINT_OR_NAME",
                    help="the predictor to distill: a shipped name (see `list`) or a predictor.pt file")
    di.add_argument("--out", required=True, help="output folder for predictor.pt and results.json")
    di.add_argument("--hidden", type=positive_int, default=128, help="width of the student (default 128)")
    di.add_argument("--blocks", type=positive_int, default=3, help="blocks of the student (default 3)")
    di.add_argument("--epochs", type=positive_int, default=30, help="training epochs (default 30)")
    di.add_argument("--batch-size", type=_number(int, 2), default=256, help="architectures per step (default 256)")
    di.add_argument("--lr", type=positive_float, default=2e-3, help="learning rate (default 0.002)")
    di.add_argument("--lambda-sr", type=non_negative_float, default=30.0, help="weight of the all-pairs ranking loss")
    di.add_argument("--seed", type=non_negative_int, default=0, help="seed of the subset and the training (default 0)")
    di.add_argument("--max-archs", type=non_negative_int, default=0,
                    help="distill on a random subset of this size (0 = all)")
    di.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_common(di)
    di.set_defaults(func=_command("distill"))


def _add_latency_commands(sub: argparse._SubParsersAction) -> None:
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
    la.add_argument("models", nargs="+", metavar="MODEL.onnx", help="ONNX files to predict")
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
    add_device_argument(la)
    la.set_defaults(func=_command("latency"))

    me = sub.add_parser("measure", help="measure the real latency of ONNX models (onnxruntime, pinned, "
                                        "reference-gated on the CPU)")
    me.add_argument("models", nargs="+", metavar="MODEL.onnx", help="ONNX files to time")
    me.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "tensorrt", "torch-cuda"],
                    help="onnxruntime CPU (default), CUDA or TensorRT; torch-cuda is for Python callers")
    me.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the file's own, or 1)")
    me.add_argument("--core", type=_number(int, -1), default=None,
                    help="CPU core to pin the measurement to (default: the last allowed core; -1: no pinning)")
    me.add_argument("--json", action="store_true", help="print one JSON object with every record")
    me.set_defaults(func=_command("measure"))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nas-predictor")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predictor_commands(sub)
    _add_latency_commands(sub)
    zc = sub.add_parser("proxies", help="zero-cost proxies (synflow, jacov, naswot, snip, grad_norm, params, "
                                        "flops) of a space's networks at initialisation, cached and resumable")
    zc.add_argument("--space", default="nasbench201", help="a search space that builds networks (default nasbench201)")
    zc.add_argument("--limit", type=positive_int, default=None, help="only the space's first N networks (default all)")
    zc.add_argument("--seed", type=_number(int, 0), default=0, help="network initialisation and batch seed (default 0)")
    zc.add_argument("--batch-size", type=positive_int, default=64, help="images per proxy batch (default 64)")
    zc.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    zc.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                    help="only every N-th network from the I-th (0-based), so N processes fill one cache side "
                         "by side, e.g. 0/2 and 1/2 (default 0/1: all)")
    zc.add_argument("--cache", default=None, help="cache folder (default $NAS_PREDICTOR_CACHE or ~/.cache/nas_predictor)")
    zc.add_argument("--quiet", action="store_true", help="no progress bar")
    zc.add_argument("--json", action="store_true", help="print one JSON object: counts, cache file, medians")
    zc.set_defaults(func=_command("proxies"))
    ls = sub.add_parser("list", help="list shipped pretrained predictors")
    ls.add_argument("pattern", nargs="?", default="*",
                    help="only names matching this shell pattern, e.g. 'latency-*' (default: all)")
    ls.add_argument("--json", action="store_true",
                    help="print one JSON list of cards: name, task, description, setting(s), sha256, test metrics")
    ls.set_defaults(func=_command("listing"))
    # Commands of the outer packages (``search`` from strategies, ``dataset`` from search_spaces) register
    # themselves through this entry-point group, so this module never imports them (imports point inwards).
    from importlib.metadata import entry_points

    for ep in entry_points(group="nas_predictor.commands"):
        ep.load()(sub)
    # named from what is registered, so a command added by a plug-in is in the top help too
    parser.description = ("Predict the accuracy and latency of neural networks, and search under a latency "
                          f"bound. Commands: {', '.join(sub.choices)}; `nas-predictor COMMAND --help` for each.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (2 for any error, printed as one line)."""
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
