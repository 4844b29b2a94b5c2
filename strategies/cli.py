"""``nas-predictor search``: registered into the nas-predictor command line through the
``nas_predictor.commands`` entry point, so nas_predictor itself never imports strategies. Registering
imports nothing heavy (``--help`` stays fast); the search's modules are imported when it runs."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from nas_predictor.cli import (
    add_device_argument,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
)
from nas_predictor.latency_estimator import DEFAULT_SEARCH_PREDICTOR
from strategies.names import LOCK_NAME, MEASURED_SETTING, SPACE_ALIASES, STRATEGIES


class _DeprecatedFlag(argparse.Action):
    """An old flag, hidden from --help, that still works and says on stderr what replaced it."""

    def __init__(self, option_strings: list[str], dest: str, replaced_by: str, **kwargs) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.replaced_by = replaced_by

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.replaced_by}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def register(sub: argparse._SubParsersAction) -> None:
    se = sub.add_parser("search", help="predictor-guided architecture search under a latency budget")
    se.add_argument("config", nargs="?", default=None, help="YAML search config (see configs/search_*.yaml)")
    se.add_argument("--space", choices=sorted(SPACE_ALIASES), default=None, help="search space (default nb201)")
    se.add_argument("--strategy", choices=STRATEGIES, default=None, help="default: predictor")
    se.add_argument("--guided", action="store_true", default=None,
                    help="evolution / tpe: screen candidates with the predictor")
    se.add_argument("--budget", type=positive_int, default=None, help="evaluations (default 100)")
    se.add_argument("--max-latency-ms", type=positive_float, default=None, help="latency bound (ms) on --setting")
    se.add_argument("--setting", default=None,
                    help="device setting of the bound, e.g. titan_rtx_1, 2080ti_1, gold_6226, pixel3 (as "
                         "`nas-predictor latency --setting`; config key latency_setting)")
    se.add_argument("--latency-device", dest="setting", action=_DeprecatedFlag, replaced_by="--setting")
    se.add_argument("--latency-source", choices=["auto", "table", "predictor", "measured"], default=None,
                    help="measured HELP table (NB201 data), a latency predictor (default: the table when present), "
                         f"or measured: each candidate timed on this machine (onnxruntime, one CPU thread, batch 1: "
                         f"setting {MEASURED_SETTING}; about a second each, kept in the cache folder)")
    se.add_argument("--latency-predictor", default=None,
                    help=f"latency predictor name or path (default {DEFAULT_SEARCH_PREDICTOR})")
    se.add_argument("--latency-calibrate", default=None, metavar="TIMINGS",
                    help="rescale the latency predictor to a few networks timed on your device (the JSON of "
                         "`nas-predictor measure --json`, or a CSV of model,ms[,batch])")
    se.add_argument("--latency-calibrate-fit", default=None, choices=["auto", "scale", "power"],
                    help="how --latency-calibrate maps the predictor: scale (one factor), power (a * predicted^b) "
                         "or auto (default; as `nas-predictor latency --calibrate-fit`)")
    se.add_argument("--oracle", choices=["auto", "table", "predictor"], default=None,
                    help="real benchmark accuracies (table) or the shipped predictor's predictions")
    se.add_argument("--dataset", choices=["cifar10", "cifar100", "ImageNet16-120"], default=None,
                    help="NB201 dataset whose accuracy the table oracle reads (default cifar10)")
    se.add_argument("--table-file", default=None,
                    help="official benchmark file for the table oracle (NB201 .pth, NB101 nasbench_only108.tfrecord)")
    se.add_argument("--predictor", default=None, help="accuracy predictor name or path (default nb201-accuracy)")
    se.add_argument("--surrogate", choices=["online", "pretrained"], default=None,
                    help="guide with a predictor refit on this search's evaluations, or the shipped one")
    se.add_argument("--seed", type=non_negative_int, default=None, help="seed of the search (default 0)")
    se.add_argument("--target", type=finite_float, default=None, help="stop once an evaluation reaches this value")
    se.add_argument("--top", type=positive_int, default=None, help="architectures to print (default 10)")
    se.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. strategy_params.top_k=3")
    se.add_argument("--out", default=None, help="output folder (default runs/search-STRATEGY-TIMESTAMP); "
                                                "rerunning with the same folder resumes")
    se.add_argument("--storage", default=None, metavar="URL",
                    help="work on a search shared through an Optuna storage: postgresql://..., mysql://..., "
                         "sqlite:///FILE.db, or a journal file path ending in .log (several processes on one machine); "
                         "start any number of such processes; --budget is the study's total (needs --study)")
    se.add_argument("--study", default=None, metavar="NAME", help="the shared study's name (with --storage)")
    se.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    se.add_argument("--quiet", action="store_true", help="no progress bar")
    se.add_argument("--data-dir", default=None,
                    help="benchmark data folder (default: $NAS_PREDICTOR_DATA or ../shared/data); data you name "
                         "is used or the search fails saying why")
    add_device_argument(se, help="where the predictors run: auto (default; CUDA when torch sees a GPU, else the "
                                 "CPU, where a search uses one thread), cpu or cuda")
    se.set_defaults(func=_cmd_search)


def _config(args: argparse.Namespace):
    """The search config of the file, ``--set`` and the flags; a renamed key says so on stderr."""
    from strategies.config import load_search_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        cfg = load_search_config(args.config, args.set, space=args.space, strategy=args.strategy, guided=args.guided,
                                 budget=args.budget, max_latency_ms=args.max_latency_ms,
                                 latency_setting=args.setting, latency_source=args.latency_source,
                                 latency_predictor=args.latency_predictor, latency_calibrate=args.latency_calibrate,
                                 latency_calibrate_fit=args.latency_calibrate_fit, oracle=args.oracle,
                                 dataset=args.dataset, table_file=args.table_file, predictor=args.predictor,
                                 surrogate=args.surrogate, seed=args.seed, target=args.target, top=args.top)
    for warning in caught:
        print(f"nas-predictor search: warning: {warning.message}", file=sys.stderr)
    return cfg


def _cmd_search(args: argparse.Namespace) -> int:
    import torch

    from nas_predictor.errors import ConfigError
    from nas_predictor.io import file_lock
    from nas_predictor.predictor import resolve_device
    from strategies.assemble import assemble_search
    from strategies.runner import run_search

    cfg = _config(args)
    device = str(resolve_device(args.device))
    if device == "cpu" and torch.get_num_threads() > 1:
        torch.set_num_threads(1)  # refits of a 64-wide model on a few hundred cells: one thread is fastest
    if (args.storage is None) != (args.study is None):
        raise ConfigError("--storage and --study go together: the storage URL and the name of the shared study")
    if args.storage is not None and args.out is not None:
        raise ConfigError("--out is for a search in one process; a shared search (--storage) keeps its trials in "
                          "the study (optuna-dashboard URL shows them)")
    if args.storage is not None:
        return _cmd_worker(args, cfg, device)
    label = cfg.strategy + ("-guided" if cfg.guided else "")
    out = Path(args.out) if args.out else Path("runs") / f"search-{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a folder")
    # taken before anything is loaded, so a second search on this folder fails at once (run_search
    # takes it again for Python callers)
    created = not out.exists()
    try:
        with file_lock(out / LOCK_NAME, f"search folder {out}"):
            setup = assemble_search(cfg, args.data_dir, device, progress=not args.quiet)
            for note in setup.notes:
                print(f"note: {note}")
            summary = run_search(setup.space, setup.strategy, setup.oracle, cfg.budget, seed=cfg.seed, out_dir=out,
                                 constraint=setup.constraint, surrogate=setup.surrogate, progress=not args.quiet,
                                 top=cfg.top, target=cfg.target)
    except BaseException:
        if created:  # a search that failed before writing anything leaves no folder behind
            (out / LOCK_NAME).unlink(missing_ok=True)
            if not any(out.iterdir()):
                out.rmdir()
        raise
    summary["predictions_only"] = setup.predictions_only
    summary["out"] = str(out)
    if args.json:
        print_json({k: v for k, v in summary.items() if k not in ("best_so_far", "evaluated_archs")}, indent=2)
        return 0
    print_summary(summary, setup.predictions_only)
    return 0


def _cmd_worker(args: argparse.Namespace, cfg, device: str) -> int:
    """One worker of a shared search (strategies/study.py)."""
    from strategies.assemble import assemble_search
    from strategies.study import open_storage, run_worker

    open_storage(args.storage)  # an unreachable database fails before the predictors load
    setup = assemble_search(cfg, args.data_dir, device, progress=False)
    for note in setup.notes:
        print(f"note: {note}")
    result = run_worker(setup.space, setup.strategy, setup.oracle, cfg.budget, args.storage, args.study,
                        seed=cfg.seed, constraint=setup.constraint, surrogate=setup.surrogate)
    if args.json:
        print_json(result, indent=2)
        return 0
    best = result["best"]
    print(f"study {result['study']}: {result['completed']} of {cfg.budget} evaluations done, {result['evaluated_here']} "
          f"by this worker ({result['worker']})")
    if best is not None:
        print(f"best: {best['value']:.4f}  {best['arch']}  (trial {best['trial']})")
    return 0


def print_summary(summary: dict, predictions_only: bool) -> None:
    c = summary["constraint"]
    print(f"{summary['strategy']} search on {summary['space']}: {summary['evaluations']} evaluations "
          f"({summary['oracle']}), {summary['wall_seconds']:.1f} s; stop: {summary['stop']}")
    if c:
        print(f"latency bound: {c['max_ms']:g} ms, {c['source']}; {summary['rejected_over_bound']} candidates over "
              "it never reached the oracle")
        if summary.get("latency_unsure"):
            print(f"  {summary['latency_unsure']} checked candidates were judged on the FLOPs/memory fallback "
                  "(outside the latency predictor's training domain) or unchecked")
    if summary["replayed_from_history"]:
        print(f"resumed: {summary['replayed_from_history']} evaluations read back from {summary['out']}/history.jsonl")
    if predictions_only:
        print("These are PREDICTIONS of the shipped predictors, not measured results: no architecture was "
              "trained or timed. Run with the NAS-Bench-201 data (or your own oracle) for real values.")
    key = summary["report_key"]
    value_name = "predicted acc" if predictions_only else "search value"
    header = f"{'rank':>4}  {value_name:>13}"
    if key and not predictions_only:
        header += f"  {key:>13}"
    if c:
        header += f"  {'latency ms':>10}"
    print(header + "  architecture")
    for rank, r in enumerate(summary["top"], 1):
        line = f"{rank:>4}  {r['value']:>13.3f}"
        if key and not predictions_only:  # an oracle may leave the key out of a report: shown as "-"
            line += f"  {r['report'][key]:>13.3f}" if key in r["report"] else f"  {'-':>13}"
        if c:
            line += f"  {r['latency_ms']:>10.3f}"
        print(line + f"  {r['arch']}")
    print(f"history, summary and plots in {summary['out']}")
