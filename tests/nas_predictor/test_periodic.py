"""periodically: a step every few seconds while a block runs, and never after it."""

import threading
import time

from nas_predictor.periodic import periodically


def test_steps_run_while_the_block_runs_and_stop_with_it():
    calls = []
    with periodically(lambda: calls.append(time.monotonic()), 0.02, "test", first=True):
        time.sleep(0.15)
    count = len(calls)
    assert count >= 3 and not any(t.name == "test" for t in threading.enumerate())
    time.sleep(0.05)
    assert len(calls) == count  # nothing after the block


def test_a_step_that_returns_false_ends_the_calls():
    calls = []

    def step():
        calls.append(1)
        return False

    with periodically(step, 0.01, "test-false"):
        time.sleep(0.1)
    assert calls == [1]
