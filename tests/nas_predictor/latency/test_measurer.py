"""Real CPU measurements of tiny models with the quick protocol (see conftest): behaviour, not speed."""

import json
import math
import statistics

import pytest

from nas_predictor.errors import OnnxError
from nas_predictor.latency import REFERENCE_VERSION, CpuProtocol, InconsistentLabelError, Measurer
from nas_predictor.latency.consistency import check_label
from nas_predictor.latency.protocol import GATED, MIN_OF_PASS

from .conftest import QUICK, ContextHost


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
    # the runs are stored and the label agrees with them
    assert len(label.target_runs_ms) == len(label.reference_runs_ms) == raw.passes
    assert sum(map(len, label.target_runs_ms)) == raw.runs and check_label(label).verdict == "ok"
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


# --- injected timings: the reference's speed depends on what ran before it (issue 26) ---------------

def test_small_model_after_large_ones_is_labelled_with_its_own_runs(injected, tiny_weighted):
    # the MobileNetV3-Small: the reference ran at 6.5 ms after the large models measured
    # before, at 2.4 ms right after this 2.3 ms target
    measurer = injected(6.5, ContextHost({0: (30.0, 6.5), 1: (2.3, 2.4)}))
    outcomes = {o.index: o.label for o in measurer.measure_many([tiny_weighted, tiny_weighted], window=2)}
    small, large = outcomes[1], outcomes[0]
    assert small.estimator == GATED and small.reference_fast_ms == pytest.approx(6.5, rel=0.03)
    assert small.robust.gated_ratio * small.reference_fast_ms > 2.5 * 2.3  # what the old scaling made of it
    assert small.label_ms == pytest.approx(2.3, rel=0.03) and large.label_ms == pytest.approx(30.0, rel=0.03)
    assert small.robust.reference_scale_ms == pytest.approx(2.4, rel=0.03)
    assert small.label_ms <= small.robust.kept_median_ms * 1.12
    # every run is stored, and the label checks out against them exactly
    assert len(small.target_runs_ms[0]) == len(small.reference_runs_ms[0]) == small.raw.runs
    check = check_label(json.loads(json.dumps(small.to_dict())))
    assert check.verdict == "ok" and check.basis == "stored runs" and check.runs == small.raw.pairs_kept


def test_a_label_that_contradicts_its_runs_is_never_emitted(injected, tiny_weighted):
    # every pass of model 0 gives a ratio x low-percentile label of 19.2 ms from kept runs of median 10 ms
    targets = [20.0] * 48 + [10.0] * 52
    references = [10.0] * 95 + [2.0] * 5
    measurer = injected(10.0, ContextHost({1: (2.3, 10.0)}, fixed={0: [(targets, references)]}))
    outcomes = {o.index: o.label for o in measurer.measure_many([tiny_weighted, tiny_weighted], window=2)}
    label = outcomes[0]
    assert (label.estimator, label.fallback, label.label_ms, label.raw.passes) == (MIN_OF_PASS, True, 10.0, 4)
    assert label.robust.gated_ms == pytest.approx(19.2)  # stored for the record, never the label
    why = ("its gated-ratio label 19.2 ms exceeds the median of its kept pairs' target runs (10 ms) by more than "
           "the protocol's tolerance (1.12x)")
    assert label.notes[-2:] == [f"measured again after pass 3: {why}",
                                f"fallback: min-of-pass label, the gated label was refused after 4 passes: {why}"]
    assert check_label(label).verdict == "ok" and "FALLBACK" in label.summary()
    assert outcomes[1].label_ms == pytest.approx(2.3, rel=0.03)  # the other model is unaffected


def test_a_long_model_whose_label_keeps_contradicting_its_runs_is_an_error(injected, tiny_weighted):
    # most passes short and slow, the others long and fast: min-of-pass keeps saying 135 ms while most
    # runs take 50 ms, through every extra pass
    slow, fast = ([135.0] * 5, [10.0] * 5), ([50.0] * 50, [10.0] * 50)
    measurer = injected(10.0, ContextHost({}, fixed={0: [slow, slow, fast]}))
    outcome = next(measurer.measure_many([tiny_weighted]))
    assert isinstance(outcome.error, InconsistentLabelError) and outcome.label is None
    assert str(outcome.error) == (
        "<bytes>: its min-of-pass label 135 ms exceeds the median of all its target runs (50 ms) by more than the "
        "protocol's tolerance (1.12x) after 6 passes, so no label is stored: the reference runs do not track the "
        "target runs (is another process using the measuring core?); measure it again when the machine is quieter")
    with pytest.raises(InconsistentLabelError, match="after 6 passes"):
        measurer.measure(tiny_weighted)
