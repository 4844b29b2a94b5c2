"""Files that survive a kill and a second process: atomic writes and one-writer file locks (torch-free).

Every output the project writes goes through here, so a kill never leaves a half-written file
(:func:`atomic_write_bytes`, :func:`atomic_write_json`, :func:`atomic_path`), no JSON file holds the
``NaN`` token strict parsers reject (:func:`dumps_strict`: a NaN or infinity is an error naming where it
sits), and two processes never write one output at once (:func:`file_lock`, on ``filelock``: the
operating system drops the lock when its holder dies, so a killed run never blocks the next).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import tempfile
import threading
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


def _umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; when the block succeeds the file written there is
    fsynced and renamed onto ``path``, when it fails the temporary file is removed.

    For writers that want a path rather than bytes (``gzip.open``, ``torch.onnx.export``). The same
    folder keeps the rename atomic (one file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would (umask).
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Strict JSON (a NaN or infinity is a DataError naming its key, see :func:`dumps_strict`), indented,
    keys sorted, atomically."""
    atomic_write_bytes((dumps_strict(obj, str(path), indent=2, sort_keys=True) + "\n").encode(), path)


def _holder_text(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {info['pid']} on {info['host']}, since {since}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):  # written a moment after the lock is taken
        return f"holder unknown: {holder} is not written yet"


# Lock files this process holds, by (path, thread), and how deeply: a thread's nested holds are free,
# while another thread opens its own handle and waits as another process would.
_held: dict[tuple[Path, int], int] = {}
_told_waiting: set[Path] = set()  # say once per lock file and process whom it waits for, not per call


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, what: str, wait: bool = False,
              error: type[NasPredictorError] = NasPredictorError, quiet_seconds: float = 0.0) -> Iterator[None]:
    """Hold the lock file ``path`` for as long as the block runs; ``what`` names what it protects.

    Another process that holds it makes this fail at once with ``error`` naming the lock file and the
    holder, whose pid, host, start time and command line are written to ``<path>.holder`` beside the
    lock; with ``wait`` it says on stderr whom it waits for (once per lock file and process), then
    waits (for short critical sections, such as merging results files or reading a cache); a lock that
    processes take in turn all the time (a shared search's claims) says so only after ``quiet_seconds``
    of waiting. Within one
    thread the lock nests (the CLI takes it before loading anything, the search it runs takes it
    again). The operating system drops the lock when its process dies, so a killed holder never blocks
    the next run. Locks are exclusive only: filelock has no shared mode, and every critical section
    here is short.
    """
    from filelock import FileLock, Timeout  # imported here: most commands never take a lock

    path = Path(path).absolute()
    key = (path, threading.get_ident())
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_name(path.name + ".holder")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise error(f"{what} is in use by another process ({_holder_text(holder)}); lock file "
                        f"{path}: wait for it to finish, or use another folder") from None
        try:
            lock.acquire(timeout=quiet_seconds)
        except Timeout:
            if path not in _told_waiting:
                _told_waiting.add(path)
                print(f"waiting for {what} ({_holder_text(holder)}) ...", file=sys.stderr, flush=True)
            lock.acquire()
    _held[key] = 1
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                      "command": " ".join(sys.argv)}) + "\n")
        yield
    finally:
        del _held[key]
        holder.unlink(missing_ok=True)  # before the release, so the next holder's file is never removed
        lock.release()
