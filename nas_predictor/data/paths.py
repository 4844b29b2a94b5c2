"""Locating the shared benchmark data: --data-dir flag, then $NAS_PREDICTOR_DATA, then ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

from nas_predictor.errors import DataError

ENV_VAR = "NAS_PREDICTOR_DATA"
CACHE_ENV = "NAS_PREDICTOR_CACHE"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where computed artefacts are cached (exported graphs, resolved ONNX shapes): ``path``, else
    ``$NAS_PREDICTOR_CACHE``, else ``~/.cache/nas_predictor``; created if missing."""
    root = Path(path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nas_predictor")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _default_candidates() -> list[Path]:
    # The project is normally checked out beside shared/ (developers and CI); also look relative to
    # the current directory so an installed package run from the checkout finds it.
    here = Path(__file__).resolve()
    repo_root = here.parents[2]
    return [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the benchmark data directory, or raise DataError saying where we looked."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(f"--data-dir {str(path)!r} is not a directory")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"${ENV_VAR}={env!r} is not a directory")
        return path
    tried = _default_candidates()
    for path in tried:
        if path.is_dir():
            return path
    raise DataError(
        "benchmark data not found: pass --data-dir DIR or set $"
        f"{ENV_VAR} (looked in: {', '.join(str(p) for p in tried)})"
    )
