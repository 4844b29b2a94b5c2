"""The `latency` command: a confidence on every prediction, and the gate's exit statuses."""

import io
import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nas_predictor.cli import main
from nas_predictor.latency_domain import DOMAIN_KEY, NO_DOMAIN_REASON, assess_latency, build_latency_domain
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.predictor import Predictor, load_pretrained


def export_stack(path, blocks: int, tail: nn.Module | None = None):
    """A stem and ``blocks`` Conv-BN-ReLU blocks at 8x8, weight-free, as the training graphs were exported."""
    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    if tail is not None:
        layers.append(tail)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(*layers).eval(), (torch.zeros(1, 3, 8, 8),), buffer, dynamo=False,
                          opset_version=17, export_params=False, do_constant_folding=False)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Predictors and models: ``checked`` knows a domain of stacks of 4-8 blocks, ``unchecked`` none."""
    root = tmp_path_factory.mktemp("cli_latency")
    shipped = load_pretrained("latency-help-b1")
    train = [export_stack(root / f"train{n}.onnx", n) for n in (4, 6, 8)]
    graphs = [onnx_to_graph(p) for p in train]
    lat = np.column_stack([shipped.predict_latency(graphs, s) for s in shipped.settings])
    meta = {**shipped.meta, DOMAIN_KEY: build_latency_domain(graphs, lat, shipped.settings, "stacks of 4-8")}
    meta.pop("default_setting", None)
    checked = Predictor(meta, shipped.models).save(root / "checked.pt")
    old = {k: v for k, v in meta.items() if k != DOMAIN_KEY}
    unchecked = Predictor(old, shipped.models).save(root / "unchecked.pt")
    return {"checked": str(checked), "unchecked": str(unchecked), "inside": str(train[1]),
            "deep": str(export_stack(root / "deep.onnx", 80)),
            "softmax": str(export_stack(root / "softmax.onnx", 6, nn.Softmax(dim=1))), "root": root}


def strict_json(text: str):
    """JSON that has no NaN / Infinity token (what allow_nan=False guarantees)."""
    def refuse(token):
        raise AssertionError(f"non-finite JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def run(capsys, *args):
    code = main(["latency", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_rows_carry_the_confidence(files, capsys):
    code, out, _ = run(capsys, files["inside"], files["deep"], files["softmax"], "--predictor", files["checked"],
                       "--json")
    assert code == 0
    inside, deep, softmax = strict_json(out)["results"]
    assert inside["in_distribution"] is True and inside["reasons"] == [] and inside["source"] == "model"
    assert inside["predicted_ms"] == inside["model_ms"] and inside["fallback_ms"] > 0
    assert deep["in_distribution"] is False and deep["source"] == "fallback"
    assert deep["predicted_ms"] == deep["fallback_ms"] != deep["model_ms"]
    assert deep["reasons"][0].startswith(f"nodes {deep['nodes']} far outside training range 16-28")
    assert deep["depth"] == deep["nodes"]  # a chain
    assert softmax["in_distribution"] is False
    assert softmax["reasons"] == ["op types never seen in training: Softmax x1"]


def test_text_marks_unsure_networks_with_their_first_reason(files, capsys):
    code, out, _ = run(capsys, files["inside"], files["deep"], "--predictor", files["checked"])
    assert code == 0
    inside, deep = out.splitlines()
    assert "UNSURE" not in inside
    assert "UNSURE: nodes 244 far outside training range 16-28 (FLOPs/memory fallback; the network said" in deep


def test_gate_exit_statuses(files, capsys):
    checked = ["--predictor", files["checked"]]
    code, out, _ = run(capsys, files["inside"], *checked, "--max-ms", "1e6")
    assert code == 0 and "PASS" in out
    code, out, _ = run(capsys, files["inside"], *checked, "--max-ms", "1e-6")
    assert code == 1 and "FAIL" in out
    # a verdict on an out-of-distribution network: 3, even when another model fails its budget
    code, out, err = run(capsys, files["inside"], files["deep"], *checked, "--max-ms", "1e-6")
    assert code == 3 and "FAIL" in out and "UNSURE" in out
    assert "1 verdict(s) rest on predictions outside the predictor's training domain" in err
    assert f"({files['deep']}): exit 3 (--allow-unsure accepts them)" in err
    code, _, _ = run(capsys, files["inside"], files["deep"], *checked, "--max-ms", "1e-6", "--allow-unsure")
    assert code == 1
    code, _, _ = run(capsys, files["deep"], *checked, "--max-ms", "1e6", "--allow-unsure")
    assert code == 0
    # without a budget there is no verdict to rest on anything: 0
    code, _, _ = run(capsys, files["deep"], *checked)
    assert code == 0
    # an error outranks everything, and the other models' results are still printed
    bad = files["root"] / "bad.onnx"
    bad.write_bytes(b"not onnx")
    code, out, _ = run(capsys, files["deep"], bad, *checked, "--max-ms", "1e6", "--json")
    report = json.loads(out)
    assert code == 2 and len(report["results"]) == 1 and "bad.onnx" in report["errors"][0]["error"]


def test_a_predictor_without_a_domain_says_so_and_the_gate_is_unsure(files, capsys):
    code, out, _ = run(capsys, files["inside"], "--predictor", files["unchecked"], "--json")
    assert code == 0
    [row] = json.loads(out)["results"]
    assert row["in_distribution"] is None and row["fallback_ms"] is None and row["reasons"] == [NO_DOMAIN_REASON]
    assert row["predicted_ms"] == row["model_ms"] and row["source"] == "model"
    code, out, _ = run(capsys, files["inside"], "--predictor", files["unchecked"], "--max-ms", "1e6")
    assert code == 3 and "PASS" in out and "UNSURE: the predictor carries no training-domain summary" in out
    code, _, _ = run(capsys, files["inside"], "--predictor", files["unchecked"], "--max-ms", "1e6", "--allow-unsure")
    assert code == 0


def test_a_non_finite_prediction_is_an_error_never_printed(files, capsys):
    shipped = Predictor.load(files["checked"])
    shipped.meta["calibration"] = {"scale": 1e308, "shift": 0.0}  # any latency above 1.8 ms overflows to inf
    broken = shipped.save(files["root"] / "overflow.pt")
    code, out, err = run(capsys, files["inside"], "--predictor", broken, "--json")
    assert code == 2
    report = strict_json(out)
    assert report["results"] == [] and "not finite" in report["errors"][0]["error"]
    code, out, err = run(capsys, files["inside"], "--predictor", broken)
    assert code == 2 and out == "" and "not finite" in err


def test_calibration_is_fitted_on_the_reported_estimates(files, capsys):
    models = [files["inside"], files["deep"], files["softmax"]]
    code, out, _ = run(capsys, *models, "--predictor", files["checked"], "--json")
    reported = {r["model"]: r["predicted_ms"] for r in json.loads(out)["results"]}
    measured = files["root"] / "timed.csv"
    measured.write_text("".join(f"{m},{2.0 * reported[m]}\n" for m in models))
    code, out, _ = run(capsys, *models, "--predictor", files["checked"], "--json", "--calibrate", measured)
    assert code == 0
    report = json.loads(out)
    assert report["calibration"]["scale"] == pytest.approx(2.0, rel=1e-5)
    assert [m["source"] for m in report["calibration"]["measured"]] == ["model", "fallback", "fallback"]
    for row in report["results"]:
        assert row["unscaled_ms"] == pytest.approx(reported[row["model"]], rel=1e-5)
        assert row["predicted_ms"] == pytest.approx(2.0 * reported[row["model"]], rel=1e-5)
        assert row["fallback_ms"] is None or math.isfinite(row["fallback_ms"])


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["latency", "--help"])
    text = capsys.readouterr().out
    for line in ("0  every model predicted", "1  with --max-ms: some model over budget", "2  an error",
                 "3  with --max-ms: a PASS/FAIL verdict rests on a prediction outside", "--allow-unsure"):
        assert line in text


@pytest.mark.parametrize("flag, value, message", [("--max-ms", "nan", "argument --max-ms: expected a finite number"),
                                                  ("--max-ms", "-1", "argument --max-ms: must be above 0"),
                                                  ("--batch", "0", "argument --batch: must be at least 1")])
def test_bad_budget_or_batch_is_one_line_and_exit_2(files, capsys, flag, value, message):
    with pytest.raises(SystemExit) as stop:
        main(["latency", files["inside"], "--predictor", files["checked"], flag, value])
    out = capsys.readouterr()
    assert stop.value.code == 2 and out.out == ""
    assert message in out.err and len(out.err.strip().splitlines()) == 1


def test_the_map_is_fitted_on_the_numbers_its_caller_maps(files):
    from nas_predictor.latency_estimator import fit_map_to_measurements

    predictor = Predictor.load(files["checked"])
    models = [files["inside"], files["deep"], files["softmax"]]
    graphs = [onnx_to_graph(m) for m in models]
    estimates = assess_latency(predictor, graphs, "titan_rtx_1")
    timed = files["root"] / "timed_reported.csv"
    timed.write_text("".join(f"{m},{3.0 * e.predicted_ms}\n" for m, e in zip(models, estimates)))
    reported, record = fit_map_to_measurements(timed, predictor, "titan_rtx_1", fit="scale", reported=True)
    assert reported.scale == pytest.approx(3.0, rel=1e-6)
    assert [m["source"] for m in record["measured"]] == ["model", "fallback", "fallback"]
    assert [m["in_distribution"] for m in record["measured"]] == [True, False, False]
    # a caller that maps the network's own outputs gets the map of those (here: ratios 3, 3x fallback/model, ...)
    raw, record = fit_map_to_measurements(timed, predictor, "titan_rtx_1", fit="scale")
    ratios = [3.0 * e.predicted_ms / e.model_ms for e in estimates]
    assert raw.scale == pytest.approx(float(np.median(ratios)), rel=1e-6)
    assert [m["source"] for m in record["measured"]] == ["model"] * 3
    assert [m["predicted_ms"] for m in record["measured"]] == pytest.approx([e.model_ms for e in estimates], rel=1e-6)
