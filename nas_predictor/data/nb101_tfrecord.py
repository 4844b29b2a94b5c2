"""Reading the official NAS-Bench-101 tfrecord files without TensorFlow.

TFRecord framing, per record: uint64 little-endian length, uint32 masked CRC-32C of those 8 bytes, the
data, uint32 masked CRC-32C of the data (masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8). Both CRCs
are checked: a corrupt length would otherwise make a reader allocate or skip arbitrary amounts, and
corrupt data would silently change accuracies. (The ``tfrecord`` package's iterator checks neither, so
the framing is read here; CRC-32C comes from the ``crc32c`` package.)

Each record's data is the JSON list ``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]``
(``NASBench.__init__`` in google-research/nasbench ``nasbench/api.py``): the flattened 0/1 adjacency of
the pruned cell as one string, its ops joined by ',', and base64 of a serialized ``ModelMetrics`` of
``nasbench/lib/model_metrics.proto``. Its ``evaluation_data`` holds the evaluations at the start, half
way and end of training; like the API, the final one is ``evaluation_data[2]``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm import tqdm

from nas_predictor.errors import ArchError, DataError
from nas_predictor.nb101_cell import Cell, canonical_cell, format_arch

CRC_MASK_DELTA = 0xA282EAD8
HEADER_BYTES = 12  # length (8) + its CRC (4)
FOOTER_BYTES = 4
FINAL_EVALUATION = 2  # evaluation_data[0] is at step 0, [1] half way, [2] at the end (api.py)
INSTALL_HINT = 'pip install "nas-predictor[nb101]"'


def masked_crc32c(data: bytes, crc32c: Callable[[bytes], int]) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


def _crc32c() -> Callable[[bytes], int]:
    try:
        import crc32c
    except ImportError:
        raise ImportError(f"reading NAS-Bench-101 tfrecord files needs crc32c: {INSTALL_HINT}") from None
    return crc32c.crc32c


def iter_tfrecord(path: str | os.PathLike, *, progress: bool = False) -> Iterator[tuple[int, int, bytes]]:
    """(record number, byte offset, data) of each record, CRCs checked; DataError on any damage."""
    crc32c = _crc32c()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"NAS-Bench-101 tfrecord not found at {path}")
    with path.open("rb") as handle, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                         desc=path.name, disable=not progress) as bar:
        index = offset = 0
        while header := handle.read(HEADER_BYTES):
            where = f"{path}: record {index} (byte {offset})"
            if len(header) < HEADER_BYTES:
                raise DataError(f"{where}: truncated header ({len(header)} of {HEADER_BYTES} bytes)")
            length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
            if masked_crc32c(length_bytes, crc32c) != length_crc:
                raise DataError(f"{where}: length CRC mismatch (corrupt file)")
            (length,) = struct.unpack("<Q", length_bytes)
            data = handle.read(length)
            footer = handle.read(FOOTER_BYTES)
            if len(data) < length or len(footer) < FOOTER_BYTES:
                raise DataError(f"{where}: truncated (file ends inside a {length}-byte record)")
            if masked_crc32c(data, crc32c) != struct.unpack("<I", footer)[0]:
                raise DataError(f"{where}: data CRC mismatch (corrupt file)")
            yield index, offset, data
            size = HEADER_BYTES + length + FOOTER_BYTES
            bar.update(size)
            index, offset = index + 1, offset + size


@dataclass(frozen=True)
class NB101Record:
    """One training run of one cell at one epoch budget (final evaluation only)."""

    where: str  # "<file>: record N (byte B)", for error messages
    module_hash: str
    epochs: int
    adjacency: str
    operations: str
    trainable_parameters: int
    final_training_time: float
    final_validation_accuracy: float
    final_test_accuracy: float

    @property
    def arch(self) -> str:
        """The canonical arch string of the cell (the file stores pruned cells; checked all the same)."""
        n = math.isqrt(len(self.adjacency))
        try:
            if n * n != len(self.adjacency) or set(self.adjacency) - {"0", "1"}:
                raise ArchError(f"adjacency {self.adjacency!r} is not a square 0/1 matrix")
            rows = [self.adjacency[r * n : (r + 1) * n] for r in range(n)]
            cell = Cell([[int(c) for c in row] for row in rows], tuple(self.operations.split(",")))
            return format_arch(canonical_cell(cell))
        except ArchError as err:
            raise DataError(f"{self.where}: invalid cell: {err}") from None


def read_nb101_records(
    path: str | os.PathLike, *, progress: bool = False, max_records: int | None = None
) -> Iterator[NB101Record]:
    """The records of an official NAS-Bench-101 tfrecord file, in file order."""
    from google.protobuf.message import DecodeError

    model_metrics = _model_metrics_class()
    for index, offset, data in islice(iter_tfrecord(path, progress=progress), max_records):
        yield _parse_record(f"{path}: record {index} (byte {offset})", data, model_metrics, DecodeError)


def _parse_record(where: str, data: bytes, model_metrics: Any, decode_error: type[Exception]) -> NB101Record:
    try:
        row = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{where}: not a JSON record ({err})") from None
    if not (isinstance(row, list) and len(row) == 5):
        raise DataError(f"{where}: expected [hash, epochs, adjacency, operations, metrics], got {str(row)[:80]!r}")
    module_hash, epochs, adjacency, operations, raw_metrics = row
    if not all(isinstance(v, str) for v in (module_hash, adjacency, operations, raw_metrics)) or not (
        isinstance(epochs, int) and not isinstance(epochs, bool)
    ):
        raise DataError(f"{where}: wrong field types in {str(row)[:80]!r}")
    try:
        metrics = model_metrics.FromString(base64.b64decode(raw_metrics, validate=True))
    except (binascii.Error, decode_error) as err:
        raise DataError(f"{where}: unreadable ModelMetrics ({type(err).__name__}: {err})") from None
    if len(metrics.evaluation_data) <= FINAL_EVALUATION:
        count = len(metrics.evaluation_data)
        raise DataError(f"{where}: {count} evaluations, expected at least {FINAL_EVALUATION + 1}")
    final = metrics.evaluation_data[FINAL_EVALUATION]
    return NB101Record(where, module_hash, epochs, adjacency, operations, metrics.trainable_parameters,
                       final.training_time, final.validation_accuracy, final.test_accuracy)


@lru_cache(maxsize=None)
def _model_metrics_class() -> Any:
    """The ``nasbench.ModelMetrics`` message class, built from a descriptor written out here.

    Field numbers and types are those of google-research/nasbench ``nasbench/lib/model_metrics.proto``
    (proto2). A private pool keeps it apart from an official ``model_metrics_pb2`` that may be loaded too.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="nasbench/lib/model_metrics.proto", package="nasbench",
                                               syntax="proto2")
    evaluation = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(
        ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"), start=1
    ):
        evaluation.field.add(name=name, number=number, type=field.TYPE_DOUBLE, label=field.LABEL_OPTIONAL)
    evaluation.field.add(name="checkpoint_path", number=6, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    metrics = proto.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                      type_name=".nasbench.EvaluationData")
    metrics.field.add(name="trainable_parameters", number=2, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=field.TYPE_DOUBLE, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(proto.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))
