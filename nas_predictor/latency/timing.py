"""Timing loops shared by every provider, written against a :class:`Clock` so tests can inject a fake.

A clock makes marks (a perf-counter reading, a recorded CUDA event), turns two marks into
milliseconds, and synchronises (a no-op on the CPU; ``torch.cuda.synchronize`` for CUDA events,
whose elapsed times are only readable after the GPU reached them)."""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol, Sequence


class Clock(Protocol):
    def mark(self) -> Any: ...

    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    def sync(self) -> None: ...


class PerfClock:
    """Wall time of the calling thread's work (``time.perf_counter_ns``)."""

    def mark(self) -> int:
        return time.perf_counter_ns()

    def elapsed_ms(self, start: int, end: int) -> float:
        return (end - start) / 1e6

    def sync(self) -> None:
        pass


def timed_runs(fn: Callable[[], object], clock: Clock, *, warmup: int, repeats: int) -> list[float]:
    """``warmup`` untimed calls, then ``repeats`` timed ones; milliseconds of each timed call.

    Marks are read only after a final sync, so an asynchronous clock (CUDA events) times the device
    work of each call without a host round trip between calls."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    for _ in range(warmup):
        fn()
    clock.sync()
    marks = []
    for _ in range(repeats):
        start = clock.mark()
        fn()
        marks.append((start, clock.mark()))
    clock.sync()
    return [clock.elapsed_ms(a, b) for a, b in marks]


def paired_runs(
    target: Callable[[], object], reference: Callable[[], object], clock: Clock, *,
    warmup: int, stop: Callable[[Sequence[float], Sequence[float]], bool],
) -> tuple[list[float], list[float]]:
    """Pairs of (target run, reference run right after it) until ``stop(targets, references)``.

    ``warmup`` pairs run first and are not timed. For synchronous (CPU) clocks: each pair is read
    as soon as it is measured, because ``stop`` looks at the times."""
    for _ in range(warmup):
        target()
        reference()
    targets: list[float] = []
    references: list[float] = []
    while True:
        a = clock.mark()
        target()
        b = clock.mark()
        reference()
        c = clock.mark()
        targets.append(clock.elapsed_ms(a, b))
        references.append(clock.elapsed_ms(b, c))
        if stop(targets, references):
            return targets, references
