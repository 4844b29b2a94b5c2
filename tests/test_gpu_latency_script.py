"""benchmarks/gpu_latency.py: the GPU session's script, run as CI runs it (--dry-run on the CPU)."""

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_latency.py"
# what a real run writes: a dry run must leave them exactly as they are
REPO_OUTPUTS = [ROOT / "benchmarks" / "results" / "latency_gpu.json", ROOT / "runs" / "latency_gpu",
                ROOT / "nas_predictor" / "pretrained" / "manifest.json",
                *(ROOT / "benchmarks" / "latency_dataset" / name for name in
                  ("gpu_torch_b1", "gpu_torch_b1_ops", "gpu_ort_cuda_b1", "gpu_ort_cuda_b1_ops"))]


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_latency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _state(paths):
    return {p: (p.stat().st_mtime_ns if p.exists() else None) for p in paths}


def _strict(text):
    def refuse(name):
        raise AssertionError(f"non-finite {name} in the results JSON")
    return json.loads(text, parse_constant=refuse)


def test_dry_run_runs_the_whole_pipeline_on_the_cpu_in_a_temp_folder(script, capsys):
    before = _state(REPO_OUTPUTS)
    assert script.main(["--dry-run", "--keep"]) == 0
    out = capsys.readouterr().out
    folder = Path(re.search(r"dry run kept in (\S+)", out).group(1))
    try:
        assert _state(REPO_OUTPUTS) == before  # nothing written into the repository
        results = _strict((folder / "latency_gpu.json").read_text())
        assert results["benchmark"] == "latency_gpu" and results["dry_run"] is True
        assert results["protocol"].startswith("dry run: CPU wall clock")
        session = results["sessions"][-1]
        stages = {s["stage"]: s for s in session["stages"]}
        assert stages["networks"]["counts"] == {"nasbench201": 3, "convnext": 3, "shufflenet": 3}
        assert stages["networks"]["provider"] == "torch-cuda" and stages["networks"]["stopped"] == "done"
        assert stages["operators"]["counts"] == {"conv": 5, "softmax": 5}
        # the labels are the builder's torch-cuda records, and say what timed them
        labels = folder / "latency_dataset/gpu_torch_b1/labels.jsonl"
        nets = [json.loads(line) for line in labels.read_text().splitlines()]
        assert {e["space"] for e in nets} == {"extended"}
        assert all(e["label"]["provider"] == "torch-cuda" and "dry run" in e["label"]["notes"][0]
                   and e["label"]["label_ms"] > 0 for e in nets)
        manifest = json.loads((folder / "latency_dataset/gpu_torch_b1_ops/manifest.json").read_text())
        assert manifest["identity"]["provider"] == "torch-cuda" and manifest["identity"]["generator"] == "operators"
        # skipped stages state why
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            assert "has no CUDAExecutionProvider" in session["skipped"]["ort_networks"]
            assert "ort_networks" not in stages
        assert results["real_networks"] == session["skipped"]["real_networks"]
        assert "real networks" in results["real_networks"]
        assert "only the first 1 of 3 families held out" in session["skipped"]["lofo (other families)"]
        # the latency_real tables on the generated-family test split, and one held-out family
        runs = {(r["model"], r["test_family"]): r for r in results["runs"]}
        assert set(runs) == {(m, f) for m in ("grounded", "op_sum_fit", "flops_memory_line")
                             for f in (None, "nasbench201")}
        assert runs[("grounded", None)]["num_test"] == 3 and runs[("grounded", None)]["generated_test"]["num"] == 3
        assert runs[("grounded", "nasbench201")]["generated_test"]["num"] == 3
        assert all(r["dataset"] == {"networks": 9, "operators": 10} for r in runs.values())
        assert session["training"]["dataset"] == {"networks": 9, "operators": 10} and session["training"]["epochs"] == 1
        assert session["training"]["lofo_held_out"] == {"families": ["nasbench201"], "of": 3}
        assert results["summary"]["grounded"]["generated_test"]["mape"]["n"] == 1
        assert set(results["summary"]["lofo_average"]) == {"grounded", "op_sum_fit", "flops_memory_line"}
        assert (folder / "runs/seed0/grounded/predictor.pt").is_file()
        assert "result: grounded: generated-family test MAPE" in out and "skipped: real_networks:" in out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "0"], "--minutes must be a positive number, got 0.0"),
    (["--minutes", "nan"], "--minutes must be a positive number, got nan"),
    (["--dry-run", "--ship"],
     "--ship writes into nas_predictor/pretrained/; a --dry-run never writes into the repository"),
    (["--dry-run", "--results", "x.json"], "--dry-run writes only into a temporary folder; drop --out-dir / --results"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_bad_arguments_give_one_line_and_exit_2(script, capsys, argv, message):
    assert script.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [f"gpu_latency.py: error: {message}"]


def test_without_a_gpu_a_real_run_says_so_and_touches_nothing(script, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = _state(REPO_OUTPUTS)
    assert script.main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "sees no CUDA GPU; run this on a lent GPU machine, or with --dry-run" in err[0]
    assert _state(REPO_OUTPUTS) == before


def test_undefined_figures_become_null_not_nan(script):
    assert script.undefined_as_null({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}) == \
        {"a": None, "b": [1.0, None], "c": "x"}


def test_train_only_on_empty_folders_labels_nothing_and_says_why(script, capsys):
    assert script.main(["--dry-run", "--train-only", "--keep"]) == 0
    out = capsys.readouterr().out
    folder = Path(re.search(r"dry run kept in (\S+)", out).group(1))
    try:
        session = _strict((folder / "latency_gpu.json").read_text())["sessions"][-1]
        assert session["stages"] == [] and not (folder / "latency_dataset").exists()
        assert session["skipped"]["networks"] == "--train-only: no labelling this session"
        assert session["skipped"]["all models"] == "no network label yet"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
