"""Build tiny NAS-Bench-101 tfrecord files in the layout of the official ones.

Each record is the JSON list ``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`` of
google-research/nasbench ``nasbench/api.py``, framed like TFRecord (length, masked CRC-32C of the
length, data, masked CRC-32C of the data). ``raw_metrics`` is base64 of a ``ModelMetrics`` message
encoded by hand here from the field numbers of ``nasbench/lib/model_metrics.proto``, independently of
the loader's descriptor, so a wrong field number or type there makes the tests fail.

Every (cell, epochs, repeat) gets its own accuracies (:func:`accuracies`); the cells are written in a
different order at each epoch budget, so a reader that keeps the wrong order or epoch shows it.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Sequence

import crc32c

from nas_predictor.nb101_cell import Cell, cell_hash

EPOCHS = (4, 12, 36, 108)
REPEATS = 3
PUBLISHED_HASH = "00005c142e6f48ac74fdcf73e3439874"  # see tests/search_spaces/test_nasbench101.py
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
CELLS = (
    Cell(((0, 1, 0, 0, 1, 1, 0), (0, 0, 1, 0, 0, 0, 0), (0, 0, 0, 1, 0, 0, 1), (0, 0, 0, 0, 0, 1, 0),
          (0, 0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, 0, 1), (0,) * 7),
         ("input", C3, MP, C3, C3, C1, "output")),
    Cell(((0, 1, 1, 1, 1, 0, 0), (0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 1),
          (0, 0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, 0, 1), (0,) * 7),
         ("input", C3, C1, MP, C3, C3, "output")),
    Cell(((0, 1, 0), (0, 0, 1), (0, 0, 0)), ("input", C3, "output")),
    Cell(((0, 1, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 1, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0)),
         ("input", C1, MP, C3, "output")),
)
HASHES = tuple(PUBLISHED_HASH if i == 0 else cell_hash(c) for i, c in enumerate(CELLS))


def accuracies(cell: int, epochs: int, repeat: int) -> tuple[float, float, float]:
    """(validation, test, training time) of the final evaluation, accuracies as fractions."""
    valid = 0.5 + 0.1 * cell + epochs / 1000 + 0.01 * repeat
    return valid, valid - 0.02 - 0.001 * repeat, 100.0 * epochs + 10.0 * cell + repeat


def params(cell: int) -> int:
    return 1_000_000 + 1000 * cell


def cell_order(epochs: int) -> list[int]:
    shift = EPOCHS.index(epochs)
    return list(range(shift, len(CELLS))) + list(range(shift))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _double(field: int, value: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", value)


def _bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def evaluation_data(epoch: float, time: float, train: float, valid: float, test: float) -> bytes:
    fields = (epoch, time, train, valid, test)
    return b"".join(_double(n, v) for n, v in enumerate(fields, start=1)) + _bytes(6, b"/ckpt/model.ckpt-0")


def model_metrics(cell: int, epochs: int, repeat: int) -> bytes:
    valid, test, time = accuracies(cell, epochs, repeat)
    evaluations = [
        evaluation_data(0.0, 0.0, 0.1, 0.1, 0.1),
        evaluation_data(epochs / 2, time / 2, valid - 0.2, valid - 0.3, test - 0.3),  # half way: not the target
        evaluation_data(float(epochs), time, 1.0, valid, test),
    ]
    return (b"".join(_bytes(1, e) for e in evaluations) + _varint(2 << 3 | 0) + _varint(params(cell))
            + _double(3, time + 5.0))


def record_payload(cell: int, epochs: int, repeat: int) -> bytes:
    spec = CELLS[cell]
    adjacency = "".join(str(v) for row in spec.matrix for v in row)
    metrics = base64.b64encode(model_metrics(cell, epochs, repeat)).decode("ascii")
    return json.dumps([HASHES[cell], epochs, adjacency, ",".join(spec.ops), metrics]).encode("utf-8")


def synthetic_payloads(epochs: Sequence[int] = EPOCHS) -> list[bytes]:
    """Record data in file order: per epoch budget, per repeat, the cells in ``cell_order``."""
    return [record_payload(c, e, r) for e in epochs for r in range(REPEATS) for c in cell_order(e)]


def masked_crc(data: bytes) -> bytes:
    crc = crc32c.crc32c(data)
    return struct.pack("<I", ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF)


def write_tfrecord(path: str | Path, payloads: Sequence[bytes]) -> Path:
    path = Path(path)
    with path.open("wb") as handle:
        for data in payloads:
            length = struct.pack("<Q", len(data))
            handle.write(length + masked_crc(length) + data + masked_crc(data))
    return path


def write_synthetic_nb101(path: str | Path, epochs: Sequence[int] = EPOCHS) -> Path:
    return write_tfrecord(path, synthetic_payloads(epochs))


def random_cells(n: int, seed: int = 0) -> list[Cell]:
    """``n`` distinct valid pruned cells (distinct official hashes), drawn as the official random_spec."""
    import numpy as np

    from nas_predictor.nb101_cell import canonical_cell, parse_arch
    from search_spaces.nasbench101 import NASBench101

    space, rng = NASBench101(), np.random.default_rng(seed)
    cells: dict[str, Cell] = {}
    while len(cells) < n:
        cell = canonical_cell(parse_arch(space.sample(rng)))
        cells.setdefault(cell_hash(cell), cell)
    return list(cells.values())


def cell_accuracy(cell: Cell) -> float:
    """A made-up but learnable 108-epoch validation accuracy (fraction): more 3x3 convolutions and
    vertices score higher, as in the real benchmark."""
    return 0.80 + 0.02 * cell.ops.count(C3) + 0.01 * cell.ops.count(C1) + 0.005 * len(cell.ops)


def write_random_nb101(path: str | Path, n: int, seed: int = 0) -> list[Cell]:
    """An only-108-epochs file of ``n`` random cells x 3 repeats, in cell order per repeat; returns the
    cells in file order."""
    cells = random_cells(n, seed)
    payloads = []
    for repeat in range(REPEATS):
        for i, cell in enumerate(cells):
            valid = cell_accuracy(cell) + 0.001 * repeat
            evaluations = [evaluation_data(0.0, 0.0, 0.1, 0.1, 0.1),
                           evaluation_data(54.0, 500.0, valid - 0.2, valid - 0.3, valid - 0.3),
                           evaluation_data(108.0, 1000.0 + i, 1.0, valid, valid - 0.01)]
            metrics = b"".join(_bytes(1, e) for e in evaluations) + _varint(2 << 3 | 0) + _varint(1_000_000 + i)
            adjacency = "".join(str(v) for row in cell.matrix for v in row)
            payloads.append(json.dumps([cell_hash(cell), 108, adjacency, ",".join(cell.ops),
                                        base64.b64encode(metrics).decode("ascii")]).encode("utf-8"))
    write_tfrecord(path, payloads)
    return cells
