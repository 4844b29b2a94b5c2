"""`nas-predictor search`: outputs, resume, the predictions-only mode, errors."""

from __future__ import annotations

import json

import pytest

from nas_predictor.cli import main


def test_search_writes_history_summary_and_plots_and_resumes(tmp_path, data_dir, capsys):
    out = tmp_path / "s"
    args = ["search", "--strategy", "evolution", "--budget", "12", "--max-latency-ms", "10", "--setting",
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
    assert "strategy_params.population of evolution must be at least 1, got 0" in capsys.readouterr().err
    assert main(["search", "--set", "strategy_params.population=3", "--strategy", "evolution",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "evolution needs 1 <= sample_size (5) <= population (3)" in capsys.readouterr().err
    assert main(["search", "--set", "bugdet=3", "--out", str(tmp_path / "y")]) == 2
    assert "unknown config key 'bugdet'" in capsys.readouterr().err
    assert main(["search", "--max-latency-ms", "5", "--setting", "titan_rtx_1", "--latency-source", "table",
                 "--latency-calibrate", "t.csv", "--out", str(tmp_path / "z")]) == 2
    assert "latency_calibrate rescales a latency predictor" in capsys.readouterr().err
    assert main(["search", "--max-latency-ms", "5", "--setting", "nearest", "--out", str(tmp_path / "n")]) == 2
    assert "latency_setting nearest is the predictor setting closest to your timings" in capsys.readouterr().err


def test_latency_calibrate_puts_the_rescaled_predictor_behind_the_bound(tmp_path, data_dir):
    import torch

    from nas_predictor.latency_domain import assess_latency
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx
    from nas_predictor.predictor import load_predictor
    from strategies.assemble import assemble_search
    from strategies.config import load_search_config
    from strategies.constraints import PredictedLatency

    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), (1, 3, 32, 32), tmp_path / "m.onnx")
    # the map is fitted on what the search reports: for this one-conv net (outside the training range)
    # the FLOPs/memory fallback, not the network's own output
    raw = assess_latency(load_predictor("latency-help-b1"), [onnx_to_graph(tmp_path / "m.onnx")],
                         "titan_rtx_1")[0].predicted_ms
    (tmp_path / "t.csv").write_text(f"m.onnx,{0.5 * raw}\n")
    cfg = load_search_config(None, max_latency_ms=5, latency_setting="titan_rtx_1",
                             latency_calibrate=str(tmp_path / "t.csv"))
    # even with HELP's table there (latency_source auto), timings of your device mean the predictor
    source = assemble_search(cfg, str(data_dir)).constraint.source
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


def _one_error_line(err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


def _data_copy(data_dir, tmp_path, edit):
    """A data folder holding the shared NB201 CSV with ``edit`` applied to its lines."""
    lines = (data_dir / "nb201_derived" / "nb201_accuracies.csv").read_text().splitlines()
    folder = tmp_path / "data"
    (folder / "nb201_derived").mkdir(parents=True)
    (folder / "nb201_derived" / "nb201_accuracies.csv").write_text("\n".join(edit(lines)) + "\n")
    return folder


def _nan_label(lines):
    col = lines[0].split(",").index("c10valid_valid_200ep")
    cells = lines[3].split(",")
    cells[col] = "nan"
    return lines[:3] + [",".join(cells)] + lines[4:]


def _no_column(lines):
    col = lines[0].split(",").index("c10valid_valid_200ep")
    return [",".join(c for i, c in enumerate(line.split(",")) if i != col) for line in lines]


@pytest.mark.parametrize("edit, said", [
    (lambda lines: lines[:1], "expected 15625 rows, found 0"),
    (_nan_label, "column 'c10valid_valid_200ep' has 1 non-finite value(s), first at index 2"),
    (_no_column, "no column 'c10valid_valid_200ep'"),
])
def test_named_data_that_cannot_be_used_fails_naming_why(edit, said, data_dir, tmp_path, capsys):
    folder = _data_copy(data_dir, tmp_path, edit)
    out = tmp_path / "s"
    assert main(["search", "--budget", "3", "--quiet", "--out", str(out), "--data-dir", str(folder)]) == 2
    captured = capsys.readouterr()
    _one_error_line(captured.err, f"cannot use the NAS-Bench-201 data you named (--data-dir '{folder}')")
    assert said in captured.err and "no NAS-Bench-201 data found" not in captured.out
    assert not out.exists()  # a search that failed before its first evaluation leaves no folder


def test_named_data_folder_env_and_table_file_are_never_skipped(tmp_path, monkeypatch, capsys):
    args = ["search", "--budget", "3", "--quiet", "--out", str(tmp_path / "s")]
    assert main(args + ["--data-dir", str(tmp_path / "nowhere")]) == 2
    _one_error_line(capsys.readouterr().err, f"--data-dir '{tmp_path / 'nowhere'}' is not a directory")
    monkeypatch.setenv("NAS_PREDICTOR_DATA", str(tmp_path / "elsewhere"))
    assert main(args) == 2
    _one_error_line(capsys.readouterr().err, f"$NAS_PREDICTOR_DATA='{tmp_path / 'elsewhere'}' is not a directory")
    monkeypatch.delenv("NAS_PREDICTOR_DATA")
    import torch

    torch.save(_Unsafe(), tmp_path / "t.pth")
    assert main(args + ["--table-file", str(tmp_path / "t.pth")]) == 2
    _one_error_line(capsys.readouterr().err, "cannot use the NAS-Bench-201 data you named (--table-file): ")


class _Unsafe:
    pass


def test_named_data_without_latency_tables_is_refused_for_the_bound(data_dir, tmp_path, capsys):
    folder = _data_copy(data_dir, tmp_path, lambda lines: lines)  # the accuracies, not HELP's latencies
    assert main(["search", "--budget", "3", "--quiet", "--out", str(tmp_path / "s"), "--data-dir", str(folder),
                 "--max-latency-ms", "5", "--setting", "titan_rtx_1"]) == 2
    _one_error_line(capsys.readouterr().err, "cannot use the latency data you named (--data-dir")


@pytest.mark.parametrize("argv, said", [
    (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["--target", "nan"], "argument --target: expected a finite number, got 'nan'"),
    (["--budget", "0"], "argument --budget: must be at least 1, got 0"),
    (["--max-latency-ms", "inf"], "argument --max-latency-ms: expected a finite number, got 'inf'"),
])
def test_bad_search_numbers_are_one_line_and_exit_2(argv, said, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--out", str(tmp_path / "s"), *argv])
    assert exit_.value.code == 2
    _one_error_line(capsys.readouterr().err, said)


@pytest.mark.parametrize("override, said", [
    ("strategy_params.top_k=abc", "strategy_params.top_k of predictor must be an integer, got 'abc'"),
    ("strategy_params.top_k=-2", "strategy_params.top_k of predictor must be at least 1, got -2"),
    ("key=[1", "--set key: the value '[1' is not valid YAML"),
    ("seed=-1", "config key 'seed'"),
    ("target=.nan", "config key 'target': Input should be a finite number"),
])
def test_bad_overrides_fail_before_the_first_evaluation(override, said, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["search", "--budget", "25", "--quiet", "--out", str(out), "--set", override]) == 2
    _one_error_line(capsys.readouterr().err, said)
    assert not (out / "history.jsonl").exists()


def test_a_second_search_on_the_same_out_fails_at_once_naming_the_holder(tmp_path, capsys):
    import filelock

    out = tmp_path / "s"
    out.mkdir()
    args = ["search", "--budget", "3", "--quiet", "--oracle", "predictor", "--strategy", "random", "--out", str(out)]
    with filelock.FileLock(str(out / ".search.lock")):  # as another process would hold it
        (out / ".search.lock.holder").write_text(json.dumps({"pid": 4242, "host": "node7", "since": 0,
                                                             "command": "nas-predictor search"}))
        assert main(args) == 2
        err = capsys.readouterr().err
        _one_error_line(err, f"search folder {out} is in use by another process (pid 4242 on node7")
        assert f"lock file {(out / '.search.lock').absolute()}: wait for it to finish" in err
        assert not (out / "history.jsonl").exists()
    assert main(args) == 0  # once it is free, the search runs, and a bigger budget resumes it
    assert main(args[:2] + ["5"] + args[3:]) == 0
    assert "resumed: 3 evaluations" in capsys.readouterr().out
    assert not (out / ".search.lock.holder").exists()


def test_search_json_is_strict(tmp_path, capsys):
    assert main(["search", "--budget", "3", "--quiet", "--oracle", "predictor", "--strategy", "random", "--json",
                 "--out", str(tmp_path / "s")]) == 0

    def refuse(token):
        raise AssertionError(f"non-finite {token} in the output")

    summary = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert summary["evaluations"] == 3
    json.loads((tmp_path / "s" / "summary.json").read_text(), parse_constant=refuse)


def test_the_old_latency_device_flag_and_key_still_work_and_warn(tmp_path, capsys):
    """--latency-device (now --setting) and the config key latency_device (now latency_setting) give the same
    config, with a warning on stderr; --help shows only the new names."""
    from nas_predictor.cli import build_parser
    from strategies.cli import _config

    parser = build_parser()
    base = ["search", "--max-latency-ms", "9", "--oracle", "predictor"]
    new = _config(parser.parse_args([*base, "--setting", "titan_rtx_1"]))
    assert capsys.readouterr().err == ""
    old = _config(parser.parse_args([*base, "--latency-device", "titan_rtx_1"]))
    assert old == new and old.latency_setting == "titan_rtx_1"
    assert capsys.readouterr().err == ("nas-predictor search: warning: --latency-device is deprecated; "
                                       "use --setting\n")
    config = tmp_path / "old.yaml"
    config.write_text("max_latency_ms: 9\noracle: predictor\nlatency_device: titan_rtx_1\n")
    assert _config(parser.parse_args(["search", str(config)])) == new
    assert capsys.readouterr().err == ("nas-predictor search: warning: search config key latency_device is "
                                       "deprecated; use latency_setting\n")
    assert _config(parser.parse_args(["search", str(config), "--setting", "pixel3"])).latency_setting == "pixel3"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "--help"])
    text = capsys.readouterr().out
    assert "--setting" in text and "--latency-device" not in text


def test_the_runner_locks_the_name_the_torch_free_module_gives():
    """strategies.names is the one home of the lock name (--help reads it without importing torch)."""
    from strategies import names, runner

    assert runner.LOCK_NAME is names.LOCK_NAME


def test_a_shared_search_from_the_command_line_and_its_misuse(tmp_path, data_dir, capsys):
    """`search --storage --study`: two workers one after the other share one study on a journal file."""
    log = str(tmp_path / "study.log")
    argv = ["search", "--strategy", "random", "--budget", "6", "--storage", log, "--study", "s", "--json", "--quiet"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["completed"] == 6 and first["evaluated_here"] == 6 and first["best"]["arch"]
    assert main(argv) == 0  # a second worker joins a finished search: nothing left to evaluate
    assert json.loads(capsys.readouterr().out)["evaluated_here"] == 0
    assert main(["search", "--storage", log]) == 2
    assert "--storage and --study go together" in capsys.readouterr().err
    assert main(["search", "--storage", log, "--study", "s", "--out", str(tmp_path / "o")]) == 2
    assert main(["search", "--storage", "redis://x", "--study", "s"]) == 2
    assert "expected sqlite" in capsys.readouterr().err
