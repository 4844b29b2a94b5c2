"""Real CPU measurements of tiny models with the quick protocol (see conftest): behaviour, not speed."""

import json
import math
import statistics

import pytest

from nas_predictor.errors import OnnxError
from nas_predictor.latency import REFERENCE_VERSION, CpuProtocol, Measurer
from nas_predictor.latency.protocol import GATED, MIN_OF_PASS

from .conftest import QUICK


def check_complete(label, batch=1):
    assert math.isfinite(label.label_ms) and label.label_ms > 0
    assert label.estimator in (GATED, MIN_OF_PASS)
    assert label.provider == "cpu" and label.execution_providers == ["CPUExecutionProvider"]
    assert label.batch_size == batch and label.threads == 1 and label.inter_op_threads == 1
    assert label.reference_version == REFERENCE_VERSION and label.reference_fast_ms > 0
    assert label.onnxruntime_version and label.torch_version and label.cpu_model and label.machine
    assert label.timestamp.endswith("Z") and label.onnx_opset == 17
    raw = label.raw
    assert raw.runs == raw.pairs_total >= QUICK.min_pass_pairs and 0 <= raw.pairs_kept <= raw.pairs_total
    assert raw.min_ms <= raw.p10_ms <= raw.median_ms <= raw.max_ms and raw.passes >= 1
    assert label.robust.min_of_pass_ms > 0 and len(label.robust.pass_min_ms) == raw.passes
    if label.estimator == GATED:
        assert label.label_ms == label.robust.gated_ms
    if label.fallback:  # only after every retry
        assert raw.passes == QUICK.max_retries + 1
    json.dumps(label.to_dict())  # plain JSON


def test_weighted_model_gets_a_finite_label_and_a_complete_record(measurer, tiny_weighted):
    label = measurer.measure(tiny_weighted, name="tiny")
    check_complete(label)
    assert label.model == "tiny" and not label.weights_filled and label.core == measurer.core
    assert label.protocol == QUICK.to_dict()


def test_weight_free_file_is_measured_with_weights_filled(measurer, tiny_weight_free, tmp_path):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_weight_free)
    label = measurer.measure(path)
    check_complete(label)
    assert label.model == str(path) and label.weights_filled and label.filled_parameters >= 5
    assert any("filled with random values" in note for note in label.notes)


def test_batch_override_changes_the_records_batch(measurer, tiny_weight_free):
    label = measurer.measure(tiny_weight_free, batch=8)
    check_complete(label, batch=8)
    assert any("batch set to 8" in note for note in label.notes)


def test_measure_many_reports_bad_files_and_measures_the_rest(measurer, tiny_weighted, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not onnx")
    outcomes = sorted(measurer.measure_many([tiny_weighted, bad, tiny_weighted], window=2), key=lambda o: o.index)
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert outcomes[0].label and outcomes[2].label and outcomes[1].label is None
    assert isinstance(outcomes[1].error, OnnxError) and "bad.onnx" in str(outcomes[1].error)


def test_long_models_get_several_passes_and_the_min_of_pass_label(tiny_weighted):
    # long_ms=0: every model counts as long, so the min-of-pass path runs on a tiny model
    measurer = Measurer("cpu", protocol=CpuProtocol(**{**QUICK.to_dict(), "long_ms": 0.0, "max_pass_seconds": 0.1}))
    label = measurer.measure(tiny_weighted)
    assert label.estimator == MIN_OF_PASS and label.raw.passes == 2 and not label.fallback
    assert label.label_ms == label.robust.min_of_pass_ms == pytest.approx(statistics.median(label.robust.pass_min_ms))
    assert label.robust.gated_ratio is None or label.robust.gated_ratio > 0  # the gated estimate is stored too
    assert any("long model" in note for note in label.notes)


def test_corrupt_bytes_raise_an_onnx_error(measurer):
    with pytest.raises(OnnxError):
        measurer.measure(b"\x08\x07garbage")
