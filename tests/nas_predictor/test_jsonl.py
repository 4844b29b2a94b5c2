import json

import pytest

from nas_predictor.errors import DataError
from nas_predictor.jsonl import append_jsonl, read_jsonl


def test_append_then_read(tmp_path):
    path = tmp_path / "a.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"b": 2})
    with pytest.raises(DataError, match="refusing to write the non-finite number nan at b"):
        append_jsonl(path, {"b": float("nan")})
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]


def test_a_line_cut_off_by_a_kill_is_dropped_and_the_file_repaired(tmp_path):
    path = tmp_path / "a.jsonl"
    append_jsonl(path, {"a": 1})
    with path.open("a") as handle:
        handle.write('{"b": [1, 2')  # the write a kill interrupted
    assert read_jsonl(path) == [{"a": 1}]
    assert path.read_text() == '{"a": 1}\n'
    append_jsonl(path, {"c": 3})
    assert read_jsonl(path) == [{"a": 1}, {"c": 3}]


def test_a_lost_final_newline_is_restored(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}')
    assert read_jsonl(path) == [{"a": 1}]
    append_jsonl(path, {"b": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": 2}]


def test_damage_before_the_last_line_is_an_error_and_nothing_is_cut(tmp_path):
    path = tmp_path / "a.jsonl"
    text = '{"a": 1}\nnot json\n{"c": 3}\n'
    path.write_text(text)
    with pytest.raises(DataError, match=r"a.jsonl:2"):
        read_jsonl(path)
    assert path.read_text() == text
