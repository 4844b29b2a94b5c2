import json

from nas_predictor.latency import LatencyLabel, RawStats, RobustStats


def make_label(**overrides) -> LatencyLabel:
    fields = dict(model="m.onnx", label_ms=1.5, estimator="gated-ratio", provider="cpu",
                  execution_providers=["CPUExecutionProvider"], batch_size=1,
                  raw=RawStats(1.6, 1.5, 1.4, 3.0, 40, 30, 40, 1), robust=RobustStats(1.5, 0.22, 0.3, 1.45, [1.45]))
    return LatencyLabel(**{**fields, **overrides})


def test_record_round_trips_through_json():
    label = make_label(weights_filled=True, filled_parameters=6, notes=["x"])
    data = json.loads(json.dumps(label.to_dict()))
    assert data["raw"]["pairs_kept"] == 30 and data["robust"]["gated_ratio"] == 0.22
    assert LatencyLabel.from_dict(data) == label


def test_summary_line_says_estimator_pairs_and_flags():
    line = make_label(fallback=True, weights_filled=True, filled_parameters=6).summary()
    assert "1.500 ms" in line and "gated-ratio" in line and "pairs 30/40" in line
    assert "weights filled: 6" in line and "FALLBACK" in line
