"""Real torchvision/timm networks: the ONNX encoder check, CPU latency tables, and the bad-input suite."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from . import common
from .common import ROOT

REAL_MODELS = {
    "grounded": "NAR-Former V2 + per-operator times (grounded readout)",
    "op_feature": "NAR-Former V2 + per-operator times (token feature, roofline readout)",
    "graph": "NAR-Former V2 graph model alone (roofline readout)",
    "op_sum": "sum of per-operator predictions (nn-Meter)",
    "op_sum_fit": "sum of per-operator predictions x one factor",
    "op_sum_offset": "sum of per-operator predictions less a fitted per-node offset, x one factor",
    "op_sum_groups": "sum of per-operator predictions less a fitted per-node offset, x one factor per operator kind",
    "nnlp_gnn": "NNLP GNN",
    "gbdt": "GBDT on cost features",
    "flops_memory_line": "FLOPs + memory line",
}


def _shipped_real_model() -> str | None:
    """The benchmark model behind the shipped latency-cpu-ort (its checkpoint's folder is the model's name)."""
    from nas_predictor.pretrained_cards import cards

    source = next((c.source_checkpoint for c in cards("latency-cpu-ort")), None)
    return Path(source).parent.name if source else None


def _real_label(name: str, label: str) -> str:
    return f"**{label}; shipped**" if name == _shipped_real_model() else label


def _pm(stat: dict | None, pct: bool = True, digits: int = 1) -> str:
    if not stat:
        return "-"
    scale = 100 if pct else 1
    unit = " %" if pct else ""
    worst = f" (worst {scale * stat['worst']:.{digits}f})" if stat.get("n", 1) > 1 else ""
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}{unit}{worst}"


def latency_real_table(part: str = "all") -> list[str]:
    """Real torchvision/timm networks, labels of the training machine (or after 5-shot calibration)."""
    run = common.load("latency_real")
    if not run:
        return common.not_run("model", "status")
    summary = run["summary"]
    rows = common.header("model", "seeds", "MAPE", "Acc(10 %)", "Spearman", "max error")
    for name, label in REAL_MODELS.items():
        row = summary.get(name)
        if not row or part not in row:
            continue
        r = row[part]
        rows.append(common.row(_real_label(name, label), len(row["seeds"]), _pm(r.get("mape")),
                               _pm(r.get("acc_10pct"), digits=0), _pm(r.get("spearman"), pct=False, digits=3),
                               _pm(r.get("max_error"), digits=0)))
    return rows


def latency_real_lofo_table(stem: str = "latency_real_lofo") -> list[str]:
    """Leave one generated family out: each model's MAPE averaged over the held-out families, per seed."""
    run = common.load(stem)
    if not run or "lofo_average" not in run.get("summary", {}):
        return common.not_run("model", "status")
    rows = common.header("model", "families held out", "seeds", "average MAPE over families")
    for name, label in REAL_MODELS.items():
        row = run["summary"]["lofo_average"].get(name)
        if row:
            seeds = row["mape_mean_over_families"].get("n", 1)
            rows.append(common.row(_real_label(name, label), ", ".join(map(str, row["families"])), seeds,
                                   _pm(row["mape_mean_over_families"])))
    return rows


def latency_real_speed_table() -> list[str]:
    """Seconds to predict 1,000 real networks: the shipped predictor timed alone (``--speed``), and each
    neural model of the run, timed on its own core right after training (one thread)."""
    run = common.load("latency_real")
    rows = common.header("predictor", "threads", "from graphs", "reading the ONNX files", "from ONNX files", "timed")
    if run and run.get("speed"):
        sp = run["speed"]
        for threads, t in sp["threads"].items():
            rows.append(common.row(f"shipped `{sp['predictor']}`", threads, f"{t['predict_from_graphs_s']:.1f} s",
                                   f"{1000 * t['onnx_encode_mean_s']:.0f} ms each",
                                   f"{t['predict_from_onnx_s']:.0f} s", "alone, `--speed`"))
    for name, label in REAL_MODELS.items():
        times = [
            r["predict_speed"] for r in (run or {}).get("runs", []) if r["model"] == name and r.get("predict_speed")
        ]
        if times:
            graphs = [t["predict_from_graphs_s"] for t in times]
            rows.append(common.row(_real_label(name, label), 1,
                                   f"{statistics.mean(graphs):.1f} s (worst {max(graphs):.1f})", "-", "-",
                                   f"after training, {len(times)} seed(s), the other core training"))
    if len(rows) == 2:
        rows.append(common.row("-", "-", "not run yet", "-", "-", "-"))
    return rows


def real_retest_table() -> list[str]:
    path = ROOT / "benchmarks" / "latency_dataset" / "real_networks_cpu_1t" / "retest_summary.json"
    if not path.is_file():
        return common.not_run("networks", "status", status="retest not measured yet")
    r = json.loads(path.read_text())
    pct = [f"{100 * r[k]:.1f} %" for k in ("mean_diff", "median_diff", "p90_diff", "max_diff")]
    return [*common.header("networks", "mean diff", "median diff", "p90 diff", "max diff", "within 5 %",
                           "within 10 %", "measured"),
            common.row(r["networks"], *pct, f"{100 * r['within_5pct']:.0f} %", f"{100 * r['within_10pct']:.0f} %",
                       f"{r['first'][:16]} to {r['last'][:16]} UTC")]


