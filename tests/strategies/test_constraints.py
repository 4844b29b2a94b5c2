"""Latency sources: HELP's measured table and a latency predictor over exported networks."""

from __future__ import annotations

import numpy as np
import pytest

from nas_predictor.data.latency_graphs import cached_network_graphs
from nas_predictor.errors import ConfigError, DataError
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
    # NB201 is a training family of the predictor: the network's own output is what is reported
    assert [source.confidence(a)["source"] for a in ARCHS] == ["model", "model"]
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
    """Tiny ONNX models, and a CSV saying the user's device runs them ``factors`` times the estimate
    ``nas-predictor latency`` reports for them (what the map is fitted on and applied to)."""
    import torch

    from nas_predictor.latency_domain import assess_latency
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx

    models = []
    for width in (8, 16, 32):
        models.append(tmp_path / f"net{width}.onnx")
        export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU()), (1, 3, 32, 32), models[-1])
    estimates = assess_latency(source.predictor, [onnx_to_graph(m) for m in models], source.setting)
    # two-node networks lie far below the training range: their reported estimate is the fallback, so
    # a map fitted on the network's raw outputs instead would miss the factors
    assert all(e.source == "fallback" and e.fallback_ms != pytest.approx(e.model_ms, rel=0.01) for e in estimates)
    raw = [e.predicted_ms for e in estimates]
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
    assert [m["source"] for m in fitted.calibration["measured"]] == ["fallback"] * 3
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
    assert source.confidence(ARCHS[0])["in_distribution"] is True  # so the report is the network's output
    assert ms[0] == pytest.approx(float(source.predictor.predict_latency([rebatch(graph, 32)], "titan_rtx_32")[0]))
    assert ms[0] != pytest.approx(float(source.predictor.predict_latency([graph], "titan_rtx_32")[0]), rel=1e-3)


# The extremes of the NB201 cell (every edge one op) and a few random cells. Not the all-skip cell:
# its network (56 nodes) is smaller than any the predictors were trained on (71 and up, flagged
# below 71 / 1.25), so it is judged on its fallback (see the next test).
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
NB201_TYPICAL = ARCHS + ["|{0}~0|+|{0}~0|{0}~1|+|{0}~0|{0}~1|{0}~2|".format(op)
                         for op in ("none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")]


def test_typical_nb201_networks_lie_in_the_shipped_predictors_domains(tmp_path):
    from search_spaces.nasbench201 import NASBench201

    rng = np.random.default_rng(0)
    archs = NB201_TYPICAL + [NASBench201().sample(rng) for _ in range(6)]
    for name in ("latency-help-b1", "latency-help-b32"):
        for setting in PredictedLatency(name, "nasbench201", cache=str(tmp_path)).predictor.settings:
            source = PredictedLatency(name, "nasbench201", setting, cache=str(tmp_path))
            constraint = LatencyConstraint(source, 1e6)
            assert constraint.feasible(archs).all()
            records = [source.confidence(a) for a in archs]
            assert [(r["in_distribution"], r["reasons"]) for r in records] == [(True, [])] * len(archs), setting
            assert [r["latency_ms"] for r in records] == [r["model_ms"] for r in records]
            assert constraint.unsure() == []


OFA_ARCH = ("ks=3,3,7,7,5,7,5,0,7,7,3,0,7,3,0,0,7,3,0,0;e=3,3,4,4,6,4,4,0,3,6,4,0,4,6,0,0,6,3,0,0;"
            "d=4,3,3,2,2;r=212")


def test_a_network_outside_the_training_domain_is_flagged_and_judged_on_its_fallback(tmp_path):
    # gold_6226 was trained on NAS-Bench-201 and FBNet only (HELP has no OFA timings there);
    # titan_rtx_1 on OFA-MobileNetV3 networks too
    gold = PredictedLatency("latency-help-b1", "ofa_mbv3", "gold_6226", cache=str(tmp_path))
    record = gold.confidence(OFA_ARCH)
    assert record["in_distribution"] is False and record["source"] == "fallback"
    assert record["reasons"][0].startswith("op types never seen in training: Clip x")
    assert any(r.startswith("M params") and "far outside training range" in r for r in record["reasons"])
    assert gold.latency_ms([OFA_ARCH])[0] == record["latency_ms"] == record["fallback_ms"] != record["model_ms"]
    constraint = LatencyConstraint(gold, 1e6)
    assert constraint.feasible([OFA_ARCH]).all() and constraint.unsure() == [OFA_ARCH]
    # a calibration maps the reported fallback, and the network's output beside it, the same way
    doubled = PredictedLatency("latency-help-b1", "ofa_mbv3", "gold_6226", cache=str(tmp_path), calibrate=2.0)
    twice = doubled.confidence(OFA_ARCH)
    assert twice["latency_ms"] == pytest.approx(2 * record["fallback_ms"])
    assert twice["model_ms"] == pytest.approx(2 * record["model_ms"])
    titan = LatencyConstraint(PredictedLatency("latency-help-b1", "ofa_mbv3", "titan_rtx_1", cache=str(tmp_path)),
                              1e6)
    assert titan.feasible([OFA_ARCH]).all() and titan.confidence(OFA_ARCH)["in_distribution"] is True
    assert titan.unsure() == []
    # the degenerate corner of the NB201 space: a network of skips only, below the smallest trained
    skips = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path)).confidence(ALL_SKIP)
    assert skips["reasons"] == ["nodes 56 far outside training range 71-461",
                                "depth 52 far outside training range 67-383"]
    assert skips["latency_ms"] == skips["fallback_ms"]


def test_a_predictor_without_a_domain_summary_reports_its_output_unchecked(tmp_path):
    from nas_predictor.latency_domain import DOMAIN_KEY, NO_DOMAIN_REASON

    source = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path))
    # as a checkpoint saved before issue 26 (a new dict: the loaded one stays as it was)
    source.predictor.meta = {k: v for k, v in source.predictor.meta.items() if k != DOMAIN_KEY}
    ms = source.latency_ms(ARCHS)
    graphs = [cached_network_graphs("nasbench201", tmp_path)[a] for a in ARCHS]
    assert ms.tolist() == pytest.approx(source.predictor.predict_latency(graphs, "titan_rtx_1").tolist())
    assert source.confidence(ARCHS[0]) == {"latency_ms": ms[0], "source": "model", "in_distribution": None,
                                           "reasons": [NO_DOMAIN_REASON], "model_ms": ms[0], "fallback_ms": None}
    constraint = LatencyConstraint(source, 1e6)
    constraint.feasible(ARCHS)
    assert constraint.unsure() == ARCHS  # unchecked counts as unsure
    # measured and user latencies are no predictions: nothing to be unsure of
    user = LatencyConstraint(FunctionLatency(lambda archs: [1.0] * len(archs)), 2.0)
    assert user.feasible(ARCHS).all() and user.confidence(ARCHS[0]) is None and user.unsure() == []


def test_a_calibrated_latency_that_overflows_is_an_error(tmp_path):
    from nas_predictor.calibration import LatencyMap

    source = PredictedLatency("latency-help-b1", "nasbench201", "titan_rtx_1", cache=str(tmp_path),
                              calibrate=LatencyMap(1e307, 2.0, "power"))
    with pytest.raises(DataError, match=r"^\|nor_conv_3x3~0\|.*: the calibrated latency_ms is not finite \(inf\)$"):
        source.latency_ms(ARCHS[:1])
