"""benchmarks/latency_unseen_device.py: the few-timing fits choose and map the right predictor output."""


import numpy as np
import pytest



@pytest.fixture()
def bench(load_benchmark):
    return load_benchmark("latency_unseen_device")


def test_fits_recover_a_factor_and_a_power_law(bench):
    rng = np.random.default_rng(0)
    x, flops = rng.uniform(1, 10, 12), rng.uniform(1, 10, 12)
    assert np.allclose(bench.fit_map(x, flops, 3.0 * x, "scale")(x, flops), 3.0 * x)
    truth = 2.0 * x ** 0.5
    assert np.allclose(bench.fit_map(x, flops, truth, "power")(x, flops), truth)
    truth = 0.5 * x ** 0.7 * flops ** 0.4
    assert np.allclose(bench.fit_map(x, flops, truth, "power_flops")(x, flops), truth)


def test_the_output_that_fits_the_timings_is_chosen(bench):
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 10, 8)
    # column 1 is the truth / 4 up to 1 % noise, column 0 is unrelated
    candidates = np.stack([rng.uniform(1, 10, 8), truth / 4 * rng.uniform(0.99, 1.01, 8)], axis=1)
    j, f = bench.choose_and_fit(candidates, np.ones(8), truth, "scale")
    assert j == 1 and f(np.ones(1), np.ones(1))[0] == pytest.approx(4.0, rel=0.02)


def test_score_leaves_the_timed_networks_out_and_is_seeded(bench):
    rng = np.random.default_rng(2)
    truth = rng.uniform(1, 10, 40)
    flops = truth * rng.uniform(0.5, 2.0, 40)
    methods = {"exact": (np.stack([truth / 2, flops], axis=1), "scale"), "flops": (flops[:, None], "power")}
    a = bench.score(truth, flops, methods, shots=5, seed=0, draws=4)
    assert a == bench.score(truth, flops, methods, shots=5, seed=0, draws=4)
    assert a["exact"]["mape"] == pytest.approx(0.0, abs=1e-12) and a["exact"]["source_counts"] == [4, 0]
    assert a["flops"]["mape"] > 0.05 and "source_counts" not in a["flops"]


def test_nb201_cells_whose_output_ignores_the_input_are_left_out(bench):
    assert not bench.usable("nasbench201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert bench.usable("nasbench201", "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert bench.usable("fbnet", "anything")
