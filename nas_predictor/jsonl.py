"""Append-only JSON-lines files that survive a kill: every line is flushed and fsynced as it is written,
and a reader drops (and cuts off) a last line that a kill left half-written.

Used by the search history and the latency-dataset builder: both must lose nothing already computed
when the process dies, and must not trip over the one line that was being written at that moment.

Also the two rules every JSON writer of the project follows: strict JSON only (:func:`dumps_strict`: a
NaN or an infinity is an error naming where it sits, never a bare ``NaN`` a JSON parser rejects), and
one writer per output (:func:`exclusive_lock`: a second process fails at once, told who holds it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from nas_predictor.errors import DataError, NasPredictorError


def non_finite_path(obj: Any, where: str = "") -> tuple[str, float] | None:
    """(JSON path, value) of the first NaN or infinity in ``obj`` (dicts, lists, numbers), or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "(top level)", obj)
    if isinstance(obj, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for path, value in items:
        found = non_finite_path(value, path)
        if found is not None:
            return found
    return None


def dumps_strict(obj: Any, where: str, **kwargs: Any) -> str:
    """``json.dumps(obj, allow_nan=False)``; a NaN or infinity is a DataError naming ``where`` (the file or
    stream) and the key that holds it, so no reader ever meets the ``NaN`` token strict JSON lacks."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        found = non_finite_path(obj)
        if found is None:
            raise
        raise DataError(f"{where}: refusing to write the non-finite number {found[1]} at {found[0]} "
                        "(strict JSON has no NaN or Infinity)") from None


def _holder_text(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {info['pid']} on {info['host']}, since {since}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):  # written a moment after the lock is taken
        return f"holder unknown: {holder} is not written yet"


_held: dict[Path, int] = {}  # lock files this process holds, and how deeply (nested holds are free)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str, wait: bool = False) -> Iterator[None]:
    """Hold the lock file ``path`` for as long as the block runs; ``what`` names what it protects.

    Another process that holds it makes this fail at once with an error naming the lock file and the
    holder, whose pid, host, start time and command line are written to ``<path>.holder`` beside the
    lock; with ``wait`` it says once on stderr whom it waits for, then waits (for short critical
    sections, such as merging results files). Within one process the lock nests (the CLI takes it
    before loading anything, the search it runs takes it again). The operating system drops the lock
    when its process dies, so a killed holder never blocks the next run.
    """
    from filelock import FileLock, Timeout

    path = Path(path).absolute()
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_name(path.name + ".holder")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait:
            print(f"waiting for {what} ({_holder_text(holder)}) ...", file=sys.stderr, flush=True)
            lock.acquire()
        else:
            raise NasPredictorError(f"{what} is in use by another process ({_holder_text(holder)}); lock file "
                                    f"{path}: wait for it to finish, or use another folder") from None
    _held[path] = 1
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                      "command": " ".join(sys.argv)}) + "\n")
        yield
    finally:
        del _held[path]
        holder.unlink(missing_ok=True)
        lock.release()


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
