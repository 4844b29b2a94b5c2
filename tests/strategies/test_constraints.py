"""Latency sources: HELP's measured table and a latency predictor over exported networks."""

from __future__ import annotations

import numpy as np
import pytest

from nas_predictor.data.latency_graphs import cached_network_graphs
from nas_predictor.errors import ConfigError
from strategies.constraints import FunctionLatency, LatencyConstraint, PredictedLatency, TableLatency

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
         "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"]


def test_table_latency_is_the_measured_value(data_dir):
    from nas_predictor.data.latency_tables import load_help_latency

    table = load_help_latency("nasbench201", "pixel3", data_dir)
    source = TableLatency("pixel3", data_dir=str(data_dir))
    rows = [table.archs.index(a) for a in ARCHS]
    assert np.allclose(source.latency_ms(ARCHS), table.latency_ms[rows])
    with pytest.raises(ConfigError, match="only for nasbench201"):
        TableLatency("pixel3", space="fbnet")


def test_predicted_latency_exports_each_network_once(tmp_path):
    source = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path))
    first = source.latency_ms(ARCHS)
    assert set(cached_network_graphs("nasbench201", tmp_path)) == set(ARCHS)
    # a conv-heavy cell is slower than a cell of skips and nones
    assert first[0] > first[1] > 0
    again = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path))
    assert np.allclose(again.latency_ms(ARCHS[::-1]), first[::-1])
    with pytest.raises(ConfigError, match="has no setting 'pixel3'"):
        PredictedLatency("latency-help-b1", "nasbench201", "pixel3", cache=str(tmp_path))


def test_constraint_bound_and_errors():
    c = LatencyConstraint(FunctionLatency(lambda archs: [float(len(a)) for a in archs]), 3.0)
    assert c.feasible(["ab", "abcd", "abc"]).tolist() == [True, False, True]
    with pytest.raises(ConfigError, match="positive number of ms"):
        LatencyConstraint(FunctionLatency(len), 0)


def _timings(tmp_path, source: PredictedLatency, factors) -> tuple[list, object]:
    """Tiny ONNX models, and a CSV saying the user's device runs them ``factors`` times the prediction."""
    import torch

    from nas_predictor.onnx import onnx_to_graph
    from search_spaces.onnx_export import export_onnx

    models = []
    for width in (8, 16, 32):
        models.append(tmp_path / f"net{width}.onnx")
        export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU()), (1, 3, 32, 32), models[-1])
    raw = source.predictor.predict_latency([onnx_to_graph(m) for m in models], source.setting)
    timings = tmp_path / "timings.csv"
    timings.write_text("model,ms\n" + "".join(f"{m},{r * k}\n" for m, r, k in zip(models, raw, factors)))
    return models, timings


def test_predicted_latency_rescaled_by_a_factor_or_by_timings(tmp_path):
    base = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path))
    raw = base.latency_ms(ARCHS)
    doubled = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path), calibrate=2.0)
    assert np.allclose(doubled.latency_ms(ARCHS), 2.0 * raw)
    assert "mapped x2.000" in doubled.describe()
    _, timings = _timings(tmp_path, base, (1.5, 4.0, 2.5))  # median ratio 2.5
    fitted = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path), calibrate=timings)
    assert fitted.scale == pytest.approx(2.5, rel=1e-4) and fitted.calibration["num_measured"] == 3
    assert np.allclose(fitted.latency_ms(ARCHS), 2.5 * raw)
    assert "fitted to 3 timings in" in fitted.describe()
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ConfigError, match="latency scale|factor"):
            PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path), calibrate=bad)
    # "nearest": the predictor's setting closest to the timings (here exactly titan_rtx_1's, 2.5x)
    _, timings = _timings(tmp_path, base, (2.5, 2.5, 2.5))
    nearest = PredictedLatency("latency-help-b1", "nasbench201", "nearest", cache=str(tmp_path), calibrate=timings,
                               calibrate_fit="scale")
    assert nearest.setting == "titan_rtx_1" and nearest.scale == pytest.approx(2.5, rel=1e-4)
    with pytest.raises(ConfigError, match="give calibrate a timings file"):
        PredictedLatency("latency-help-b1", "nasbench201", "nearest", cache=str(tmp_path), calibrate=2.0)


def test_predicted_latency_of_a_batch_32_setting_reads_batch_32_graphs(tmp_path):
    from nas_predictor.onnx.rebatch import rebatch

    source = PredictedLatency("latency-help-b32", "nasbench201", "titan_rtx_32", cache=str(tmp_path))
    ms = source.latency_ms(ARCHS[:1])
    graph = cached_network_graphs("nasbench201", tmp_path)[ARCHS[0]]
    assert ms[0] == pytest.approx(float(source.predictor.predict_latency([rebatch(graph, 32)], "titan_rtx_32")[0]))
    assert ms[0] != pytest.approx(float(source.predictor.predict_latency([graph], "titan_rtx_32")[0]), rel=1e-3)
