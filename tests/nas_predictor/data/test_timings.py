import json

import pytest

from nas_predictor.data.timings import Timing, read_timings
from nas_predictor.errors import DataError


@pytest.fixture
def models(tmp_path):
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / name).write_bytes(b"")  # only their existence is checked here
    return tmp_path


def test_reads_the_json_of_measure(models, monkeypatch):
    monkeypatch.chdir(models.parent)  # relative paths resolve against the file's folder when not found here
    path = models / "measured.json"
    path.write_text(json.dumps({"provider": "cpu", "errors": [], "results": [
        {"model": "a.onnx", "label_ms": 1.5, "batch_size": 1, "estimator": "ratio_median"},
        {"model": str(models / "b.onnx"), "label_ms": 3.0, "batch_size": 8}]}))
    assert read_timings(path) == [Timing(models / "a.onnx", 1.5, 1), Timing(models / "b.onnx", 3.0, 8)]


def test_reads_csv_with_header_comments_and_optional_batch(models):
    path = models / "measured.csv"
    path.write_text("# trtexec on the target board\nmodel, ms, batch\na.onnx, 2.5\n\nb.onnx,4,32\n")
    assert read_timings(path) == [Timing(models / "a.onnx", 2.5, None), Timing(models / "b.onnx", 4.0, 32)]


@pytest.mark.parametrize("text, message", [
    ("a.onnx,fast\n", r"measured.csv:1: latency 'fast' is not a number"),
    ("a.onnx,2\nb.onnx,0\n", r"measured.csv:2: latency must be a positive number"),
    ("a.onnx,nan\n", "positive number"),
    ("a.onnx\n", "expected 'model,ms' or 'model,ms,batch', got 1 fields"),
    ("a.onnx,2,0\n", "batch must be >= 1"),
    ("missing.onnx,2\n", "missing.onnx not found"),
    ("# nothing\n", "no measurements"),
    ('{"results": [{"model": "a.onnx"}]}', r"results\[0\]: latency None is not a number"),
    ('{"nope": 1}', "expected the JSON of `nas-predictor measure --json`"),
    ('{"results": [', "not valid JSON"),
])
def test_bad_files_name_the_entry(models, text, message):
    path = models / "measured.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_timings(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="timings file .* not found"):
        read_timings(tmp_path / "none.csv")
