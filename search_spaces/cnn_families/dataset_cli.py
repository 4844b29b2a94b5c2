"""``nas-predictor dataset {build,status,retest,export}``: registered through the ``nas_predictor.commands``
entry point (nas_predictor never imports search_spaces)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys

from search_spaces.cnn_families.names import FAMILIES, SPACES
from search_spaces.operator_kinds import KINDS


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="build a latency dataset on this machine: generated networks, or single "
                                        "operators (--ops)")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)

    b = dsub.add_parser("build", help="measure family variants (or, with --ops, single operators) into a folder "
                                      "(append-only, resumable)")
    b.add_argument("--ops", action="store_true",
                   help="build the operator micro-benchmark set instead of networks: single operators and small "
                        "blocks drawn by search_spaces.operators (graphs under onnx/KIND/); --families / --kinds "
                        "then name operator kinds. A folder holds networks or operators, never both")
    b.add_argument("--families", "--kinds", dest="families", default="all", metavar="NAMES",
                   help=f"comma-separated, or 'all'; networks: {', '.join(FAMILIES)}; "
                        f"with --ops, operator kinds: {', '.join(KINDS)}")
    b.add_argument("--per-family", "--per-kind", dest="per_family", type=int, default=300, metavar="N",
                   help="seeds per family or operator kind (default 300)")
    b.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "tensorrt", "torch-cuda"],
                   help="onnxruntime CPU (default; reference-gated protocol), CUDA, TensorRT, or PyTorch CUDA timing "
                        "(torch-cuda: the same networks, or with --ops the same operators, as torch modules; the "
                        "ONNX graphs stay what a predictor trains on)")
    b.add_argument("--space", default=None, choices=SPACES,
                   help="networks only: nnlqp (default): NNLQP's variants (fixed depth and resolution); extended: "
                        "depth and resolution vary too")
    b.add_argument("--batch", type=int, default=1, help="batch size the networks are timed at (default 1)")
    b.add_argument("--first-seed", type=int, default=0,
                   help="first seed of each family or kind (default 0; seeds first-seed.. are drawn in order)")
    b.add_argument("--out", required=True, help="dataset folder; rerunning with it resumes")
    b.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this long (build in chunks)")
    b.add_argument("--retry-failed", action="store_true", help="measure models that failed before again")
    b.add_argument("--relabel", action="store_true",
                   help="measure again, here, the labels the folder holds from another machine (the reference "
                        "model's speed tells) or from the old gated-ratio estimator (record version 1); without "
                        "it a build that would mix them with new labels is refused")
    b.add_argument("--measure-core", type=int, default=None, help="core to measure on (default: the last one)")
    b.add_argument("--export-core", type=int, default=None, help="core to export on (default: another one)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)

    st = dsub.add_parser("status", help="what a dataset folder holds")
    st.add_argument("folder", help="dataset folder")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(func=_cmd_status)

    rt = dsub.add_parser("retest", help="measure a sample again and report test-retest agreement")
    rt.add_argument("folder", help="dataset folder")
    rt.add_argument("--sample", type=int, default=100, help="models to measure again (default 100)")
    rt.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    rt.add_argument("--measure-core", type=int, default=None, help="core to measure on (default: the last one)")
    rt.add_argument("--export-core", type=int, default=None, help="core to export on (default: another one)")
    rt.add_argument("--json", action="store_true", help="print one JSON object")
    rt.add_argument("--quiet", action="store_true", help="no progress bar")
    rt.add_argument("--repair", action="store_true",
                    help="then run `dataset repair`: a retest faster than its label by more than the protocol's "
                         "tolerance becomes the label")
    rt.set_defaults(func=_cmd_retest)

    rp = dsub.add_parser("repair", help="replace labels that their retest shows were slowed (retest faster by more "
                                        "than the protocol's tolerance); the slowed labels stay in the file")
    rp.add_argument("folder", help="dataset folder (with a retest.jsonl from `dataset retest`)")
    rp.add_argument("--tolerance", type=float, default=None,
                    help="ratio a retest must be faster by (default: the protocol's gate tolerance, 1.12)")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.set_defaults(func=_cmd_repair)

    ex = dsub.add_parser("export", help="regenerate the ONNX graphs gt.txt names (onnx/FAMILY/..., onnx/KIND/...)")
    ex.add_argument("folder", help="dataset folder")
    ex.add_argument("--families", "--kinds", dest="families", default="all", metavar="NAMES",
                    help="comma-separated families (operator kinds, in an operators folder), or 'all'")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(func=_cmd_export)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cmd_build(args: argparse.Namespace) -> int:
    from search_spaces.cnn_families.dataset import build_dataset

    # `kill` (SIGTERM) stops a background build as cleanly as Ctrl-C: the manifest and gt.txt are written
    signal.signal(signal.SIGTERM, _interrupt)
    command = "nas-predictor " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    try:
        report = build_dataset(args.out, args.families, args.per_family, provider=args.provider, space=args.space,
                               generator="operators" if args.ops else "networks",
                               batch=args.batch, measure_core=args.measure_core, export_core=args.export_core,
                               max_minutes=args.max_minutes, retry_failed=args.retry_failed, relabel=args.relabel,
                               first_seed=args.first_seed, progress=not args.quiet, command=command)
    except KeyboardInterrupt:
        print(f"nas-predictor: interrupted; every label measured so far is in {args.out}; rerun to resume",
              file=sys.stderr)
        return 130
    counts = ", ".join(f"{f} {n}" for f, n in report.counts.items())
    print(f"{report.root}: measured {report.measured}, failed {report.failed} in {report.seconds / 60:.1f} min "
          f"({report.labels_per_hour:.0f} labels/h); stopped: {report.stopped}; {report.remaining} to go")
    print(f"labels per family: {counts or 'none'}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from search_spaces.cnn_families.dataset import LatencyDataset

    ds = LatencyDataset(args.folder)
    m = ds.manifest
    info = {"folder": str(ds.root), "identity": ds.identity, "labels": len(ds.labels), "failures": len(ds.failures),
            "counts": ds.counts(), "fallback_labels": sum(bool(e["label"].get("fallback")) for e in ds.labels),
            "builds": m.get("builds", []), "retest": m.get("retest"),
            "repaired_labels": sum("repaired" in e for e in ds.labels)}
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{ds.root}: {info['labels']} labels ({info['fallback_labels']} flagged fallbacks), "
          f"{info['failures']} failures; {json.dumps(ds.identity)}")
    width = max([12] + [len(f) for f in info["counts"]])  # operator kinds run longer than family names
    for family, n in info["counts"].items():
        print(f"  {family:{width}s} {n}")
    hours = sum(b["seconds"] for b in info["builds"]) / 3600
    if hours:
        per_hour = sum(b["measured"] for b in info["builds"]) / hours
        print(f"  {len(info['builds'])} build runs, {hours:.2f} h, {per_hour:.0f} labels/h")
    if info["retest"]:
        r = info["retest"]
        mean = f"mean |diff| {100 * r['mean_diff']:.1f} %, " if "mean_diff" in r else ""
        print(f"  retest of {r['models']} models: {mean}median |diff| {100 * r['median_diff']:.1f} %, "
              f"p90 {100 * r['p90_diff']:.1f} %, within 10 % {100 * r['within_10pct']:.0f} %")
    if info["repaired_labels"]:
        print(f"  {info['repaired_labels']} labels repaired by their faster retest (`dataset repair`)")
    return 0


def _cmd_repair(args: argparse.Namespace) -> int:
    from search_spaces.cnn_families.dataset import repair_from_retest

    report = repair_from_retest(args.folder, getattr(args, "tolerance", None))
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        families = ", ".join(f"{f} {n}" for f, n in report.by_family.items())
        print(f"repaired {report.repaired} of {report.compared} retested labels (retest faster by more than "
              f"{report.tolerance:g}x){': ' + families if families else ''}; {report.slower} retests were slower "
              f"by more than that (labels kept)")
    return 0


def _cmd_retest(args: argparse.Namespace) -> int:
    from search_spaces.cnn_families.dataset import retest_dataset

    summary = retest_dataset(args.folder, args.sample, seed=args.seed, measure_core=args.measure_core,
                             export_core=args.export_core, progress=not args.quiet)
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(f"retest of {summary.models} models: mean |diff| {100 * summary.mean_diff:.2f} %, "
              f"median {100 * summary.median_diff:.2f} %, "
              f"p90 {100 * summary.p90_diff:.2f} %, max {100 * summary.max_diff:.1f} %, "
              f"within 5 % {100 * summary.within_5pct:.0f} %, within 10 % {100 * summary.within_10pct:.0f} %")
        for est, s in summary.by_estimator.items():
            print(f"  {est}: {s['models']} models, mean {100 * s['mean_diff']:.2f} %, "
                  f"median {100 * s['median_diff']:.2f} %, p90 {100 * s['p90_diff']:.2f} %")
        for family, s in summary.by_family.items():
            print(f"  {family}: {s['models']} models, mean {100 * s['mean_diff']:.2f} %, "
                  f"p90 {100 * s['p90_diff']:.2f} %")
    return _cmd_repair(args) if args.repair else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from search_spaces.cnn_families.dataset import export_graphs

    written = export_graphs(args.folder, args.families, progress=not args.quiet)
    print(f"{args.folder}: wrote {written} ONNX graphs; gt.txt names them")
    return 0
