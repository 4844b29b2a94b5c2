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
