"""Something done every few seconds while a block of code runs: a progress poll, a heartbeat."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def periodically(step: Callable[[], bool | None], seconds: float, name: str, first: bool = False) -> Iterator[None]:
    """Call ``step`` every ``seconds`` in a daemon thread while the block runs (once at the start too when
    ``first``); a step that returns False ends the calls. The thread is joined when the block ends, so no
    step runs after it."""
    stop = threading.Event()

    def loop() -> None:
        if first and step() is False:
            return
        while not stop.wait(seconds):
            if step() is False:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
