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


def test_latency_map_scale_power_and_auto():
    from nas_predictor.calibration import MIN_POWER_TIMINGS, fit_latency_map
    from nas_predictor.errors import ConfigError

    rng = np.random.default_rng(3)
    pred = rng.uniform(1.0, 20.0, 12)
    # a device where big networks cost relatively more: measured = 0.5 * pred^1.4 (1 % noise)
    measured = 0.5 * pred ** 1.4 * rng.uniform(0.99, 1.01, 12)
    power = fit_latency_map(pred, measured, "power")
    assert power.fit == "power" and power.exponent == pytest.approx(1.4, abs=0.02)
    assert np.allclose(power.apply(pred), measured, rtol=0.03)
    assert fit_latency_map(pred, measured, "auto") == power  # left-out timings prefer the power law
    scale = fit_latency_map(pred, measured, "scale")
    assert scale.exponent == 1.0 and scale.scale == pytest.approx(fit_log_scale(pred, measured))
    # a device that is only faster: auto keeps one factor; below MIN_POWER_TIMINGS it never fits two
    assert fit_latency_map(pred, 2.0 * pred * rng.uniform(0.95, 1.05, 12), "auto").exponent == 1.0
    few = slice(0, MIN_POWER_TIMINGS - 1)
    assert fit_latency_map(pred[few], measured[few], "auto").fit == "scale"
    # a fit that would reverse the ranking, or cannot be made, falls back to one factor
    assert fit_latency_map(pred, 1.0 / pred, "power").fit == "scale"
    assert fit_latency_map(np.ones(4), np.arange(1.0, 5.0), "power").fit == "scale"
    assert "predicted^1.4" in power.describe() and scale.describe().startswith("x")
    with pytest.raises(ConfigError, match="unknown latency fit"):
        fit_latency_map(pred, measured, "cubic")
    with pytest.raises(DataError):
        fit_latency_map(pred, -measured)


def test_fixed_latency_map_of_a_calibrate_argument():
    from nas_predictor.calibration import LatencyMap, fixed_latency_map
    from nas_predictor.errors import ConfigError

    assert fixed_latency_map(None) == LatencyMap(1.0)
    assert fixed_latency_map(2) == LatencyMap(2.0)
    power = LatencyMap(0.5, 1.3, "power")
    assert fixed_latency_map(power) is power
    assert fixed_latency_map("timed.csv") is None  # a file: the caller fits it
    for bad in (0, -1.5, float("nan"), True):
        with pytest.raises(ConfigError, match="positive finite factor"):
            fixed_latency_map(bad)


def test_choose_latency_map_takes_the_column_that_fits_the_timings():
    from nas_predictor.calibration import choose_latency_map

    rng = np.random.default_rng(4)
    measured = rng.uniform(1.0, 10.0, 9)
    # column 2 is the device at a third of the speed (1 % noise); columns 0-1 order the networks differently
    candidates = np.stack([rng.uniform(1.0, 10.0, 9), measured[::-1], measured / 3 * rng.uniform(0.99, 1.01, 9)], axis=1)
    index, latency_map = choose_latency_map(candidates, measured, "scale")
    assert index == 2 and latency_map.scale == pytest.approx(3.0, rel=0.02)
    with pytest.raises(DataError, match="networks, settings"):
        choose_latency_map(measured, measured)


# Issue 26: 5 timings that an unbounded least-squares power law turned into 0.098 * pred^2.77, which
# then predicted a network with a raw prediction of ~400 ms at 1.57 million ms.
ISSUE_PRED = np.array([2.0, 3.0, 4.0, 5.0, 6.5])
ISSUE_MEASURED = 0.098 * ISSUE_PRED ** 2.77 * np.array([1.02, 0.97, 1.01, 0.99, 1.03])


def test_the_issue_timings_fit_an_implausible_exponent_without_the_bound():
    b, log_a = np.polyfit(np.log(ISSUE_PRED), np.log(ISSUE_MEASURED), 1)
    assert b == pytest.approx(2.77, abs=0.05) and np.exp(log_a) == pytest.approx(0.098, rel=0.1)
    assert np.exp(log_a) * 400.0 ** b > 1e6  # what --calibrate-fit auto used to print for the big network


def test_auto_never_extrapolates_the_issue_timings_to_millions_of_ms():
    from nas_predictor.calibration import fit_latency_map

    auto = fit_latency_map(ISSUE_PRED, ISSUE_MEASURED, "auto")
    # the timings fit a perfect law, but its exponent is implausible: auto keeps one factor
    assert auto.fit == "scale" and auto.exponent == 1.0
    assert auto.scale == pytest.approx(np.exp(np.median(np.log(ISSUE_MEASURED / ISSUE_PRED))))
    assert float(auto.apply(400.0)) < 1000.0


def test_an_explicit_power_fit_is_clamped_and_its_scale_refitted():
    from nas_predictor.calibration import EXPONENT_RANGE, fit_latency_map

    power = fit_latency_map(ISSUE_PRED, ISSUE_MEASURED, "power")
    assert power.fit == "power" and power.exponent == EXPONENT_RANGE[1] == 1.5
    # the exact least-squares scale at the bound: the mean log residual
    assert np.log(power.scale) == pytest.approx(np.mean(np.log(ISSUE_MEASURED) - 1.5 * np.log(ISSUE_PRED)))
    assert float(power.apply(400.0)) < 1e5
    # a shrinking law is held at the lower bound the same way
    low = fit_latency_map(ISSUE_PRED, 3.0 * ISSUE_PRED ** 0.2, "power")
    assert low.exponent == EXPONENT_RANGE[0] == 0.5


def test_auto_needs_a_clear_leave_one_out_win_for_the_power_law(monkeypatch):
    from nas_predictor import calibration
    from nas_predictor.calibration import fit_latency_map

    pred = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 13.0])
    # exponent 1.15 under 5-9 % timing noise: the power law wins leave-one-out, but by less than 10 %
    slight = 2.0 * pred ** 1.15 * np.array([1.06, 1.09, 1.09, 0.95, 1.09, 0.92])
    assert calibration.AUTO_POWER_MARGIN == 0.10
    assert fit_latency_map(pred, slight, "auto").fit == "scale"
    monkeypatch.setattr(calibration, "AUTO_POWER_MARGIN", 0.0)  # any win at all: the power law
    assert fit_latency_map(pred, slight, "auto").fit == "power"
    monkeypatch.undo()
    # exponent 1.4 with 1 % noise: a clear win, in range
    clear = 0.5 * pred ** 1.4 * np.array([1.01, 0.99, 1.0, 1.01, 0.99, 1.0])
    chosen = fit_latency_map(pred, clear, "auto")
    assert chosen.fit == "power" and chosen.exponent == pytest.approx(1.4, abs=0.02)


def test_nearest_setting_inherits_the_bound():
    from nas_predictor.calibration import EXPONENT_RANGE, choose_latency_map

    # both columns fit the timings only through an implausible exponent: auto maps each by one factor
    candidates = np.stack([ISSUE_PRED, ISSUE_PRED * 1.7], axis=1)
    index, latency_map = choose_latency_map(candidates, ISSUE_MEASURED, "auto")
    assert latency_map.fit == "scale"
    _, power = choose_latency_map(candidates, ISSUE_MEASURED, "power")
    assert EXPONENT_RANGE[0] <= power.exponent <= EXPONENT_RANGE[1]
