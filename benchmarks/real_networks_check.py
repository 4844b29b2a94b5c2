"""The check step of benchmarks/real_networks.py (project venv): encode each export, MACs and batch verdicts."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from real_networks_catalog import (BATCH, BATCH_TOLERANCE, MAC_TOLERANCE, fail, network_id, read_manifest, selected,
                                   sha256, write_json_atomic)
from real_networks_macs import graph_costs


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _error(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:400]}"


def encode(path: Path, batch_size: int | None = None):
    """onnx_to_graph with its warnings collected (a warning is not an answer: it is recorded)."""
    from nas_predictor.onnx import onnx_to_graph

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = onnx_to_graph(path, batch_size=batch_size) if batch_size else onnx_to_graph(path)
    return graph, [str(w.message)[:300] for w in caught]


def batch_verdict(make, flops_1: float) -> dict[str, Any]:
    """exact: FLOPs are B x batch-1 FLOPs; refused: a NasPredictorError (a clear error); crashed: any
    other exception; wrong: a result that is not B x (a silent wrong answer)."""
    from nas_predictor.errors import NasPredictorError

    try:
        graph = make()
    except NasPredictorError as err:
        return {"verdict": "refused", "error": _error(err)}
    except Exception as err:  # noqa: BLE001 - a traceback for the user: recorded as such
        return {"verdict": "crashed", "error": _error(err)}
    flops = float(graph.scalars.get("flops", float("nan")))
    want = BATCH * flops_1
    ratio = flops / flops_1 if flops_1 else None
    exact = math.isfinite(flops) and abs(flops - want) <= BATCH_TOLERANCE * abs(want)
    return {"verdict": "exact" if exact else "wrong", "gflops": _finite(flops / 1e9),
            "ratio": _finite(ratio) if ratio is not None else None}


def check_one(row: dict[str, Any], folder: Path, repeats: int) -> dict[str, Any]:
    from nas_predictor.onnx.rebatch import rebatch

    out = {k: row.get(k) for k in ("id", "source", "name", "family", "resolution", "sha256", "reference_macs",
                                   "reference_macs_by_op", "published_gmacs", "published_resolution", "export_s")}
    out["onnx_nodes"] = row.get("nodes")
    path = folder / row["file"]
    if not path.is_file():
        return {**out, "encoded": False, "error": f"{path}: missing (export again)"}
    if sha256(path) != row["sha256"]:
        return {**out, "encoded": False, "error": f"{path}: sha256 differs from the manifest (export again)"}
    try:
        start = time.perf_counter()
        graph, caught = encode(path)
        cold = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - every failure is a row of the to-do list
        return {**out, "encoded": False, "error": _error(err)}
    times = []
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            encode(path)
            times.append(time.perf_counter() - start)
    costs = graph_costs(graph)
    ref = row["reference_macs"]
    rel = (costs["macs"] - ref) / ref if ref else None
    flops_1 = float(graph.scalars["flops"])
    out.update(
        encoded=True, nodes=graph.num_nodes, encode_ms=round(min(times) * 1e3, 3),
        encode_cold_ms=round(cold * 1e3, 3), warnings=caught,
        gflops=_finite(flops_1 / 1e9), macs=costs["macs"], macs_source=costs["macs_source"],
        macs_from_shapes=costs["macs_from_shapes"], macs_rel_diff=_finite(rel),
        macs_vs_benchmark_count_rel=_finite((costs["macs"] - costs["macs_from_shapes"]) / costs["macs_from_shapes"])
        if costs["macs_from_shapes"] else None,
        macs_within_1pct=rel is not None and abs(rel) <= MAC_TOLERANCE,
        unresolved_shapes=bool(costs["unresolved_mac_nodes"] or costs["zero_dim_nodes"]
                               or any("shape" in w for w in caught)),
        unresolved_mac_nodes=costs["unresolved_mac_nodes"], zero_dim_nodes=costs["zero_dim_nodes"],
        first_unresolved=costs["first_unresolved"],
        batched_inputs=costs["batched_inputs"], batched_input_shapes=costs["batched_input_shapes"],
    )
    if row.get("published_gmacs") and row.get("published_resolution") == row["resolution"]:
        published = row["published_gmacs"] * 1e9
        out["reference_vs_published_rel"] = _finite((ref - published) / published)
        out["macs_vs_published_rel"] = _finite((costs["macs"] - published) / published)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["batch32_reexport_free"] = batch_verdict(lambda: encode(path, BATCH)[0], flops_1)
        out["batch32_rebatch"] = batch_verdict(lambda: rebatch(graph, BATCH), flops_1)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    exported = [r for r in rows if r.get("reference_macs") is not None]
    encoded = [r for r in exported if r.get("encoded")]
    times = sorted(r["encode_ms"] for r in encoded)
    cold = sorted(r["encode_cold_ms"] for r in encoded)
    by_id = {r["id"]: r for r in encoded}

    def verdicts(key: str) -> dict[str, int]:
        counts = {"exact": 0, "refused": 0, "crashed": 0, "wrong": 0}
        for r in encoded:
            counts[r[key]["verdict"]] += 1
        return counts

    def ms(nid: str, key: str = "encode_ms") -> float | None:
        return by_id[nid][key] if nid in by_id else None

    return {
        "networks": len(rows), "exported": len(exported), "encoded": len(encoded),
        "macs_within_1pct": sum(1 for r in encoded if r["macs_within_1pct"]),
        "unresolved_shapes": sum(1 for r in encoded if r["unresolved_shapes"]),
        # where the encoder counts Einsum (which the benchmark's count skips) the two may differ
        "encoder_macs_differ_from_benchmark_count": sum(
            1 for r in encoded
            if r["macs_vs_benchmark_count_rel"] is None or abs(r["macs_vs_benchmark_count_rel"]) > 1e-9),
        "parameters_taken_as_data": sum(1 for r in encoded if r["batched_inputs"] != 1),
        "families": len({r["family"] for r in exported}),
        "at_224": sum(1 for r in exported if r["resolution"] == 224),
        "at_160": sum(1 for r in exported if r["resolution"] == 160),
        "batch32_reexport_free": verdicts("batch32_reexport_free"),
        "batch32_rebatch": verdicts("batch32_rebatch"),
        "encode_ms": {"median": statistics.median(times), "max": times[-1], "min": times[0],
                      "total": round(sum(times), 3)} if times else None,
        "encode_cold_ms": {"median": statistics.median(cold), "max": cold[-1], "min": cold[0],
                           "total": round(sum(cold), 3)} if cold else None,
        "resnet50_encode_ms": ms("torchvision:resnet50@224"),
        "resnet50_encode_cold_ms": ms("torchvision:resnet50@224", "encode_cold_ms"),
        "swin_t_encode_ms": ms("timm:swin_tiny_patch4_window7_224@224"),
        "swin_t_encode_cold_ms": ms("timm:swin_tiny_patch4_window7_224@224", "encode_cold_ms"),
        "swin_t_torchvision_encode_ms": ms("torchvision:swin_t@224"),
        "swin_t_torchvision_encode_cold_ms": ms("torchvision:swin_t@224", "encode_cold_ms"),
        "swin_t_nodes": by_id.get("timm:swin_tiny_patch4_window7_224@224", {}).get("nodes"),
        "speed_targets": {"resnet50_ms": "about 13 or less (keep)", "swin_t_ms": "< 300"},
    }


def cmd_check(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import command_line, machine

    folder = Path(args.onnx_dir).expanduser()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        fail(f"{manifest_path}: no manifest; run `real_networks.py export --out {folder}` with the export venv first")
    manifest = read_manifest(folder)
    networks = manifest.get("networks", {})
    wanted = {network_id(s, n, r) for s, n, _, r, _ in selected(args.only)}
    torch.set_num_threads(1)
    # The encoder caches onnxruntime shape runs by file hash: a fresh cache makes the first encode of each
    # file cold (encode_cold_ms) and keeps this run from reusing, or leaving, entries elsewhere.
    cache = tempfile.TemporaryDirectory(prefix="real-networks-shapes-")
    os.environ["NAS_PREDICTOR_CACHE"] = cache.name
    rows = []
    for nid, row in networks.items():
        if nid not in wanted:
            continue
        if row.get("recipe_key") != manifest.get("recipe_key"):
            print(f"{nid}: exported with another recipe; skipped (export again)", file=sys.stderr)
            continue
        if not row.get("ok"):
            rows.append({"id": nid, "source": row["source"], "name": row["name"], "family": row["family"],
                         "resolution": row["resolution"], "exported": False, "export_error": row.get("error")})
            continue
        result = check_one(row, folder, args.repeats)
        result["exported"] = True
        rows.append(result)
        if result.get("encoded"):
            print(f"{nid}: {result['nodes']} nodes {result['encode_ms']:.1f} ms, MACs "
                  f"{(result['macs_rel_diff'] or 0) * 100:+.2f} % vs reference"
                  f"{' UNRESOLVED' if result['unresolved_shapes'] else ''}, b32 "
                  f"{result['batch32_reexport_free']['verdict']}/{result['batch32_rebatch']['verdict']}", flush=True)
        else:
            print(f"{nid}: ERROR {result['error']}", flush=True)
    missing = sorted(wanted - set(networks))
    results = {
        "command": command_line(), "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": manifest.get("recipe"), "onnx_dir": str(folder),
        "not_exported_yet": missing,
        "criteria": {"macs": "Conv/ConvTranspose/Gemm/MatMul (and Einsum, where the encoder counts it) MACs within "
                             f"{MAC_TOLERANCE:.0%} of the FlopCounterMode "
                             "reference", "batch": f"batch {BATCH}: FLOPs == {BATCH} x batch-1 (relative "
                             f"{BATCH_TOLERANCE}) or a NasPredictorError",
                     "encode_ms": f"best of {args.repeats} after the first, one torch thread, onnx_to_graph(path) at "
                                  "batch 1; encode_cold_ms: the first, with an empty shape cache"},
        "rows": rows, "summary": summarize(rows),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, out)
    print(json.dumps(results["summary"], indent=2))

