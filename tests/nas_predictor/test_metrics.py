import numpy as np
import pytest
from scipy import stats

from nas_predictor.metrics import acc_within, kendall_tau, mape, summarize


def test_kendall_tau_is_scipy_tau_b_with_ties():
    truth = np.array([1, 2, 2, 3, 4.0])
    pred = np.array([1, 3, 2, 2, 5.0])
    assert kendall_tau(truth, pred) == pytest.approx(stats.kendalltau(truth, pred).statistic)
    assert kendall_tau(truth, truth) == pytest.approx(1.0)
    assert kendall_tau(truth, -truth) == pytest.approx(-1.0)


def test_mape_and_acc_within():
    truth = np.array([100.0, 100.0, 100.0, 100.0])
    pred = np.array([100.5, 104.0, 92.0, 130.0])
    assert mape(truth, pred) == pytest.approx((0.005 + 0.04 + 0.08 + 0.30) / 4)
    assert acc_within(truth, pred, 0.01) == 0.25
    assert acc_within(truth, pred, 0.05) == 0.5
    assert acc_within(truth, pred, 0.10) == 0.75
    assert set(summarize(truth, pred)) == {"kendall_tau", "mape", "acc_1pct", "acc_5pct", "acc_10pct"}


def test_column_mape_averages_each_setting_on_its_known_labels():
    from nas_predictor.metrics import column_mape

    truth = np.array([[1.0, 2.0], [2.0, np.nan], [4.0, 4.0]])
    pred = np.array([[1.1, 2.0], [2.0, 9.0], [4.0, 5.0]])
    assert column_mape(truth, pred) == pytest.approx((0.1 / 3 + 0.25 / 2) / 2)
    assert column_mape(truth[:, 0], pred[:, 0]) == pytest.approx(0.1 / 3)
