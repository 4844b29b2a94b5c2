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


def test_runs_are_stored_rounded_and_old_records_still_load():
    from nas_predictor.latency.record import RECORD_VERSION, stored_runs

    assert stored_runs([[1.234567891, 2.0], []]) == [[1.2346, 2.0], []]
    label = make_label(target_runs_ms=[[1.5, 1.6]], reference_runs_ms=[[6.7, 6.8]],
                       robust=RobustStats(gated_ms=1.5, reference_scale_ms=6.7, kept_median_ms=1.55))
    data = json.loads(json.dumps(label.to_dict()))
    assert data["record_version"] == RECORD_VERSION == 2 and data["target_runs_ms"] == [[1.5, 1.6]]
    assert LatencyLabel.from_dict(data) == label
    old = {k: v for k, v in data.items() if k not in ("target_runs_ms", "reference_runs_ms")}
    old["record_version"] = 1
    old["robust"] = {k: v for k, v in data["robust"].items() if k not in ("reference_scale_ms", "kept_median_ms")}
    back = LatencyLabel.from_dict(old)  # a line of the committed dataset (record version 1)
    assert back.record_version == 1 and back.target_runs_ms == [] and back.robust.kept_median_ms is None
