"""Safe loading of plain-data torch files (benchmark tables): ``torch.load(weights_only=True)`` with
exactly the globals that rebuild numeric numpy scalars allowlisted, never full unpickling."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_predictor.errors import DataError


def numpy_scalar_globals() -> list[Any]:
    """Globals needed to unpickle numeric numpy scalars, under both numpy 1.x and 2.x names."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    scalar = multiarray.scalar
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdg"}
    return [
        # Files written by numpy 1.x (the official ones) and 2.x name the function differently.
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        # These build data and run no user code. Object dtypes are not listed, so their state
        # cannot be set, and a scalar of one could only wrap an object the restricted unpickler
        # had already accepted.
        *dtype_classes,
    ]


def refusal_detail(message: str) -> str:
    """The unpickler's own reason, without torch's advice to retry with weights_only=False."""
    body = message.split("Check the documentation of torch.load", 1)[0].strip()
    if "WeightsUnpickler error:" in body:
        body = body.rsplit("WeightsUnpickler error:", 1)[1]
    else:
        body = body.rsplit("\n\n", 1)[-1]
    body = body.split(" Please use `torch.serialization", 1)[0]
    body = re.sub(r"\s+", " ", body).strip()
    return body[:300] or "unknown reason"


def load_plain_pt(path: str | Path, what: str) -> Any:
    """A ``torch.save``-d file of plain Python data (lists, dicts, numbers, numpy scalars).

    Anything else is refused with a DataError (no fallback to unsafe loading); a truncated or
    corrupt file is a DataError naming the file. ``what`` names the expected content in errors.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file ({what})")
    try:
        with torch.serialization.safe_globals(numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{path}: refusing to load {what}: the file contains Python objects that safe loading "
            f"(torch.load weights_only=True) does not allow ({refusal_detail(str(exc))})"
        ) from None
    except Exception as exc:  # zip / pickle / OS errors come in many types
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(f"{path}: cannot read {what}, the file is truncated or corrupt "
                        f"({type(exc).__name__}: {first_line or 'unexpected end of data'})") from exc
