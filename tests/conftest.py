"""Shared fixtures. The benchmark data lives beside the checkout (../shared/data) and is never copied."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.errors import DataError
from nas_predictor.model import ModelConfig


def _share_the_cores_between_workers() -> None:
    """pytest runs the suite in one worker process per core (pytest-xdist, ``-n auto`` in pyproject.toml).
    Torch's default, every core for each process, made two workers on CI's two cores fight over them:
    the suite got barely faster. Each worker (and the processes it starts) gets its share instead."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


_share_the_cores_between_workers()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def data_dir():
    """The shared data folder. Missing data skips locally but FAILS under CI=true."""
    try:
        return resolve_data_dir()
    except DataError as err:
        if _in_ci():
            pytest.fail(f"shared benchmark data is required in CI: {err}")
        pytest.skip(f"shared benchmark data not available: {err}")


@pytest.fixture(scope="session")
def nb201_table(data_dir):
    from nas_predictor.data import load_nb201_table

    return load_nb201_table(data_dir)


@pytest.fixture
def small_model_config() -> ModelConfig:
    """A small accuracy model so tests stay fast; same code paths as the paper-size one."""
    return ModelConfig(task="accuracy", input_dim=128, hidden=64, num_blocks=2, groups=8)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)


def _script_loader(monkeypatch, folder_name: str):
    """A loader of the scripts in one top-level folder (benchmarks/, tools/): they are scripts, not a
    package, so each is imported from its file, with its folder on sys.path for the helpers beside it."""
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / folder_name
    monkeypatch.syspath_prepend(str(folder))
    loaded: list[str] = []

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_under_test", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded.append(spec.name)
        return module

    return load, loaded


@pytest.fixture()
def load_benchmark(monkeypatch):
    """``load_benchmark("latency")``: a script of benchmarks/ imported as a module, with benchmarks/ on
    sys.path for their shared ``common`` helpers."""
    import sys

    load, loaded = _script_loader(monkeypatch, "benchmarks")
    yield load
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.fixture()
def load_tool(monkeypatch):
    """``load_tool("report")``: a script of tools/ imported as a module, with tools/ on sys.path for the
    table modules beside it."""
    import sys

    load, loaded = _script_loader(monkeypatch, "tools")
    yield load
    for name in loaded:
        sys.modules.pop(name, None)
