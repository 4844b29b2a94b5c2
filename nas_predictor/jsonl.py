"""Append-only JSON-lines files that survive a kill: every line is flushed and fsynced as it is written,
and a reader drops (and cuts off) a last line that a kill left half-written.

Used by the search history and the latency-dataset builder: both must lose nothing already computed
when the process dies, and must not trip over the one line that was being written at that moment.

Both writers follow the two rules every JSON writer of the project follows (see nas_predictor.io):
strict JSON only (``dumps_strict``), and one writer per output (``file_lock``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas_predictor.errors import DataError
# Re-exported: these lived here before nas_predictor.io became the home of every writer's rules.
from nas_predictor.io import dumps_strict, non_finite_path  # noqa: F401
from nas_predictor.io import file_lock as exclusive_lock  # noqa: F401


def append_jsonl(path: str | os.PathLike, entry: Any) -> None:
    """Append one JSON line (strict JSON: a NaN is an error, see :func:`dumps_strict`) and make it
    durable before returning."""
    line = dumps_strict(entry, str(path)) + "\n"
    with Path(path).open("a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike, *, repair: bool = True) -> list[Any]:
    """Every entry of ``path`` ([] when it does not exist).

    A last line that is not valid JSON (a write cut off by a kill) is dropped, and with ``repair`` the
    file is cut back to the last complete line so the next append starts on a fresh line. A damaged
    line anywhere else is a DataError naming it: that is not what a kill does, so nothing is guessed.
    """
    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    entries: list[Any] = []
    good_bytes = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            good_bytes += len(line) + 1
            continue
        try:
            entries.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if all(not rest.strip() for rest in lines[n:]):  # the last line: a write cut off by a kill
                break
            raise DataError(f"{path}:{n}: not a JSON line; the file is damaged") from None
        good_bytes += len(line) + 1
    good_bytes = min(good_bytes, len(raw))
    if repair and good_bytes < len(raw):
        with path.open("r+b") as handle:
            handle.truncate(good_bytes)
    elif repair and raw and not raw.endswith(b"\n"):  # complete last line, newline lost: add it
        with path.open("ab") as handle:
            handle.write(b"\n")
    return entries
