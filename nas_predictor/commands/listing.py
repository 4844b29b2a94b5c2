"""``nas-predictor list``: the shipped pretrained predictors, from their cards (no torch needed)."""

from __future__ import annotations

import argparse

from nas_predictor.cli import print_json
from nas_predictor.errors import ConfigError
from nas_predictor.pretrained_cards import cards


def run(args: argparse.Namespace) -> int:
    found = cards(args.pattern)
    if not found and args.pattern != "*":  # a pattern that matches nothing is a typo more often than a question
        raise ConfigError(f"no shipped predictor matches {args.pattern!r}; `nas-predictor list` shows them all")
    if args.json:
        print_json([c.as_dict() for c in found], indent=2)
        return 0
    for card in found:
        print(f"{card.name:24s} {card.description}")
    return 0
