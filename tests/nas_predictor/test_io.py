import json
import os
import stat
import threading

import filelock
import pytest

from nas_predictor.errors import ConfigError, DataError, NasPredictorError
from nas_predictor.io import atomic_path, atomic_write_bytes, atomic_write_json, file_lock
from tests.waiting import calls_wait_for


def test_atomic_writes_replace_whole_files_with_plain_permissions(tmp_path):
    path = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(b"one", path)
    atomic_write_bytes(b"two", path)
    assert path.read_bytes() == b"two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    atomic_write_json({"b": 1, "a": [1.5]}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text() == json.dumps({"a": [1.5], "b": 1}, indent=2) + "\n"
    with pytest.raises(DataError, match=r"non-finite number nan at a\[0\]"):
        atomic_write_json({"a": [float("nan")]}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1.5], "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "x.json"]  # no temporary file left


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp != path
            tmp.write_bytes(b"half")
            raise RuntimeError("exporter failed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.onnx"]
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["m.onnx"]


def test_file_lock_refuses_another_holder_naming_it_and_nests_within_a_thread(tmp_path):
    lock = tmp_path / ".x.lock"
    with file_lock(lock, "folder x"):
        with file_lock(lock, "folder x"):  # nested in one thread: free
            assert json.loads((tmp_path / ".x.lock.holder").read_text())["pid"] == os.getpid()
        errors = []

        def other_thread():
            try:
                with file_lock(lock, "folder x", error=ConfigError):
                    pass
            except NasPredictorError as err:
                errors.append(err)

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(30)
        assert isinstance(errors[0], ConfigError)
        assert f"folder x is in use by another process (pid {os.getpid()} on" in str(errors[0])
    assert not (tmp_path / ".x.lock.holder").exists()
    with file_lock(lock, "folder x"):  # free again
        pass


def test_file_lock_waits_for_another_process_and_says_so_once(tmp_path, capsys):
    lock = tmp_path / "r.lock"

    def merge():
        with file_lock(lock, "results r", wait=True):
            return 1

    # filelock.FileLock: held as another process would hold it
    assert calls_wait_for(filelock.FileLock(str(lock)), merge, threads=2) == [1, 1]
    assert capsys.readouterr().err.count("waiting for results r") == 1


def test_a_lock_taken_in_turn_all_the_time_waits_quietly_until_the_wait_is_long(tmp_path, capsys):
    lock = tmp_path / "claims.lock"

    def claim():
        with file_lock(lock, "claims", wait=True, quiet_seconds=30.0):
            return 1

    assert calls_wait_for(filelock.FileLock(str(lock)), claim, threads=2) == [1, 1]
    assert "waiting for" not in capsys.readouterr().err
