"""The JSONL search history: appended per evaluation, torn last line dropped, foreign file refused."""

from __future__ import annotations

import json

import pytest

from nas_predictor.errors import ConfigError, DataError
from strategies.history import SearchHistory

IDENTITY = {"space": "nasbench201", "strategy": "random", "seed": 0}


def _record(i):
    return {"index": i, "arch": f"a{i}", "value": float(i), "status": "ok"}


def test_records_survive_a_reopen(tmp_path):
    path = tmp_path / "h.jsonl"
    h = SearchHistory(path, IDENTITY)
    for i in range(3):
        h.add(_record(i))
    again = SearchHistory(path, IDENTITY)
    assert [r["arch"] for r in again] == ["a0", "a1", "a2"]
    assert again.get("a1")["value"] == 1.0


def test_a_line_torn_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "h.jsonl"
    h = SearchHistory(path, IDENTITY)
    h.add(_record(0))
    with path.open("a") as f:
        f.write('{"index": 1, "arch": "a1", "val')
    again = SearchHistory(path, IDENTITY)
    assert len(again) == 1
    again.add(_record(1))  # the file is readable again after the repair
    assert [json.loads(line)["arch"] for line in path.read_text().splitlines()[1:]] == ["a0", "a1"]


def test_damage_inside_the_file_is_an_error(tmp_path):
    path = tmp_path / "h.jsonl"
    h = SearchHistory(path, IDENTITY)
    h.add(_record(0))
    path.write_text(path.read_text() + "garbage\n" + json.dumps(_record(1)) + "\n")
    with pytest.raises(DataError, match="damaged"):
        SearchHistory(path, IDENTITY)


def test_a_different_search_is_refused(tmp_path):
    path = tmp_path / "h.jsonl"
    SearchHistory(path, IDENTITY).add(_record(0))
    with pytest.raises(ConfigError, match="differs in: seed"):
        SearchHistory(path, {**IDENTITY, "seed": 1})
