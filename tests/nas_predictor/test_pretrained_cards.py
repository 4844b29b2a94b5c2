"""The shipped predictors' cards: typed, read from the manifest, the one place the loader and `list` look."""

from __future__ import annotations

import json

import pytest

from nas_predictor import pretrained_cards
from nas_predictor.errors import CheckpointError


def test_every_card_is_its_manifest_entry_with_a_file_that_exists():
    manifest = json.loads(pretrained_cards.MANIFEST.read_text())
    found = pretrained_cards.cards()
    assert [c.name for c in found] == sorted(manifest) == pretrained_cards.names()
    for card in found:
        assert card.info == manifest[card.name] and card.file.is_file() and len(card.sha256) == 64
        assert card.task in ("accuracy", "latency") and card.description
        assert card.as_dict() == {"name": card.name, "task": card.task, **manifest[card.name]}


def test_latency_cards_name_their_settings_and_accuracy_cards_none():
    by_name = {c.name: c for c in pretrained_cards.cards()}
    assert by_name["latency-titan_rtx_1"].task == "latency" and by_name["latency-titan_rtx_1"].setting == "titan_rtx_1"
    assert by_name["latency-help-b1"].setting is None and "titan_rtx_1" in by_name["latency-help-b1"].info["settings"]
    assert by_name["nb201-accuracy"].task == "accuracy" and by_name["nb201-accuracy"].setting is None


def test_a_pattern_filters_and_an_unknown_name_lists_what_ships():
    assert [c.name for c in pretrained_cards.cards("nb201-*")] == ["nb201-accuracy", "nb201-accuracy-compact"]
    with pytest.raises(CheckpointError, match=r"no pretrained predictor 'nope'; available: .*nb201-accuracy"):
        pretrained_cards.card("nope")


def test_the_manifest_is_written_whole_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained_cards, "MANIFEST", tmp_path / "manifest.json")
    assert pretrained_cards.cards() == []
    pretrained_cards.write_manifest({"x": {"file": "x.pt", "sha256": "0" * 64, "description": "d"}})
    assert [(c.name, c.task) for c in pretrained_cards.cards()] == [("x", "accuracy")]
    assert not list(tmp_path.glob("*.tmp*")), "an atomic write leaves no temporary file"
