"""`nas-predictor search`: outputs, resume, the predictions-only mode, errors."""

from __future__ import annotations

import json

import pytest

from nas_predictor.cli import main


def test_search_writes_history_summary_and_plots_and_resumes(tmp_path, data_dir, capsys):
    out = tmp_path / "s"
    args = ["search", "--strategy", "evolution", "--budget", "12", "--max-latency-ms", "10", "--latency-device",
            "pixel3", "--out", str(out), "--quiet", "--data-dir", str(data_dir), "--top", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "test_accuracy" in text and "measured latency on pixel3" in text
    for name in ("history.jsonl", "summary.json", "best_so_far.png", "pareto.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 12
    assert all(r["latency_ms"] <= 10 for r in summary["top"] + summary["pareto"])
    lines = (out / "history.jsonl").read_text().splitlines()
    assert len(lines) == 13

    assert main(args[:4] + ["20"] + args[5:]) == 0  # a bigger budget extends the same search
    assert "resumed: 12 evaluations" in capsys.readouterr().out
    assert len((out / "history.jsonl").read_text().splitlines()) == 21


def test_predictions_only_search_says_so(tmp_path, capsys):
    args = ["search", "--strategy", "random", "--budget", "3", "--oracle", "predictor", "--out", str(tmp_path / "p"),
            "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "PREDICTIONS of the shipped predictors" in text and "predicted acc" in text


def test_bad_search_config_exits_2(tmp_path, capsys):
    assert main(["search", "--set", "strategy_params.population=0", "--strategy", "evolution",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "evolution needs 1 <= sample_size" in capsys.readouterr().err
    assert main(["search", "--set", "bugdet=3", "--out", str(tmp_path / "y")]) == 2
    assert "unknown config key 'bugdet'" in capsys.readouterr().err
    assert main(["search", "--max-latency-ms", "5", "--latency-device", "titan_rtx_1", "--latency-source", "table",
                 "--latency-calibrate", "t.csv", "--out", str(tmp_path / "z")]) == 2
    assert "latency_calibrate rescales a latency predictor" in capsys.readouterr().err
    assert main(["search", "--max-latency-ms", "5", "--latency-device", "nearest", "--out", str(tmp_path / "n")]) == 2
    assert "latency_device nearest is the predictor setting closest to your timings" in capsys.readouterr().err


def test_latency_calibrate_puts_the_rescaled_predictor_behind_the_bound(tmp_path, data_dir):
    import torch

    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.predictor import load_predictor
    from search_spaces.onnx_export import export_onnx
    from strategies.config import load_search_config
    from strategies.constraints import PredictedLatency
    from strategies.setup import build_search

    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), (1, 3, 32, 32), tmp_path / "m.onnx")
    raw = float(load_predictor("latency-help-b1").predict_latency([onnx_to_graph(tmp_path / "m.onnx")], "titan_rtx_1")[0])
    (tmp_path / "t.csv").write_text(f"m.onnx,{0.5 * raw}\n")
    cfg = load_search_config(None, max_latency_ms=5, latency_device="titan_rtx_1",
                             latency_calibrate=str(tmp_path / "t.csv"))
    # even with HELP's table there (latency_source auto), timings of your device mean the predictor
    source = build_search(cfg, str(data_dir)).constraint.source
    assert isinstance(source, PredictedLatency) and source.scale == pytest.approx(0.5, rel=1e-4)


def test_nb101_search_on_the_shared_subset(tmp_path, data_dir, capsys):
    out = tmp_path / "nb101"
    args = ["search", "--space", "nb101", "--strategy", "evolution", "--oracle", "table", "--budget", "15",
            "--out", str(out), "--quiet", "--data-dir", str(data_dir), "--top", "3"]
    assert main(args) == 0
    assert "NAS-Bench-101 table" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    # cells outside the 292 of the subset are failed evaluations, and the search goes on
    assert summary["evaluations"] == 15 and summary["failed"] < 15
    assert summary["top"][0]["value"] > 80


def test_nb101_search_without_a_table_says_what_to_give(tmp_path, capsys):
    assert main(["search", "--space", "nb101", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "nasbench_only108.tfrecord" in capsys.readouterr().err
