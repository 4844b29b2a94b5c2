import os

import pytest

from nas_predictor.latency.errors import MeasurementError
from nas_predictor.latency.pinning import NO_PINNING, can_pin, choose_core, pinned

pytestmark = pytest.mark.skipif(not can_pin(), reason="no sched_setaffinity on this OS")


def test_default_core_is_the_last_allowed_one_and_minus_one_disables():
    allowed = sorted(os.sched_getaffinity(0))
    assert choose_core(None) == allowed[-1]
    assert choose_core(allowed[0]) == allowed[0]
    assert choose_core(NO_PINNING) is None


def test_unavailable_core_is_a_clear_error():
    with pytest.raises(MeasurementError, match="core 9999 is not available"):
        choose_core(9999)


def test_pinned_runs_on_the_core_and_restores_the_affinity():
    before = os.sched_getaffinity(0)
    core = choose_core(None)
    with pinned(core):
        assert os.sched_getaffinity(0) == {core}
    assert os.sched_getaffinity(0) == before
    with pinned(None):
        assert os.sched_getaffinity(0) == before
