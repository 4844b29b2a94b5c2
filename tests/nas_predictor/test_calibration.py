import numpy as np
import pytest

from nas_predictor.calibration import apply_calibration, fit_linear_calibration, fit_log_scale
from nas_predictor.errors import DataError
from nas_predictor.metrics import kendall_tau


def test_calibration_recovers_a_linear_map_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    raw = rng.uniform(60, 80, 200)
    labels = 0.5 * raw + 50 + rng.normal(0, 0.1, 200)
    cal = fit_linear_calibration(raw, labels)
    assert cal["scale"] == pytest.approx(0.5, abs=0.01) and cal["shift"] == pytest.approx(50, abs=0.5)
    fixed = apply_calibration(raw, cal)
    assert np.mean(np.abs(fixed - labels)) < 0.2 < np.mean(np.abs(raw - labels))
    assert kendall_tau(raw, fixed) == pytest.approx(1.0)


def test_a_reversing_fit_only_shifts_the_level():
    raw = np.array([1.0, 2.0, 3.0])
    cal = fit_linear_calibration(raw, np.array([3.0, 2.0, 1.0]))
    assert cal["scale"] == 1.0
    assert kendall_tau(raw, apply_calibration(raw, cal)) == pytest.approx(1.0)


def test_bad_inputs_are_rejected():
    with pytest.raises(DataError, match="matching"):
        fit_linear_calibration(np.zeros(3), np.zeros(4))
    with pytest.raises(DataError, match="finite"):
        fit_linear_calibration(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert apply_calibration(np.ones(2), None).tolist() == [1.0, 1.0]


def test_log_scale_recovers_a_factor_and_ignores_one_bad_timing():
    pred = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    assert fit_log_scale(pred, 1.7 * pred) == pytest.approx(1.7)
    # one of five timings 10x off (a throttled run) leaves the median ratio, and so the factor, alone
    noisy = 1.7 * pred
    noisy[2] *= 10
    assert fit_log_scale(pred, noisy) == pytest.approx(1.7)
    # an even count: the geometric middle of the two middle ratios
    assert fit_log_scale(np.ones(2), np.array([2.0, 8.0])) == pytest.approx(4.0)


@pytest.mark.parametrize("pred, measured, message", [
    (np.ones(3), np.ones(2), "matching arrays"),
    (np.ones(0), np.ones(0), "matching arrays"),
    (np.array([1.0, -1.0]), np.ones(2), "predicted latencies must be finite and positive"),
    (np.ones(2), np.array([1.0, np.nan]), "measured latencies must be finite and positive"),
])
def test_log_scale_rejects_bad_inputs(pred, measured, message):
    with pytest.raises(DataError, match=message):
        fit_log_scale(pred, measured)
