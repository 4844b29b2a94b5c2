"""Pinning the measuring thread to one CPU core (Linux ``sched_setaffinity``).

The measurer pins the calling thread for the duration of each pass and restores its previous
affinity afterwards, so a library caller (a test run, a notebook) is left as it was. onnxruntime
with one intra-op and one inter-op thread runs every kernel on the calling thread, so the model
runs on the pinned core."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from nas_predictor.latency.errors import MeasurementError

NO_PINNING = -1


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def choose_core(core: int | None) -> int | None:
    """The core to pin to: ``core`` itself (checked), the last core this process may use when None
    (core 0 takes more of the kernel's interrupts), or None (no pinning) for -1 or where the OS
    cannot pin."""
    if core == NO_PINNING:
        return None
    if not can_pin():
        if core is not None:
            raise MeasurementError(f"cannot pin to core {core}: this OS has no sched_setaffinity")
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if core is None:
        return allowed[-1]
    if core not in allowed:
        raise MeasurementError(f"core {core} is not available to this process (allowed cores: {allowed}; "
                               f"-1 = no pinning)")
    return core


@contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run the block on ``core`` (nothing happens for None), restoring the previous affinity."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
