"""Measured latency tables: HELP (NAS-Bench-201, FBNet, OFA-MobileNetV3), nn-Meter (NAS-Bench-201 on
edge devices) and the NNLQP ``gt.txt`` format.

Each record is an architecture of a search space (its canonical string) and a latency in ms for one
forward pass of the whole batch on one device setting. The graphs are not stored here: the search
space named by ``LatencyTable.space`` builds each network and exports its ONNX graph
(``nas_predictor.data.latency_graphs`` caches them).

Setting names follow the files: ``<device>_<batch>`` (``titan_rtx_32``) or a bare device name for
batch 1 (``gold_6226``, ``pixel3``). OFA's ``titan_xp`` is HELP's ``titanxp`` elsewhere; both names
are accepted and the table reports ``titanxp``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nas_predictor.data.nb201 import load_nb201_table
from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.data.safe_load import load_plain_pt
from nas_predictor.errors import DataError
from nas_predictor.registry import Registry

HELP_FOLDERS = {"nasbench201": "help_nb201_latency", "fbnet": "help_fbnet_ofa_latency/fbnet",
                "ofa_mbv3": "help_fbnet_ofa_latency/ofa"}
HELP_NON_LATENCY = {"str_arch2idx", "hardware_embedding_index", "arch", "metainfo", "ofa_archs"}
DEVICE_ALIASES = {"titan_xp": "titanxp"}
NNMETER_FOLDER = "nnmeter_latency_logs"
NNMETER_PREFIX = "nasbench201-log."


@dataclass
class LatencyTable:
    space: str  # search space that builds the networks: nasbench201, fbnet, ofa_mbv3
    setting: str  # canonical device setting, e.g. titan_rtx_32, titanxp_1, gold_6226
    device: str
    batch_size: int
    archs: list[str]
    latency_ms: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.archs)


def parse_setting(setting: str) -> tuple[str, int]:
    """``titan_rtx_32`` -> (``titan_rtx``, 32); ``gold_6226`` -> (``gold_6226``, 1)."""
    match = re.fullmatch(r"(.+?)_(1|32|64|256)", setting)
    device, batch = (match.group(1), int(match.group(2))) if match else (setting, 1)
    return DEVICE_ALIASES.get(device, device), batch


def canonical_setting(setting: str) -> str:
    device, batch = parse_setting(setting)
    return f"{device}_{batch}" if re.fullmatch(r".+_(1|32|64|256)", setting) else device


def help_settings(space: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The device settings HELP measured for a space (file stems, canonical names)."""
    folder = _help_folder(space, data_dir)
    return sorted(canonical_setting(p.stem) for p in folder.glob("*.pt") if p.stem not in HELP_NON_LATENCY)


def _help_folder(space: str, data_dir: str | os.PathLike | None) -> Path:
    if space not in HELP_FOLDERS:
        raise DataError(f"HELP has no latency for space {space!r}; known: {sorted(HELP_FOLDERS)}")
    folder = resolve_data_dir(data_dir) / HELP_FOLDERS[space]
    if not folder.is_dir():
        raise DataError(f"HELP latency folder {folder} is missing")
    return folder


def _setting_file(folder: Path, setting: str) -> Path:
    wanted = canonical_setting(setting)
    for path in folder.glob("*.pt"):
        if path.stem not in HELP_NON_LATENCY and canonical_setting(path.stem) == wanted:
            return path
    known = sorted(canonical_setting(p.stem) for p in folder.glob("*.pt") if p.stem not in HELP_NON_LATENCY)
    raise DataError(f"no HELP latency file for setting {setting!r} in {folder}; available: {', '.join(known)}")


def _latencies(path: Path, expected: int) -> np.ndarray:
    values = load_plain_pt(path, "a HELP latency list")
    try:
        lat = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: expected a list of latencies in ms, got {type(values).__name__}") from None
    if lat.size != expected:
        raise DataError(f"{path}: {lat.size} latencies for {expected} architectures")
    bad = np.flatnonzero(~np.isfinite(lat) | (lat <= 0))
    if bad.size:
        raise DataError(f"{path}: {bad.size} latencies are NaN, infinite or not positive (first at record "
                        f"{bad[0]}: {lat[bad[0]]!r})")
    return lat


def _fbnet_archs(folder: Path) -> list[str]:
    meta = load_plain_pt(folder / "metainfo.pt", "FBNet metainfo")
    try:
        return ["-".join(entry["arch_str"]) for entry in meta["arch"]]
    except (KeyError, TypeError):
        raise DataError(f"{folder / 'metainfo.pt'}: expected {{'arch': [{{'arch_str': [...]}}, ...]}}") from None


def ofa_arch_string(ks, e, d, r) -> str:
    """The raw OFA string of HELP's record (every slot written; the space canonicalises ignored ones)."""
    return (f"ks={','.join(map(str, map(int, ks)))};e={','.join(map(str, map(int, e)))};"
            f"d={','.join(map(str, map(int, d)))};r={int(r)}")


