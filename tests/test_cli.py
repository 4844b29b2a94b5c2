import json

import pytest

from nas_predictor.cli import main

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
TINY = ["--set", "model.hidden=64", "--set", "model.num_blocks=2", "--set", "train.epochs=1",
        "--set", "data.n_train=32", "--set", "data.n_valid=16", "--set", "train.batch_size=16"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run")
    config = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    config.write_text("name: tiny\n")
    assert main(["train", str(config), "--out", str(out), "--quiet", "--data-dir", str(data_dir), *TINY]) == 0
    return out / "predictor.pt"


def test_train_writes_a_checkpoint(tiny_checkpoint):
    assert tiny_checkpoint.is_file()
    assert (tiny_checkpoint.parent / "results.json").is_file()


def test_evaluate_json_reports_tau_over_all_cells(tiny_checkpoint, data_dir, capsys):
    assert main(["evaluate", str(tiny_checkpoint), "--json", "--data-dir", str(data_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_archs"] == 15625
    assert -1 <= result["kendall_tau"] <= 1 and result["seconds"] > 0
    assert -1 <= result["kendall_tau_plain"] <= 1 and result["average_equivalent"] is False


def test_predict_prints_one_line_per_arch(tiny_checkpoint, capsys):
    assert main(["predict", str(tiny_checkpoint), "--arch", ARCH, "--arch", ARCH, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 2 and out[0]["arch"] == ARCH and out[0]["prediction"] == out[1]["prediction"]


def test_predict_can_switch_equivalence_averaging_off(tmp_path, capsys):
    zero = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    dead_conv = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # also computes zero
    assert main(["predict", "nb201-accuracy", "--arch", zero, "--arch", dead_conv, "--json"]) == 0
    averaged = [r["prediction"] for r in json.loads(capsys.readouterr().out)]
    assert averaged[0] == averaged[1]
    assert main(["predict", "nb201-accuracy", "--arch", zero, "--arch", dead_conv, "--json",
                 "--no-equivalence-average"]) == 0
    plain = [r["prediction"] for r in json.loads(capsys.readouterr().out)]
    assert plain[0] != plain[1]


def test_bad_arch_string_exits_2_with_a_message(tiny_checkpoint, capsys):
    assert main(["predict", str(tiny_checkpoint), "--arch", "|conv~0|"]) == 2
    assert "malformed NAS-Bench-201 arch string" in capsys.readouterr().err


def test_unknown_config_key_exits_2_naming_it(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epocs: 3\n")
    assert main(["train", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "unknown config key 'train.epocs'" in capsys.readouterr().err


def test_truncated_checkpoint_exits_2(tiny_checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:1000])
    assert main(["predict", str(broken), "--arch", ARCH]) == 2
    assert "truncated" in capsys.readouterr().err


def test_list_shows_pretrained(capsys):
    assert main(["list"]) == 0
    assert "nb201-accuracy" in capsys.readouterr().out


def test_distill_writes_a_compact_predictor(tiny_checkpoint, tmp_path, data_dir, capsys):
    out = tmp_path / "compact"
    args = ["distill", str(tiny_checkpoint), "--out", str(out), "--hidden", "32", "--blocks", "1",
            "--epochs", "1", "--max-archs", "300", "--quiet", "--data-dir", str(data_dir)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (out / "predictor.pt").is_file() and (out / "results.json").is_file()
    assert -1 <= summary["student_tau"] <= 1
    assert main(["predict", str(out / "predictor.pt"), "--arch", ARCH]) == 0


def test_evaluate_on_an_official_pth_file(tiny_checkpoint, tmp_path, capsys):
    from tests.nas_predictor.data.nb201_synthetic import write_tiny_nb201_pth

    archs = [ARCH, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
             "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"]
    pth = tmp_path / "NAS-Bench-201-tiny.pth"
    write_tiny_nb201_pth(pth, archs, [[90.0], [10.0], [85.0]], [[91.0], [10.0], [86.0]], seeds=[[777]] * 3,
                         params_mb=[1.0, 0.1, 0.5])
    assert main(["evaluate", str(tiny_checkpoint), "--table", str(pth), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_archs"] == 3 and result["target"] == "c10_test_200ep"


def test_latency_gate_exit_codes(tmp_path, data_dir, capsys):
    import json

    import torch

    from nas_predictor.cli import main
    from nas_predictor.config import load_config
    from nas_predictor.latency_experiment import run_latency_experiment
    from nas_predictor.onnx.export import export_onnx

    out = tmp_path / "lat"
    cfg = load_config(None, ["model.task=latency", "model.hidden=32", "train.epochs=2", "data.families=[nasbench201]",
                             "data.max_per_family=10", f"data.cache_dir={tmp_path / 'cache'}",
                             "data.setting=[titan_rtx_1, gold_6226]"])  # a two-device predictor
    run_latency_experiment(cfg, out, str(data_dir), progress=False)
    model = tmp_path / "net.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()), (1, 3, 32, 32), model)
    predictor = str(out / "predictor.pt")
    capsys.readouterr()
    assert main(["latency", str(model), "--predictor", predictor, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["results"]
    assert row["predicted_ms"] > 0 and row["batch_size"] == 1 and "pass" not in row
    assert row["setting"] == "titan_rtx_1"  # the first setting by default
    # training recorded what the predictor saw: a one-conv net is judged outside it, not "unchecked"
    assert row["in_distribution"] is False and row["reasons"]
    assert main(["latency", str(model), "--predictor", predictor, "--setting", "gold_6226", "--json"]) == 0
    [cpu_row] = json.loads(capsys.readouterr().out)["results"]
    assert cpu_row["setting"] == "gold_6226" and cpu_row["predicted_ms"] != row["predicted_ms"]
    assert main(["latency", str(model), "--predictor", predictor, "--setting", "pixel3"]) == 2
    assert "no setting 'pixel3'" in capsys.readouterr().err
    # a predictor trained here carries its training domain; a one-conv net lies far outside it, so a
    # verdict on it is UNSURE (exit 3) unless the user accepts that
    assert main(["latency", str(model), "--predictor", predictor, "--max-ms", "1e6"]) == 3
    assert "UNSURE" in capsys.readouterr().out
    assert main(["latency", str(model), "--predictor", predictor, "--max-ms", "1e6", "--allow-unsure"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["latency", str(model), "--predictor", predictor, "--max-ms", "1e-6", "--allow-unsure"]) == 1
    assert "FAIL" in capsys.readouterr().out
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["latency", str(model), str(bad), "--predictor", predictor, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert len(report["results"]) == 1 and "bad.onnx" in report["errors"][0]["error"]
    # an accuracy predictor is refused with a clear message
    assert main(["latency", str(model), "--predictor", "nb201-accuracy-compact"]) == 2
    assert "not a latency predictor" in capsys.readouterr().err


def test_latency_calibrate_rescales_by_the_median_measured_ratio(tmp_path, capsys):
    import torch

    from nas_predictor.onnx.export import export_onnx

    models = []
    for width in (8, 16, 32):
        models.append(tmp_path / f"net{width}.onnx")
        export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU()), (1, 3, 32, 32), models[-1])
    args = ["latency", *map(str, models), "--predictor", "latency-titan_rtx_1", "--json"]
    assert main(args) == 0
    raw = {r["model"]: r["predicted_ms"] for r in json.loads(capsys.readouterr().out)["results"]}
    # the user's device runs these 2x, 3x and 5x slower than predicted: the factor is the median, 3
    measured = tmp_path / "measured.csv"
    measured.write_text("model,ms\n" + "".join(f"{m.name},{raw[str(m)] * k}\n" for m, k in zip(models, (2, 3, 5))))
    assert main([*args, "--calibrate", str(measured)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calibration"]["scale"] == pytest.approx(3.0, rel=1e-4)  # float32 batches: 6th digit
    assert report["calibration"]["num_measured"] == 3
    for row in report["results"]:
        assert row["unscaled_ms"] == pytest.approx(raw[row["model"]], rel=1e-4)
        assert row["predicted_ms"] == pytest.approx(3.0 * raw[row["model"]], rel=1e-4)
    # the gate judges the rescaled latency
    budget = 2.0 * max(raw.values())
    assert main(["latency", str(models[-1]), "--predictor", "latency-titan_rtx_1", "--max-ms", str(budget),
                 "--allow-unsure"]) == 0
    capsys.readouterr()
    assert main(["latency", str(models[-1]), "--predictor", "latency-titan_rtx_1", "--max-ms", str(budget),
                 "--calibrate", str(measured), "--allow-unsure"]) == 1
    out = capsys.readouterr().out
    assert "rescaled x3.000" in out and "FAIL" in out
    # a bad calibration file stops the gate with its name, rather than gating unscaled
    measured.write_text(f"{models[0].name},-1\n")
    assert main([*args, "--calibrate", str(measured)]) == 2
    assert "measured.csv:1: latency must be a positive number" in capsys.readouterr().err


def test_latency_calibrate_fits_a_power_law_for_a_device_of_another_kind(tmp_path, capsys):
    import torch

    from nas_predictor.onnx.export import export_onnx

    models = []
    for i, width in enumerate((4, 8, 12, 16, 24, 32, 48, 64, 96)):
        models.append(tmp_path / f"net{width}.onnx")
        layers = [torch.nn.Conv2d(3, width, 3)] + [torch.nn.Conv2d(width, width, 3, padding=1)] * (i % 3)
        export_onnx(torch.nn.Sequential(*layers), (1, 3, 32, 32), models[-1])
    args = ["latency", *map(str, models), "--predictor", "latency-help-b1", "--setting", "gold_6226", "--json"]
    assert main(args) == 0
    raw = {r["model"]: r["predicted_ms"] for r in json.loads(capsys.readouterr().out)["results"]}
    # a device on which bigger networks cost relatively more: measured = 0.5 * predicted^1.5
    measured = tmp_path / "measured.csv"
    measured.write_text("".join(f"{m},{0.5 * raw[str(m)] ** 1.5}\n" for m in models))
    assert main([*args, "--calibrate", str(measured)]) == 0  # auto: 9 timings, the power law predicts them
    report = json.loads(capsys.readouterr().out)
    assert report["calibration"]["fit"] == "power"
    # float32 predictions of the same graphs move in the 6th digit between a batch of one and of nine
    assert report["calibration"]["exponent"] == pytest.approx(1.5, rel=1e-4)
    for row in report["results"]:
        assert row["predicted_ms"] == pytest.approx(0.5 * raw[row["model"]] ** 1.5, rel=1e-4)
    assert main([*args[:-1], "--calibrate", str(measured), "--calibrate-fit", "scale"]) == 0
    assert "rescaled x" in capsys.readouterr().out
    assert main([*args[:-1], "--calibrate", str(measured)]) == 0
    assert "mapped to 0.500 * predicted^1.500: a power law fitted to 9 measured models" in capsys.readouterr().out


def test_latency_setting_nearest_is_the_setting_that_fits_the_timings(tmp_path, capsys):
    import torch

    from nas_predictor.onnx.export import export_onnx

    models = []
    for width in (8, 16, 32, 64):
        models.append(tmp_path / f"net{width}.onnx")
        export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.Conv2d(width, width, 3)),
                    (1, 3, 64, 64), models[-1])
    base = ["latency", *map(str, models), "--predictor", "latency-help-b1", "--json"]
    assert main([*base, "--setting", "samsung_a50"]) == 0
    phone = {r["model"]: r["predicted_ms"] for r in json.loads(capsys.readouterr().out)["results"]}
    measured = tmp_path / "measured.csv"
    measured.write_text("".join(f"{m},{1.5 * phone[str(m)]}\n" for m in models))  # a phone 1.5x slower
    assert main([*base, "--setting", "nearest", "--calibrate", str(measured), "--calibrate-fit", "scale"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calibration"]["setting"] == "samsung_a50"
    assert report["calibration"]["scale"] == pytest.approx(1.5, rel=1e-4)
    assert {r["setting"] for r in report["results"]} == {"samsung_a50"}
    assert main([*base, "--setting", "nearest"]) == 2
    assert "give calibrate a timings file (--calibrate TIMINGS)" in capsys.readouterr().err


def _one_error_line(err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


def test_empty_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert main(["predict", str(tmp_path / "empty.pt"), "--arch", ARCH]) == 2
    _one_error_line(capsys.readouterr().err, "(the file is empty): it is truncated, corrupt")


def test_nan_weight_checkpoint_is_refused_not_predicted(tmp_path, capsys):
    import torch

    from nas_predictor.predictor import load_predictor

    predictor = load_predictor("nb201-accuracy")
    with torch.no_grad():
        next(t for t in predictor.models[0].parameters() if t.dim() == 2).view(-1)[0] = float("nan")
    predictor.save(tmp_path / "nan.pt")
    assert main(["predict", str(tmp_path / "nan.pt"), "--arch", ARCH, "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    _one_error_line(out.err, "holds 1 NaN or infinite value(s)")


def test_predict_archs_file_errors(tmp_path, capsys):
    assert main(["predict", "nb201-accuracy", "--archs-file", str(tmp_path / "none.txt")]) == 2
    _one_error_line(capsys.readouterr().err, "none.txt': cannot read it (No such file or directory)")
    (tmp_path / "blank.txt").write_text("\n \n")
    assert main(["predict", "nb201-accuracy", "--archs-file", str(tmp_path / "blank.txt")]) == 2
    _one_error_line(capsys.readouterr().err, "holds no architecture (one per line)")


def test_train_set_with_broken_yaml_is_one_line(tmp_path, capsys):
    assert main(["train", "--set", "key=[1", "--out", str(tmp_path / "o"), str(tmp_path / "c.yaml")]) == 2
    _one_error_line(capsys.readouterr().err, "config file")  # the missing file is named first
    (tmp_path / "c.yaml").write_text("name: c\n")
    assert main(["train", "--set", "key=[1", "--out", str(tmp_path / "o"), str(tmp_path / "c.yaml")]) == 2
    _one_error_line(capsys.readouterr().err, "--set key: the value '[1' is not valid YAML")


@pytest.mark.parametrize("argv, said", [
    (["evaluate", "nb201-accuracy", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["evaluate", "nb201-accuracy", "--batch-size", "abc"], "argument --batch-size: expected an integer, got 'abc'"),
    (["distill", "nb201-accuracy", "--out", "x", "--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
    (["distill", "nb201-accuracy", "--out", "x", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["measure", "m.onnx", "--batch", "-3"], "argument --batch: must be at least 1, got -3"),
    (["measure", "m.onnx", "--core", "-2"], "argument --core: must be at least -1, got -2"),
])
def test_bad_numbers_are_one_usage_line_and_exit_2(argv, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    _one_error_line(capsys.readouterr().err, said)


def test_predict_with_a_latency_predictor_says_it_reads_onnx_files(capsys):
    assert main(["predict", "latency-help-b1", "--arch", ARCH]) == 2
    _one_error_line(capsys.readouterr().err, "latency-help-b1 is a latency predictor of whole networks: it reads "
                                             "ONNX files, not architecture strings (use `nas-predictor latency")
    from nas_predictor import load_pretrained
    from nas_predictor.errors import ConfigError

    with pytest.raises(ConfigError, match="latency predictor has no search space"):
        load_pretrained("latency-help-b1").predict([ARCH])


def test_list_json_is_every_shipped_card_and_a_pattern_filters_it(capsys):
    from nas_predictor.predictor import list_pretrained, pretrained_info

    assert main(["list", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in cards] == list_pretrained()
    assert all(c == {"name": c["name"], "task": "accuracy", **pretrained_info(c["name"])} for c in cards)
    assert {c["task"] for c in cards} == {"accuracy", "latency"}
    assert main(["list", "latency-help-*", "--json"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)] == ["latency-help-b1", "latency-help-b32"]
    assert main(["list", "no-such-*"]) == 2
    _one_error_line(capsys.readouterr().err, "no shipped predictor matches 'no-such-*'")
