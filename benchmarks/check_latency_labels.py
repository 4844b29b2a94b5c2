"""Check every committed latency label against the runs it was made from (issue 26, Must-exist 6).

A label may not exceed the median of its own kept target runs by more than the protocol's tolerance
(the gate's 1.12x), nor the median of all its target runs (what the measurer now enforces: under CPU
contention the gate can keep the slowed pairs). For each dataset folder under benchmarks/latency_dataset/
(labels.jsonl, the labels a reader uses, and retest.jsonl), every label is checked with
nas_predictor.latency.consistency.check_label: exactly where the record stores its runs or where its
runs are every run (min-of-pass, or every pair kept), else between the limits the stored order
statistics allow. Records of version 1 store no single runs, so a violating label cannot be
recomputed with the fixed estimator (it needs the kept pairs' reference runs): violations are
reported, not rewritten.

Also written, as the evidence for the cause: per family, the reference's typical run in a model's
own pairs (raw median / gated ratio, an approximation) against the tracker's fast time the label
was scaled by. Families are measured interleaved, so a difference between families is the
reference's dependence on what ran before it, not the host's drift.

    python benchmarks/check_latency_labels.py            # -> results/latency_label_check.json

Exit status 1 when any label surely violates the rule (0 otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.data.latency_dataset import LABELS, RETEST, LatencyDataset  # noqa: E402
from nas_predictor.jsonl import read_jsonl  # noqa: E402
from nas_predictor.latency.consistency import UNDETERMINED, VIOLATION, check_label  # noqa: E402
from nas_predictor.latency.protocol import GATED  # noqa: E402

DATASETS = Path(__file__).resolve().parent / "latency_dataset"


def _case(entry: dict, check) -> dict:
    label = entry["label"]
    return {"family": entry["family"], "seed": int(entry["seed"]), "graph": label["model"],
            "estimator": label["estimator"], "fallback": bool(label["fallback"]), "label_ms": check.label_ms,
            "runs_median_low_ms": check.low_ms, "runs_median_high_ms": check.high_ms, "basis": check.basis,
            "kept_runs": check.runs, "pairs_kept": label["raw"]["pairs_kept"],
            "pairs_total": label["raw"]["pairs_total"], "raw_min_ms": label["raw"]["min_ms"],
            "raw_max_ms": label["raw"]["max_ms"], "gated_ratio": label["robust"].get("gated_ratio"),
            "reference_fast_ms": label.get("reference_fast_ms"),
            "all_runs_median_ms": check.all_runs_median_ms,
            "label_over_runs_median": [round(check.excess_low, 4), round(check.excess_high, 4)],
            "record_version": label.get("record_version", 1)}


def check_entries(entries: list[dict], top: int) -> dict:
    checks = [(e, check_label(e["label"])) for e in entries]
    verdicts = Counter(c.verdict for _, c in checks)
    kept_only = Counter(check_label(e["label"], kept_only=True).verdict for e in entries)
    bases = Counter(c.basis for _, c in checks)
    by_estimator: dict[str, Counter] = defaultdict(Counter)
    for e, c in checks:
        by_estimator[e["label"]["estimator"]][c.verdict] += 1
    # worst first by the least the label surely exceeds its runs' median by (exact where known)
    worst = sorted(checks, key=lambda ec: -ec[1].excess_low)[:top]
    exact = [c.excess_low for _, c in checks if c.exact]
    return {
        "labels": len(checks),
        "tolerances": sorted({c.tolerance for _, c in checks}),
        "verdicts": dict(verdicts), "verdicts_kept_runs_only": dict(kept_only), "bases": dict(bases),
        "verdicts_by_estimator": {k: dict(v) for k, v in sorted(by_estimator.items())},
        "exact_checks": len(exact),
        "exact_label_over_runs_median": {
            "max": max(exact), "p99": statistics.quantiles(exact, n=100)[98], "median": statistics.median(exact),
            "above_1.0": sum(x > 1.0 for x in exact), "above_1.05": sum(x > 1.05 for x in exact),
        } if len(exact) >= 2 else None,
        "labels_above_their_slowest_run": sum(e["label"]["label_ms"] > e["label"]["raw"]["max_ms"] for e, _ in checks),
        "violations": [_case(e, c) for e, c in checks if c.verdict == VIOLATION],
        "undetermined": [_case(e, c) for e, c in checks if c.verdict == UNDETERMINED],
        "worst": [_case(e, c) for e, c in worst],
    }


def reference_context(entries: list[dict]) -> dict:
    """Per family: (raw median / gated ratio) / tracker fast time over its non-fallback gated labels."""
    per: dict[str, list[float]] = defaultdict(list)
    medians: dict[str, list[float]] = defaultdict(list)
    for e in entries:
        lab = e["label"]
        if lab["estimator"] != GATED or lab["fallback"] or not lab["robust"].get("gated_ratio"):
            continue
        per[e["family"]].append(lab["raw"]["median_ms"] / lab["robust"]["gated_ratio"] / lab["reference_fast_ms"])
        medians[e["family"]].append(lab["raw"]["median_ms"])
    out = {}
    for family, ratios in sorted(per.items(), key=lambda kv: statistics.median(medians[kv[0]])):
        q = statistics.quantiles(ratios, n=20)
        out[family] = {"labels": len(ratios), "target_median_ms": round(statistics.median(medians[family]), 3),
                       "reference_in_pairs_over_tracker_fast": {"p5": round(q[0], 4),
                                                                "median": round(statistics.median(ratios), 4),
                                                                "p95": round(q[-1], 4)}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", type=Path, help="dataset folders (default: every one under "
                        "benchmarks/latency_dataset/)")
    parser.add_argument("--top", type=int, default=10, help="worst cases listed per file (default 10)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency_label_check.json")
    args = parser.parse_args(argv)
    folders = args.datasets or sorted(p for p in DATASETS.iterdir() if (p / LABELS).is_file())
    result = {"benchmark": "check_latency_labels", "command": command_line(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
              "rule": "label_ms <= tolerance x the median of all its target runs and, for gated-ratio labels, "
                      "x the median of its kept pairs' target runs; tolerance = the label's protocol's gate "
                      "tolerance. verdicts_kept_runs_only: the kept runs' median alone (issue 26's wording)",
              "recomputed": "none: records of version 1 store statistics, not runs, and the fixed estimator "
                            "needs the kept pairs' reference runs",
              "datasets": {}}
    status = 0
    for folder in folders:
        labels = LatencyDataset(folder).labels
        files = {LABELS: check_entries(labels, args.top)}
        retest = read_jsonl(folder / RETEST)
        if retest:
            files[RETEST] = check_entries(retest, args.top)
        result["datasets"][folder.name] = {"files": files, "reference_context": reference_context(labels)}
        for name, summary in files.items():
            v = summary["verdicts"]
            k = summary["verdicts_kept_runs_only"]
            print(f"{folder.name}/{name}: {summary['labels']} labels, tolerance {summary['tolerances']}: "
                  f"{v.get('ok', 0)} ok, {v.get('violation', 0)} violate, {v.get('undetermined', 0)} undetermined "
                  f"(against the kept runs alone: {k.get('ok', 0)} / {k.get('violation', 0)} / "
                  f"{k.get('undetermined', 0)}); {summary['labels_above_their_slowest_run']} above their slowest run")
            for case in summary["violations"]:
                print(f"  VIOLATION {case['graph']}: {case['label_ms']:.4f} ms, runs' median "
                      f"{case['runs_median_high_ms']:.4f} ms ({case['basis']})")
            for case in summary["undetermined"]:
                print(f"  undetermined {case['graph']}: {case['label_ms']:.4f} ms, runs' median "
                      f"{case['runs_median_low_ms']:.4f}-{case['runs_median_high_ms']:.4f} ms "
                      f"({case['pairs_kept']} of {case['pairs_total']} pairs kept)")
            if summary["verdicts"].get(VIOLATION):
                status = 1
    save_results(args.out, result)
    print(f"wrote {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