def _ofa_archs(folder: Path) -> list[str]:
    meta = load_plain_pt(folder / "ofa_archs.pt", "OFA architecture list")
    try:
        return [ofa_arch_string(a["ks"], a["e"], a["d"], a["r"]) for a in meta["arch"]]
    except (KeyError, TypeError):
        raise DataError(f"{folder / 'ofa_archs.pt'}: expected {{'arch': [{{'ks','e','d','r'}}, ...]}}") from None


# space -> the architectures of its HELP latency files, in their row order (from its folder or data dir)
HELP_ARCHS: Registry[Callable[[Path, str | os.PathLike | None], Sequence[str]]] = Registry("HELP space", DataError)
HELP_ARCHS.add("nasbench201", lambda folder, data_dir: load_nb201_table(data_dir).arch_strs)
HELP_ARCHS.add("fbnet", lambda folder, data_dir: _fbnet_archs(folder))
HELP_ARCHS.add("ofa_mbv3", lambda folder, data_dir: _ofa_archs(folder))


def load_help_latency(space: str, setting: str, data_dir: str | os.PathLike | None = None) -> LatencyTable:
    """Every record of one HELP latency file, with the architecture it belongs to."""
    folder = _help_folder(space, data_dir)
    path = _setting_file(folder, setting)
    archs = HELP_ARCHS.get(space)(folder, data_dir)
    device, batch = parse_setting(path.stem)
    return LatencyTable(space, canonical_setting(path.stem), device, batch, list(archs),
                        _latencies(path, len(archs)), str(path))


def nnmeter_settings(data_dir: str | os.PathLike | None = None) -> list[str]:
    folder = resolve_data_dir(data_dir) / NNMETER_FOLDER
    return sorted(p.name[len(NNMETER_PREFIX):-4] for p in folder.glob(f"{NNMETER_PREFIX}*.csv"))


def load_nnmeter_latency(device: str, data_dir: str | os.PathLike | None = None) -> LatencyTable:
    """nn-Meter's NAS-Bench-201 log of one device (rows ``,nasbench201_<index>,<mean ms>,<std ms>[,...]``)."""
    folder = resolve_data_dir(data_dir) / NNMETER_FOLDER
    path = folder / f"{NNMETER_PREFIX}{device}.csv"
    if not path.is_file():
        raise DataError(f"no nn-Meter log for device {device!r} ({path}); available: "
                        f"{', '.join(nnmeter_settings(data_dir)) or 'none'}")
    table = load_nb201_table(data_dir)
    archs, lat = [], []
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or not any(row):
                continue
            try:
                index = int(row[1].removeprefix("nasbench201_"))
                value = float(row[2])
            except (IndexError, ValueError):
                raise DataError(f"{path}:{line}: expected ',nasbench201_<index>,<latency ms>,...', got {row!r}") from None
            if not 0 <= index < len(table) or not np.isfinite(value) or value <= 0:
                raise DataError(f"{path}:{line}: bad record (index {index}, latency {value!r})")
            archs.append(table.arch_strs[index])
            lat.append(value)
    return LatencyTable("nasbench201", device, device, 1, archs, np.asarray(lat), str(path))


@dataclass
class NNLQPRecord:
    graph_id: str
    onnx_path: Path
    batch_size: int
    latency_ms: float
    model_type: str
    platform: str
    stage: str | None


def load_nnlqp_labels(gt_file: str | os.PathLike, onnx_root: str | os.PathLike | None = None,
                      require_files: bool = True) -> list[NNLQPRecord]:
    """NNLQP's ``gt.txt`` (``GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId [Stage]``).

    ONNX paths are resolved against ``onnx_root`` (default: the folder of ``gt_file``, as in the NNLQP
    release); with ``require_files`` a missing graph is an error naming the first one.
    """
    gt_file = Path(gt_file)
    if not gt_file.is_file():
        raise DataError(f"{gt_file}: no such NNLQP label file")
    root = Path(onnx_root) if onnx_root is not None else gt_file.parent
    records = []
    for line, text in enumerate(gt_file.read_text().splitlines(), start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) not in (6, 7):
            raise DataError(f"{gt_file}:{line}: expected 6 or 7 fields "
                            f"(GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId [Stage]), got {len(fields)}")
        try:
            batch, latency = int(fields[2]), float(fields[3])
        except ValueError:
            raise DataError(f"{gt_file}:{line}: batch size and latency must be numbers, got {fields[2:4]}") from None
        if batch < 1 or not np.isfinite(latency) or latency <= 0:
            raise DataError(f"{gt_file}:{line}: bad batch size {batch} or latency {latency!r}")
        records.append(NNLQPRecord(fields[0], root / fields[1], batch, latency, fields[4], fields[5],
                                   fields[6] if len(fields) == 7 else None))
    if require_files:
        missing = [r.onnx_path for r in records if not r.onnx_path.is_file()]
        if missing:
            raise DataError(f"{len(missing)} of {len(records)} ONNX graphs named in {gt_file} are missing "
                            f"(first: {missing[0]}); pass onnx_root= the folder holding NNLQP's onnx/ tree")
    return records
