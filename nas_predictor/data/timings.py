"""A user's own timings of a few ONNX models, read for rescaling a latency predictor (the fit itself is
``nas_predictor.latency_estimator.fit_map_to_measurements``).

Two formats, so measurements from anywhere can be used:

- the JSON that ``nas-predictor measure --json`` prints: ``{"results": [{"model": PATH, "label_ms": MS,
  "batch_size": B, ...}, ...]}``;
- a CSV file with columns ``model,ms`` and optionally ``batch`` (a header line naming them is
  allowed; ``#`` lines are comments), for timings taken with other tools (TensorRT's trtexec, a phone
  app, ...).

A relative model path is read from the current directory when it exists there, else from the
timings file's own directory (so a file and its models can move together).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from nas_predictor.errors import DataError


@dataclass(frozen=True)
class Timing:
    """One timed model: its file, its latency (ms) and the batch it was timed at."""

    model: Path
    ms: float
    batch_size: int | None = None  # None: the batch the predictor is asked for


def _resolve(model: str, base: Path) -> Path:
    path = Path(model)
    if path.is_absolute() or path.exists():
        return path
    return base / path


def _measurement(model: object, ms: object, batch: object, where: str, base: Path) -> Timing:
    if not isinstance(model, str) or not model.strip():
        raise DataError(f"{where}: no model path")
    try:
        value = float(ms)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: latency {ms!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"{where}: latency must be a positive number of milliseconds, got {ms!r}")
    size = None
    if batch not in (None, ""):
        try:
            size = int(batch)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(f"{where}: batch {batch!r} is not an integer") from None
        if size < 1:
            raise DataError(f"{where}: batch must be >= 1, got {size}")
    path = _resolve(model.strip(), base)
    if not path.is_file():
        raise DataError(f"{where}: model file {path} not found")
    return Timing(path, value, size)


def _from_json(text: str, path: Path) -> list[Timing]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected the JSON of `nas-predictor measure --json` (an object with a "
                        f"'results' list)")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: results[{i}] is not an object")
        out.append(_measurement(row.get("model"), row.get("label_ms"), row.get("batch_size"),
                                f"{path}: results[{i}]", path.parent))
    return out


def _from_csv(text: str, path: Path) -> list[Timing]:
    out: list[Timing] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([line]))]
        if not out and fields[0].lower() == "model":
            continue  # header
        if len(fields) not in (2, 3):
            raise DataError(f"{path}:{n}: expected 'model,ms' or 'model,ms,batch', got {len(fields)} fields")
        out.append(_measurement(fields[0], fields[1], fields[2] if len(fields) == 3 else None, f"{path}:{n}",
                                path.parent))
    return out


def read_timings(path: str | Path) -> list[Timing]:
    """The measurements in ``path`` (JSON from ``nas-predictor measure --json``, or CSV); every model
    file must exist and every latency be a positive number, else a DataError naming the entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"timings file {path} not found")
    text = path.read_text()
    rows = _from_json(text, path) if text.lstrip().startswith("{") else _from_csv(text, path)
    if not rows:
        raise DataError(f"{path}: no measurements")
    return rows

