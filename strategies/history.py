"""The search history: one JSON line per evaluation, appended (and flushed to disk) as soon as it is
made, so a killed search loses at most the evaluation in flight.

Resuming replays: a strategy is deterministic given its seed, so re-running it with the same folder
walks the same path; every architecture it asks for that the history already holds is answered from
the file (no oracle call), and the search continues live from the first one it does not hold. A file
written by a different search (space, strategy, seed, budget-independent settings) is refused.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator

from nas_predictor.errors import ConfigError
from nas_predictor.jsonl import append_jsonl, read_jsonl

HEADER_KIND = "search-header"


class SearchHistory:
    """Append-only JSONL of evaluations, with the search's identity in a header line."""

    def __init__(self, path: str | os.PathLike | None, identity: dict[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self.identity = identity
        self.records: list[dict[str, Any]] = []
        self._by_arch: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.is_file() and self.path.stat().st_size:
            self._load()
        elif self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"kind": HEADER_KIND, **identity})

    def _load(self) -> None:
        entries = read_jsonl(self.path)  # a line cut off by a kill is dropped: that evaluation reruns
        for entry in entries:
            if entry.get("kind") == HEADER_KIND:
                stored = {k: v for k, v in entry.items() if k != "kind"}
                if stored != self.identity:
                    diff = sorted(k for k in set(stored) | set(self.identity) if stored.get(k) != self.identity.get(k))
                    raise ConfigError(
                        f"{self.path} holds a different search (differs in: {', '.join(diff)}); "
                        "use another --out folder or delete the file"
                    )
                continue
            self.records.append(entry)
            self._by_arch.setdefault(entry["arch"], entry)
        if not entries:
            self._append({"kind": HEADER_KIND, **self.identity})

    def _append(self, entry: dict[str, Any]) -> None:
        if self.path is not None:
            append_jsonl(self.path, entry)

    def get(self, arch: str) -> dict[str, Any] | None:
        return self._by_arch.get(arch)

    def add(self, entry: dict[str, Any]) -> None:
        self.records.append(entry)
        self._by_arch.setdefault(entry["arch"], entry)
        self._append(entry)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def evaluated(self) -> list[dict[str, Any]]:
        """Evaluations that reached the oracle and succeeded."""
        return [r for r in self.records if r["status"] == "ok" and math.isfinite(r["value"])]
