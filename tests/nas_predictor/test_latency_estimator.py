"""The one latency estimator: what it refuses before reading any network, and that the command line and the
search's PredictedLatency give the same estimate through it (the NNI filter's: tests/strategies/test_nni_filter.py)."""

from __future__ import annotations

import json

import pytest

from nas_predictor.errors import ConfigError
from nas_predictor.latency_estimator import LatencyEstimator

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def estimator():
    return LatencyEstimator.create("latency-help-b1", "titan_rtx_1", device="cpu")


def test_what_is_refused_before_any_network_is_read(estimator):
    with pytest.raises(ConfigError, match="nb201-accuracy is not a latency predictor"):
        LatencyEstimator.create("nb201-accuracy")
    with pytest.raises(ConfigError, match=r"latency predictor 'latency-help-b1' has no setting 'pixel3'; it predicts "
                                          r"titan_rtx_1, 2080ti_1"):
        LatencyEstimator.create(estimator.predictor, "pixel3", name="latency-help-b1")
    for calibrate in (None, 2.0):
        with pytest.raises(ConfigError, match="give calibrate a timings file"):
            LatencyEstimator.create(estimator.predictor, "nearest", calibrate=calibrate)
    assert (estimator.setting, estimator.batch_size, estimator.calibration) == ("titan_rtx_1", 1, None)
    assert estimator.describe() == "latency on titan_rtx_1 predicted by latency-help-b1"
    assert LatencyEstimator.create(estimator.predictor, "titan_rtx_1", calibrate=2.0, name="x").describe() == \
        "latency on titan_rtx_1 predicted by x, mapped x2.000"


def test_the_command_the_search_and_the_filter_agree(estimator, tmp_path, capsys):
    from nas_predictor.cli import main
    from nas_predictor.data.latency_graphs import network_graph
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx
    from nas_predictor.spaces import get_space
    from strategies.constraints import PredictedLatency

    space = get_space("nasbench201")
    model = tmp_path / "cell.onnx"
    export_onnx(space.build_network(ARCH), space.network_input_shape(ARCH), model)
    [record] = estimator.estimate([onnx_to_graph(model)], [str(model)])
    assert record.source == "model" and record.latency_ms == record.unscaled_ms == record.model_ms > 0
    assert estimator.estimate([network_graph(space, ARCH)], [str(model)]) == [record]  # exported by the space
    search = PredictedLatency(estimator, "nasbench201", cache=str(tmp_path))
    assert search.confidence(ARCH) == record.as_dict()
    assert search.describe() == estimator.describe()
    assert main(["latency", str(model), "--predictor", "latency-help-b1", "--setting", "titan_rtx_1", "--json",
                 "--device", "cpu"]) == 0
    [row] = json.loads(capsys.readouterr().out)["results"]
    assert (row["predicted_ms"], row["model_ms"], row["source"]) == (record.latency_ms, record.model_ms, "model")
