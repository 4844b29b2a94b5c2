"""Stages 1-3 of benchmarks/gpu_latency.py: the labelling stages and their CPU stand-in for the CUDA timer."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import torch

from gpu_latency_common import log

# --- the CPU stand-in for the CUDA timer (--dry-run) ------------------------------------------------------

def cpu_torch_timer(module: torch.nn.Module, input_shape: Sequence[int], *, name: str | None = None,
                    warmup: int = 1, repeats: int = 3):
    """What ``measure_torch_cuda`` returns, timed on the CPU with the wall clock: the dry run's stand-in
    (the label says so in its notes and execution providers; its numbers never leave the temp folder)."""
    from nas_predictor.latency.estimators import summarize
    from nas_predictor.latency.record import (LatencyLabel, RawStats, RobustStats, cpu_model, machine_id,
                                              software_versions, stored_runs, utc_timestamp)
    from nas_predictor.latency.timing import PerfClock, timed_runs

    module = module.eval()
    x = torch.randn(*input_shape)
    with torch.no_grad():
        times = timed_runs(lambda: module(x), PerfClock(), warmup=warmup, repeats=repeats)
    runs = summarize(times)
    return LatencyLabel(
        model=name or type(module).__name__, label_ms=runs.median_ms, estimator="median-eager", provider="torch-cuda",
        execution_providers=[f"torch {torch.__version__} CPU (dry run: stands in for CUDA)"],
        batch_size=int(input_shape[0]), raw=RawStats(runs.median_ms, runs.p10_ms, runs.min_ms, runs.max_ms, runs.runs),
        robust=RobustStats(min_of_pass_ms=runs.min_ms, pass_min_ms=[runs.min_ms], median_ms=runs.median_ms,
                           eager_ms=runs.median_ms),
        cpu_model=cpu_model(), machine=machine_id(), protocol={"warmup_runs": warmup, "repeats": repeats},
        notes=["dry run: CPU wall-clock timing standing in for CUDA events"], timestamp=utc_timestamp(),
        target_runs_ms=stored_runs([times]), **software_versions())


# --- stages --------------------------------------------------------------------------------------------

def ort_cuda_reason() -> str | None:
    """None when onnxruntime can run on CUDA here; otherwise why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (it offers {', '.join(providers)}); "
                "install onnxruntime-gpu to label with it")
    return None


def label_stage(name: str, folder: Path, names: Sequence[str], per: int, *, generator: str, provider: str,
                minutes: float, torch_timer: Any, space: str | None, start: float) -> dict[str, Any]:
    """One resumable ``dataset build`` chunk, stopped cleanly after ``minutes``."""
    from search_spaces.cnn_families.dataset import LatencyDataset, build_dataset

    before = len(LatencyDataset(folder).labels) if (folder / "labels.jsonl").is_file() else 0
    log(start, f"{name}: labelling {len(names)} {'kinds' if generator == 'operators' else 'families'} with "
               f"provider {provider} into {folder} for up to {minutes * 60:.0f} s ({before} labels there)")
    command = (f"nas-predictor dataset build {'--ops ' if generator == 'operators' else ''}--provider {provider} "
               f"--families {','.join(names)} --per-family {per}{' --space ' + space if space else ''} --out {folder}")
    report = build_dataset(folder, list(names), per, provider=provider, space=space, generator=generator,
                           max_minutes=minutes, progress=False, subprocess_export=False, command=command,
                           torch_timer=torch_timer if provider == "torch-cuda" else None)
    ds = LatencyDataset(folder)
    log(start, f"{name}: measured {report.measured}, failed {report.failed} in {report.seconds:.0f} s "
               f"(stopped: {report.stopped}); {len(ds.labels)} labels in all, {report.remaining} to go")
    return {"stage": name, "folder": str(folder), "provider": provider, "seconds": round(report.seconds, 1),
            "measured": report.measured, "failed": report.failed, "stopped": report.stopped,
            "labels": len(ds.labels), "remaining": report.remaining, "counts": ds.counts()}



def real_networks_reason() -> str:
    have = [m for m in ("torchvision", "timm") if importlib.util.find_spec(m) is not None]
    if not have:
        return ("torchvision and timm are not installed here: the real networks cannot be built, so none was "
                "labelled on this machine's GPU and no real-network table exists for it (the CPU's is "
                "latency_real.json)")
    return (f"{' and '.join(have)} installed, but this script labels generated families only: the real networks' "
            "GPU labels need their torch modules timed with `measure_torch_cuda` (benchmarks/real_networks.py "
            "builds them); no real-network table for this GPU yet")


