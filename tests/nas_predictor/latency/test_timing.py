import pytest

from nas_predictor.latency.timing import PerfClock, paired_runs, timed_runs


class FakeClock:
    """A clock that advances only when the timed functions say so, and logs syncs."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def mark(self) -> float:
        return self.now

    def elapsed_ms(self, start: float, end: float) -> float:
        return end - start

    def sync(self) -> None:
        self.log.append("sync")


def test_timed_runs_warms_up_then_times_each_call():
    clock = FakeClock()
    durations = iter([50.0, 40.0, 1.0, 2.0, 3.0])  # two slow warm-up calls, then three timed ones

    def fn():
        clock.log.append("run")
        clock.now += next(durations)

    assert timed_runs(fn, clock, warmup=2, repeats=3) == [1.0, 2.0, 3.0]
    # synchronised after the warm-up and before the marks are read, never between timed calls
    assert clock.log == ["run", "run", "sync", "run", "run", "run", "sync"]
    with pytest.raises(ValueError):
        timed_runs(fn, clock, warmup=0, repeats=0)


def test_paired_runs_times_target_then_reference_until_stop():
    clock = FakeClock()
    order = []

    def target():
        order.append("t")
        clock.now += 2.0

    def reference():
        order.append("r")
        clock.now += 7.0

    targets, refs = paired_runs(target, reference, clock, warmup=1, stop=lambda t, r: len(t) == 3)
    assert targets == [2.0] * 3 and refs == [7.0] * 3
    assert order == ["t", "r"] * 4  # one warm-up pair, then three timed pairs


def test_perf_clock_measures_milliseconds():
    clock = PerfClock()
    a = clock.mark()
    b = clock.mark()
    assert 0 <= clock.elapsed_ms(a, b) < 1000
    clock.sync()
