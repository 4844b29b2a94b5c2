"""`nas-predictor measure`: exit codes, output lines and the JSON shape (quick protocol)."""

import json

import onnxruntime as ort
import pytest

from nas_predictor.cli import main

from .conftest import ContextHost


@pytest.fixture
def tiny_file(tmp_path, tiny_weight_free):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_weight_free)
    return path


def test_measure_prints_one_line_per_model(tiny_file, quick_default_protocol, capsys):
    assert main(["measure", str(tiny_file), str(tiny_file), "--batch", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and all(" ms  " in line and str(tiny_file) in line for line in lines)
    assert all("batch 2" in line and "weights filled" in line and "pairs" in line for line in lines)


def test_measure_json_has_every_record_and_a_bad_file_exits_2(tiny_file, tmp_path, quick_default_protocol, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert main(["measure", str(tiny_file), str(bad), str(tiny_file), "--json", "--core", "-1"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout is one JSON object: no progress bar with --json
    assert out["provider"] == "cpu" and len(out["results"]) == 2
    assert out["errors"] == [{"model": str(bad), "error": out["errors"][0]["error"]}]
    assert "bad.onnx" in out["errors"][0]["error"]
    record = out["results"][0]
    for key in ("label_ms", "estimator", "raw", "robust", "reference_fast_ms", "weights_filled", "batch_size",
                "onnxruntime_version", "cpu_model", "timestamp", "fallback"):
        assert key in record
    assert record["core"] is None and record["label_ms"] > 0 and record["raw"]["pairs_total"] > 0


def test_torch_cuda_on_an_onnx_file_explains_itself(tiny_file, capsys):
    assert main(["measure", str(tiny_file), "--provider", "torch-cuda"]) == 2
    err = capsys.readouterr().err
    assert "measure_torch_cuda" in err and "dataset builder" in err


def test_missing_gpu_provider_exits_2_naming_it(tiny_file, capsys):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider installed here")
    assert main(["measure", str(tiny_file), "--provider", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDAExecutionProvider" in err and "onnxruntime-gpu" in err


def test_bad_core_exits_2(tiny_file, capsys):
    assert main(["measure", str(tiny_file), "--core", "4096"]) == 2
    assert "core 4096 is not available" in capsys.readouterr().err


def test_a_label_that_keeps_contradicting_its_runs_is_one_error_line_and_exit_2(tiny_file, injected, capsys):
    # injected timings: a long model whose min-of-pass label stays at 135 ms while most runs take 50 ms
    slow, fast = ([135.0] * 5, [10.0] * 5), ([50.0] * 50, [10.0] * 50)
    injected(10.0, ContextHost({}, fixed={0: [slow, slow, fast]}))  # the CLI's own Measurer is patched alike
    assert main(["measure", str(tiny_file), "--json"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["results"] == [] and out["errors"][0]["model"] == str(tiny_file)
    assert out["errors"][0]["error"].startswith(f"{tiny_file}: its min-of-pass label 135 ms exceeds the median of "
                                                "all its target runs (50 ms)")
    assert "after 6 passes, so no label is stored" in out["errors"][0]["error"]
