"""``nas-predictor list``: the shipped pretrained predictors, read from their manifest (no torch needed)."""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path
from typing import Any

from nas_predictor.cli import print_json
from nas_predictor.errors import ConfigError

# the same file nas_predictor.predictor loads checkpoints by; read here directly, since importing the
# predictor module would import torch for a listing
MANIFEST = Path(__file__).resolve().parent.parent / "pretrained" / "manifest.json"


def pretrained_cards(pattern: str = "*") -> list[dict[str, Any]]:
    """One dict per shipped predictor whose name matches ``pattern`` (shell wildcards), by name: its
    manifest entry, with ``name`` and ``task`` (``accuracy`` where the manifest names none)."""
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    return [{"name": name, "task": info.get("task", "accuracy"), **info}
            for name, info in sorted(manifest.items()) if fnmatch.fnmatchcase(name, pattern)]


def run(args: argparse.Namespace) -> int:
    cards = pretrained_cards(args.pattern)
    if not cards and args.pattern != "*":  # a pattern that matches nothing is a typo more often than a question
        raise ConfigError(f"no shipped predictor matches {args.pattern!r}; `nas-predictor list` shows them all")
    if args.json:
        print_json(cards, indent=2)
        return 0
    for card in cards:
        print(f"{card['name']:24s} {card.get('description', '')}")
    return 0
