"""Real networks from torchvision and timm: exact graphs, exact MACs and honest batching (issue 26).

Two steps, run by two different Python environments:

    # 1. export (torchvision + timm; the project's CPU torch cannot import torchvision, so a separate
    #    export-only venv does this, see .ci/run):
    .export-venv/bin/python benchmarks/real_networks.py export --out ~/.cache/nas-predictor/real-networks
    # 2. check (the project venv): encode every exported file and compare with the references
    python benchmarks/real_networks.py check --onnx-dir ~/.cache/nas-predictor/real-networks

``export`` writes weight-free batch-1 ONNX files (never committed; cached outside the repo) and a
manifest.json with the recipe and, per network, a reference count of Conv/Linear/MatMul MACs made by
torch's FlopCounterMode on the module itself (independent of ONNX), plus torchvision's published
figure where there is one. It is resumable: networks already exported with the same recipe are skipped.

``check`` encodes each file with nas_predictor.onnx.onnx_to_graph at batch 1 and at batch 32 (both by
re-reading the file and by the batch-32 predictors' path, rebatch) and writes
benchmarks/results/real_networks.json. This module imports neither torchvision/timm at the top
(the project venv lacks them) nor nas_predictor (the export venv lacks it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The steps live in sibling modules; the script's folder is put on sys.path because the tests load this
# file by its path. Their names are re-exported: the tests and fixtures use them from this module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_networks_catalog import (BATCH, BATCH_TOLERANCE, DEFAULT_DIR, ENCODER_MAC_OPS, GENERATOR_FAMILY,  # noqa: E402,F401
                                   MAC_OPS, MAC_TOLERANCE, NETWORKS, OPSET, RESULTS_FILE, fail, file_name,
                                   locked, network_id, read_manifest, selected, sha256, strict_json,
                                   write_json_atomic)
from real_networks_export import (build_model, cmd_export, export_one, published_gmacs, recipe, recipe_key,  # noqa: E402,F401
                                  reference_macs)
from real_networks_macs import encoder_macs, graph_costs, node_macs_from_shapes  # noqa: E402,F401
from real_networks_check import batch_verdict, check_one, cmd_check, encode, summarize  # noqa: E402,F401


# -- latency labels (project venv) ----------------------------------------------------------------
LABELS_DIR = Path(__file__).resolve().parent / "latency_dataset" / "real_networks_cpu_1t"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            # a run killed mid-write leaves at most one torn last line; anything else is corruption
            if i != len(path.read_text().splitlines()):
                fail(f"{path}:{i}: not valid JSON; the labels file is corrupt")
    return rows


def cmd_measure(args: argparse.Namespace) -> None:
    """Latency labels of the exported networks with the project's CPU protocol (one thread, reference-gated
    for short models, min-of-pass for long ones), appended one line per network to labels.jsonl, or to
    retest.jsonl with --retest (a second, later measurement of every labelled network). Resumable: a
    network already in the file is skipped; the file records the machine of every label."""
    from nas_predictor.latency import Measurer

    folder = Path(args.onnx_dir).expanduser()
    manifest = read_manifest(folder)
    networks = manifest.get("networks", {})
    if not networks:
        fail(f"{folder}: no exported networks; run `real_networks.py export --out {folder}` with the export venv")
    out = Path(args.labels_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / ("retest.jsonl" if args.retest else "labels.jsonl")
    done = {r["id"] for r in _read_jsonl(target)}
    wanted = {network_id(s, n, r) for s, n, _, r, _ in selected(args.only)}
    if args.retest:  # only what has a first label
        wanted &= {r["id"] for r in _read_jsonl(out / "labels.jsonl")}
    todo = [row for nid, row in networks.items()
            if nid in wanted and nid not in done and row.get("ok") and row.get("recipe_key") == manifest.get("recipe_key")]
    _write_labels_manifest(out, manifest)
    print(f"{len(todo)} networks to measure into {target} ({len(done)} there already)", flush=True)
    if not todo:
        return
    measurer = Measurer("cpu", core=args.measure_core)
    start = time.perf_counter()
    sources = [str(folder / row["file"]) for row in todo]
    with target.open("a") as handle:
        for k, outcome in enumerate(measurer.measure_many(sources, window=args.window), 1):
            row = todo[outcome.index]
            record = {"id": row["id"], "source": row["source"], "name": row["name"], "family": row["family"],
                      "resolution": row["resolution"], "sha256": row["sha256"],
                      "generator_family": GENERATOR_FAMILY.get(row["family"])}
            if outcome.error is not None:
                print(f"[{k}/{len(todo)}] {row['id']}: FAILED {outcome.error}", flush=True)
                continue
            label = outcome.label.to_dict()
            label["model"] = row["file"]
            record["label"] = label
            handle.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
            handle.flush()
            print(f"[{k}/{len(todo)}] {row['id']}: {label['label_ms']:.3f} ms ({label['estimator']}"
                  f"{', FALLBACK' if label['fallback'] else ''}) {time.perf_counter() - start:.0f} s", flush=True)
    if (out / "retest.jsonl").is_file():  # a re-measured label changes the agreement too
        write_retest_summary(out)


def write_retest_summary(out: Path) -> dict[str, Any]:
    """Test-retest agreement of the real-network labels (|retest / label - 1|), into retest_summary.json."""
    first = {r["id"]: r["label"] for r in _read_jsonl(out / "labels.jsonl")}
    pairs = [(first[r["id"]], r["label"]) for r in _read_jsonl(out / "retest.jsonl") if r["id"] in first]
    diff = sorted(abs(b["label_ms"] / a["label_ms"] - 1.0) for a, b in pairs)
    if not diff:
        return {}
    summary = {"networks": len(diff), "mean_diff": statistics.mean(diff), "median_diff": statistics.median(diff),
               "p90_diff": diff[min(len(diff) - 1, int(round(0.9 * (len(diff) - 1))))], "max_diff": diff[-1],
               "within_5pct": sum(d <= 0.05 for d in diff) / len(diff),
               "within_10pct": sum(d <= 0.10 for d in diff) / len(diff),
               "first": min(b["timestamp"] for _, b in pairs), "last": max(b["timestamp"] for _, b in pairs)}
    write_json_atomic(summary, out / "retest_summary.json")
    print(json.dumps(summary, indent=1))
    return summary


def _write_labels_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """What a reader needs beside the labels: the export recipe, the network list and the family map."""
    info = {"recipe": manifest.get("recipe"), "recipe_key": manifest.get("recipe_key"),
            "export_command": ".export-venv/bin/python benchmarks/real_networks.py export",
            "measure_command": "python benchmarks/real_networks.py measure [--retest]",
            "networks": [{"id": network_id(s, n, r), "source": s, "name": n, "family": f, "resolution": r,
                          "kwargs": kw, "generator_family": GENERATOR_FAMILY.get(f)} for s, n, f, r, kw in NETWORKS],
            "generator_family": GENERATOR_FAMILY,
            "note": "a held-out test set: never used for training, early stopping, model or recipe selection. "
                    "generator_family names the training family of the same design (None: a family never seen "
                    "in training)."}
    write_json_atomic(info, out / "manifest.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export the networks (run with the export venv's python)")
    exp.add_argument("--out", default=str(DEFAULT_DIR), help=f"cache folder (default {DEFAULT_DIR})")
    exp.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    exp.add_argument("--retry-failed", action="store_true", help="export again the networks that failed before")
    chk = sub.add_parser("check", help="encode the exported networks (run with the project venv)")
    chk.add_argument("--onnx-dir", default=str(DEFAULT_DIR))
    chk.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    chk.add_argument("--repeats", type=int, default=3, help="encode timings per network; the best is kept")
    chk.add_argument("--out", default=str(RESULTS_FILE))
    sub.add_parser("list", help="print the network ids")
    mea = sub.add_parser("measure", help="latency labels with the CPU protocol (project venv; resumable)")
    mea.add_argument("--onnx-dir", default=str(DEFAULT_DIR))
    mea.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    mea.add_argument("--labels-dir", default=str(LABELS_DIR))
    mea.add_argument("--retest", action="store_true", help="measure every labelled network again into retest.jsonl")
    mea.add_argument("--measure-core", type=int, default=None)
    mea.add_argument("--window", type=int, default=4, help="models in flight at once (their passes interleave)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for s, n, f, r, _ in NETWORKS:
            print(f"{network_id(s, n, r)}\t{f}")
    elif args.command == "export":
        cmd_export(args)
    elif args.command == "measure":
        cmd_measure(args)
    else:
        if args.repeats < 1:
            fail(f"--repeats must be >= 1, got {args.repeats}")
        cmd_check(args)


if __name__ == "__main__":
    main()
