"""The shipped predictors' cards: one typed entry per name in ``pretrained/manifest.json`` (no torch import).

The manifest is the one record of what ships: the file and its sha256, the task, the device setting(s)
of a latency predictor, and the scores it was shipped with. ``nas_predictor.predictor`` loads checkpoints
by it, ``nas-predictor list`` prints it, the release tools (``tools/ship_*.py``) write it and the report
reads which benchmark run a shipped file came from. They all go through this module.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nas_predictor.errors import CheckpointError
from nas_predictor.io import atomic_write_json

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MANIFEST = PRETRAINED_DIR / "manifest.json"


@dataclass(frozen=True)
class PretrainedCard:
    """One shipped predictor. ``info`` is its whole manifest entry (scores, families, split, ...)."""

    name: str
    info: Mapping[str, Any]

    @property
    def file(self) -> Path:
        return PRETRAINED_DIR / self.info["file"]

    @property
    def sha256(self) -> str:
        return self.info["sha256"]

    @property
    def task(self) -> str:
        """``accuracy`` or ``latency`` (the first accuracy cards predate the field)."""
        return self.info.get("task", "accuracy")

    @property
    def description(self) -> str:
        return self.info.get("description", "")

    @property
    def setting(self) -> str | None:
        """The device setting of a one-setting latency card (a multi-device file shipped for one device)."""
        return self.info.get("setting")

    @property
    def source_checkpoint(self) -> str | None:
        """The training run's checkpoint the shipped file was made from (its folder names the run's model)."""
        return self.info.get("source_checkpoint")

    def as_dict(self) -> dict[str, Any]:
        """The card as ``nas-predictor list --json`` prints it: ``name``, ``task``, then the manifest entry."""
        return {"name": self.name, "task": self.task, **self.info}


def read_manifest() -> dict[str, dict[str, Any]]:
    """The manifest as stored (name -> entry); empty when nothing ships."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}


def write_manifest(manifest: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest atomically (the release tools; a reader never sees half a file)."""
    atomic_write_json(manifest, MANIFEST)


def cards(pattern: str = "*") -> list[PretrainedCard]:
    """The shipped predictors whose names match ``pattern`` (shell wildcards), by name."""
    return [PretrainedCard(name, info) for name, info in sorted(read_manifest().items())
            if fnmatch.fnmatchcase(name, pattern)]


def names() -> list[str]:
    return sorted(read_manifest())


def card(name: str) -> PretrainedCard:
    """The card of ``name``; a CheckpointError listing what ships when there is none."""
    manifest = read_manifest()
    if name not in manifest:
        raise CheckpointError(f"no pretrained predictor {name!r}; available: {', '.join(sorted(manifest)) or 'none'}")
    return PretrainedCard(name, manifest[name])
