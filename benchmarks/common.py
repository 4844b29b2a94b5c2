"""Helpers shared by the benchmark scripts: machine description and resumable JSON results."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def code_commit(checkout: Path = RESULTS.parent.parent) -> str:
    """The checkout's commit (short), with " + uncommitted changes" when tracked files other than results
    and docs differ from it: what code a run ran (read it when the process starts, as Python does the code)."""
    git = ["git", "-C", str(checkout)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!benchmarks/results", ":!docs"], capture_output=True, text=True).stdout.strip()
    return (commit or "unknown") + (" + uncommitted changes" if dirty else "")


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """Atomic write, so an interrupted benchmark never leaves a half-written file."""
    from nas_predictor.io import atomic_write_json

    atomic_write_json(data, path)


def update_locked(path: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Read the results file, apply ``change`` and write it back, under a file lock, so processes of one
    benchmark running side by side never overwrite each other's work; returns what was written."""
    from nas_predictor.io import file_lock

    with file_lock(path.with_suffix(".lock"), f"results file {path}", wait=True):
        merged = change(load_results(path))
        save_results(path, merged)
    return merged


def append_locked(path: Path, results: dict[str, Any], entry: dict[str, Any], key: Callable[[dict], tuple],
                  summarize: Callable[[list[dict]], dict], merge_dicts: tuple[str, ...] = (),
                  derived: dict[str, Callable[[list[dict]], Any]] | None = None) -> dict[str, Any]:
    """Add one finished run to a results file under a file lock, keeping the runs other processes
    appended meanwhile (seeds of one benchmark may run in parallel processes). Runs are keyed by
    ``key``; the top-level dicts named in ``merge_dicts`` are merged too; the summary (and each field of
    ``derived``, computed from all runs like it) is recomputed.

    The runs on disk are the truth, plus ``entry``: this process's copy (``results``) may be stale, as it
    was read when the process started and every run it appended since is on disk already. Merging it
    back would bring back runs another process replaced or dropped (a rerun of one strategy beside a
    process still running the others)."""

    def change(on_disk: dict[str, Any]) -> dict[str, Any]:
        runs = {key(r): r for r in on_disk.get("runs", [])}
        runs[key(entry)] = entry
        merged = {**on_disk, **{k: v for k, v in results.items() if k != "runs"}}
        merged["commands"] = list(dict.fromkeys(on_disk.get("commands", []) + results.get("commands", [])))
        for name in merge_dicts:
            merged[name] = {**on_disk.get(name, {}), **results.get(name, {})}
        merged["runs"] = list(runs.values())
        merged["summary"] = summarize(merged["runs"])
        for name, compute in (derived or {}).items():
            merged[name] = compute(merged["runs"])
        return merged

    return update_locked(path, change)


def welch(a: list[float], b: list[float]) -> dict:
    """Mean difference a - b, its standard error and Welch's t-test (p None when both are constant)."""
    from scipy import stats

    diff = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) if len(a) > 1 < len(b) else 0.0
    if se == 0.0:
        return {"difference": diff, "standard_error": 0.0, "welch_t": None, "p_value": None}
    t, p = stats.ttest_ind(a, b, equal_var=False)
    return {"difference": diff, "standard_error": se, "welch_t": float(t), "p_value": float(p)}
