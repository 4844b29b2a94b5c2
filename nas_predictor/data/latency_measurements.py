"""A user's own latency measurements of a few ONNX models, for rescaling a latency predictor.

Two formats, so measurements from anywhere can be used:

- the JSON that ``nas-predictor measure --json`` prints: ``{"results": [{"model": PATH, "label_ms": MS,
  "batch_size": B, ...}, ...]}``;
- a CSV file with columns ``model,ms`` and optionally ``batch`` (a header line naming them is
  allowed; ``#`` lines are comments), for timings taken with other tools (TensorRT's trtexec, a phone
  app, ...).

A relative model path is read from the current directory when it exists there, else from the
measurements file's own directory (so a file and its models can move together).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas_predictor.calibration import LatencyMap, choose_latency_map
from nas_predictor.errors import DataError


@dataclass(frozen=True)
class Measurement:
    model: Path
    ms: float
    batch_size: int | None = None  # None: the batch the predictor is asked for


def _resolve(model: str, base: Path) -> Path:
    path = Path(model)
    if path.is_absolute() or path.exists():
        return path
    return base / path


def _measurement(model: object, ms: object, batch: object, where: str, base: Path) -> Measurement:
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
    return Measurement(path, value, size)


def _from_json(text: str, path: Path) -> list[Measurement]:
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


def _from_csv(text: str, path: Path) -> list[Measurement]:
    out: list[Measurement] = []
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


def read_latency_measurements(path: str | Path) -> list[Measurement]:
    """The measurements in ``path`` (JSON from ``nas-predictor measure --json``, or CSV); every model
    file must exist and every latency be a positive number, else a DataError naming the entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"measurements file {path} not found")
    text = path.read_text()
    rows = _from_json(text, path) if text.lstrip().startswith("{") else _from_csv(text, path)
    if not rows:
        raise DataError(f"{path}: no measurements")
    return rows


NEAREST = "nearest"  # a setting name: the predictor's setting that fits the timings best


def fit_map_to_measurements(path: str | Path, predictor, setting: str, batch_size: int | None = None,
                            fit: str = "auto", reported: bool = False) -> tuple[LatencyMap, dict]:
    """The map from ``predictor``'s latencies on ``setting`` to the measurements in ``path`` (one
    factor or a power law, see :func:`nas_predictor.calibration.fit_latency_map`), and a record of
    what it was fitted on (its ``setting`` key names the setting used). ``setting="nearest"`` tries
    every setting of the predictor and keeps the one whose mapped latencies fit the timings best
    (``choose_latency_map``). ``batch_size`` is the batch of models whose entry names none (default:
    the setting's own batch). A bad entry is a DataError, never a silently unmapped prediction.

    A map must be applied to the same kind of number it was fitted on. ``reported=True``: it is fitted
    to the latency reported for each timed model (``LatencyEstimate.predicted_ms`` of
    ``nas_predictor.latency_domain``: the fallback line for a model outside the predictor's training
    domain), for callers that report those (the ``latency`` command); ``False``: to the network's own
    outputs (``Predictor.predict_latency``), for callers that map those. Each timed model's record
    says which it was (``source``) and whether it lay in the training domain."""
    from nas_predictor.data.latency_tables import parse_setting
    from nas_predictor.latency_domain import assess_latency
    from nas_predictor.onnx import onnx_to_graph

    measured = read_latency_measurements(path)
    settings = list(predictor.settings) if setting == NEAREST else [setting]
    graphs: dict[int, list] = {}  # the timed models at each default batch the settings need
    estimates = []
    for name in settings:
        default = batch_size or parse_setting(name)[1]
        if default not in graphs:
            graphs[default] = [onnx_to_graph(m.model, batch_size=m.batch_size or default) for m in measured]
        estimates.append(assess_latency(predictor, graphs[default], name, [str(m.model) for m in measured]))
    columns = [[e.predicted_ms if reported else e.model_ms for e in column] for column in estimates]
    index, latency_map = choose_latency_map(np.array(columns).T, [m.ms for m in measured], fit)
    chosen = settings[index]
    default = batch_size or parse_setting(chosen)[1]
    return latency_map, {"file": str(path), "setting": chosen, **latency_map.to_dict(), "num_measured": len(measured),
                         "measured": [{"model": str(m.model), "measured_ms": m.ms,
                                       "predicted_ms": e.predicted_ms if reported else e.model_ms,
                                       "source": e.source if reported else "model", "in_distribution": e.in_distribution,
                                       "batch_size": m.batch_size or default}
                                      for m, e in zip(measured, estimates[index])]}
