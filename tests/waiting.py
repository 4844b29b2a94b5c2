"""Test helper: start threads while a lock is held as another process would hold it, and check they wait."""

from __future__ import annotations

import threading
from typing import Any, Callable, ContextManager


def calls_wait_for(held: ContextManager, call: Callable[[], Any], threads: int = 1,
                   while_held: Callable[[], None] | None = None, timeout: float = 60) -> list[Any]:
    """Run ``call`` in ``threads`` threads started while ``held`` is entered; assert that none of them
    returns within 0.5 s (they wait for the lock), run ``while_held`` (the holder finishing its work),
    release, and return what the calls returned once they are all done."""
    done: list[Any] = []
    with held:
        workers = [threading.Thread(target=lambda: done.append(call()), daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        workers[0].join(0.5)
        assert all(w.is_alive() for w in workers) and not done, "a call went ahead while the lock was held"
        if while_held is not None:
            while_held()
    for worker in workers:
        worker.join(timeout)
    assert len(done) == threads, "a call did not finish after the lock was released"
    return done