def dataset_retest_table() -> list[str]:
    """The generated-family and operator datasets against their retests (``dataset retest``), and what
    ``dataset repair`` replaced: read from the committed labels.jsonl / retest.jsonl."""
    import numpy as np

    from nas_predictor.data.latency_dataset import RETEST, LatencyDataset
    from nas_predictor.jsonl import read_jsonl
    from search_spaces.cnn_families.dataset_retest import first_labels

    rows = common.header("dataset", "labels", "retested", "mean diff", "median retest / label",
                         "retest faster by > 12 %", "retest slower by > 12 %", "labels repaired", "retest measured")
    for name in ("cpu_ort_1t", "cpu_ort_1t_ops"):
        ds = LatencyDataset(ROOT / "benchmarks" / "latency_dataset" / name)
        first = first_labels(ds)
        retest = {(e["family"], int(e["seed"])): e["label"] for e in read_jsonl(ds.root / RETEST)}
        keys = [k for k in retest if k in first]
        if not keys:
            rows.append(common.row(name, len(ds.labels), 0, *(["-"] * 6)))
            continue
        ratio = np.array([retest[k]["label_ms"] / first[k]["label_ms"] for k in keys])
        stamps = sorted(retest[k].get("timestamp", "") for k in keys)
        rows.append(common.row(name, len(ds.labels), len(keys), f"{100 * np.mean(np.abs(ratio - 1)):.1f} %",
                               f"{np.median(ratio):.3f}", f"{100 * np.mean(ratio * 1.12 < 1):.1f} %",
                               f"{100 * np.mean(ratio > 1.12):.1f} %", sum("repaired" in e for e in ds.labels),
                               f"{stamps[0][:16]} to {stamps[-1][:16]} UTC"))
    return rows


def real_networks_table() -> list[str]:
    """benchmarks/real_networks.py check: torchvision/timm networks through the ONNX encoder."""
    run = common.load("real_networks")
    if run is None:
        return common.header("(no results: run `python benchmarks/real_networks.py check`)")
    rows, s = run["rows"], run["summary"]
    published = [r for r in rows if r.get("published_gmacs") and r.get("published_resolution") == r["resolution"]]
    worst = max(abs(r["macs_rel_diff"]) for r in rows if r.get("macs_rel_diff") is not None)

    def verdicts(key: str) -> str:
        v = s[key]
        return (f"{v['exact']} exactly 32x, {v['refused']} refused with an error, {v['wrong']} wrong, "
                f"{v['crashed']} crashed")

    repeats = run["command"].split("--repeats ")[1].split()[0] if "--repeats" in run["command"] else "?"
    checks = {
        "networks (torchvision + timm, weight-free, opset 17)":
            f"{s['networks']}: {s['at_224']} at 224, {s['at_160']} at 160, {s['families']} families",
        "encoded": f"{s['encoded']} of {s['networks']}; tensors left unsized: {s['unresolved_shapes']}",
        "Conv/Gemm/MatMul/Einsum MACs within 1 % of FlopCounterMode":
            f"{s['macs_within_1pct']} of {s['networks']} (largest difference {100 * worst:.2f} %)",
        "FlopCounterMode vs torchvision's published GMACs":
            f"{len(published)} networks, largest difference "
            f"{100 * max(abs(r['reference_vs_published_rel']) for r in published):.2f} % (the published figures are "
            "rounded)",
        "batch 32, file re-read at batch 32 (`latency --batch 32`)": verdicts("batch32_reexport_free"),
        "batch 32, graph re-batched (`rebatch`, search spaces' graphs)": verdicts("batch32_rebatch"),
        f"encode time, one thread (best of {repeats})":
            f"ResNet-50 {s['resnet50_encode_ms']:.1f} ms, timm Swin-T {s['swin_t_encode_ms']:.0f} ms, torchvision "
            f"Swin-T {s['swin_t_torchvision_encode_ms']:.0f} ms, median {s['encode_ms']['median']:.1f} ms",
    }
    return [*common.header("check", "result"), *(common.row(k, v) for k, v in checks.items())]


def bad_inputs_table() -> list[str]:
    """benchmarks/bad_inputs.py: every bad input tried, by category."""
    run = common.load("bad_inputs")
    if run is None:
        return common.header("(no results: run `python benchmarks/bad_inputs.py`)")
    rows = common.header("category", "kinds tried", "clear error", "right result", "neither")
    counts = ("kinds", "clear error", "correct result", "fail")
    for category, c in run["summary"]["by_category"].items():
        rows.append(common.row(category, *(c[k] for k in counts)))
    t = run["summary"]["total"]
    rows.append(common.row(*(f"**{v}**" for v in ("all", *(t[k] for k in counts)))))
    return rows
