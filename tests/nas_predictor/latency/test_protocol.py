import pytest

from nas_predictor.latency.errors import InconsistentLabelError, MeasurementError
from nas_predictor.latency.protocol import GATED, MIN_OF_PASS, CpuProtocol, GpuProtocol, decide, is_long, pass_complete

FAST = 6.7
P = CpuProtocol()


def test_defaults_are_the_documented_protocol():
    assert (P.tolerance, P.fast_percentile, P.min_pairs, P.min_seconds, P.max_retries, P.long_ms) == \
        (1.12, 5.0, 10, 0.3, 3, 40.0)
    assert 3 <= P.long_passes <= 4
    assert CpuProtocol.__dataclass_fields__ and P.to_dict()["tolerance"] == 1.12


@pytest.mark.parametrize("bad", [{"tolerance": 0.9}, {"min_pairs": 0}, {"max_retries": -1}, {"fast_percentile": 101},
                                 {"max_pairs": 2, "min_pass_pairs": 3}, {"retry_gap_s": -1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(MeasurementError):
        CpuProtocol(**bad)
    with pytest.raises(MeasurementError):
        GpuProtocol(repeats=0)


def test_pass_stops_when_the_gate_is_met_or_at_its_caps():
    fast_pairs = ([3.0] * 9, [FAST] * 9)
    assert not pass_complete(*fast_pairs, FAST, P)  # 9 < 10 kept pairs
    # 10 kept pairs but only 0.097 s: go on until 0.3 s of kept pairs
    assert not pass_complete([3.0] * 10, [FAST] * 10, FAST, P)
    assert pass_complete([3.0] * 31, [FAST] * 31, FAST, P)
    # every reference slow: the gate is never met, the pass stops after max_pass_seconds
    slow = CpuProtocol(max_pass_seconds=1.0)
    assert not pass_complete([3.0] * 40, [2 * FAST] * 40, FAST, slow)
    assert pass_complete([3.0] * 70, [2 * FAST] * 70, FAST, slow)
    assert pass_complete([3.0] * 5, [2 * FAST] * 5, FAST, CpuProtocol(max_pairs=5))
    assert not pass_complete([500.0] * 2, [FAST] * 2, FAST, P)  # never fewer than min_pass_pairs


def test_short_model_done_with_the_gated_label():
    d = decide([[3.0] * 50], [[FAST] * 50], FAST, long=False, protocol=P)
    assert d.action == "done" and d.estimator == GATED and not d.fallback
    assert d.label_ms == pytest.approx(3.0) and d.min_of_pass_ms == 3.0


def test_short_model_requeued_then_flagged_fallback():
    targets, refs = [[3.0] * 20], [[FAST] * 3 + [2 * FAST] * 17]  # 3 kept pairs per pass
    for passes in range(1, P.max_retries + 1):
        d = decide(targets * passes, refs * passes, FAST, False, P)
        assert d.action == "requeue" and d.label_ms is None
    d = decide(targets * 4, refs * 4, FAST, False, P)  # 12 kept pooled, but 0.116 s < 0.3 s
    assert d.action == "done" and d.fallback and d.estimator == GATED and d.gated.kept == 12
    assert d.label_ms == pytest.approx(3.0)
    # nothing ever passed the gate: the fallback is the min-of-pass estimate
    never = decide([[3.0, 2.9]] * 4, [[2 * FAST] * 2] * 4, FAST, False, P)
    assert never.fallback and never.estimator == MIN_OF_PASS and never.label_ms == 2.9


def test_pooled_pairs_over_retries_can_meet_the_gate():
    targets, refs = [[10.0] * 20], [[FAST] * 8 + [2 * FAST] * 12]
    assert decide(targets, refs, FAST, False, P).action == "requeue"
    d = decide(targets * 2, refs * 2, FAST, False, P)  # 16 kept, 0.27 s ... still short of 0.3 s
    assert d.action == "requeue"
    d = decide(targets * 3, refs * 3, FAST, False, P)
    assert d.action == "done" and not d.fallback and d.gated.kept == 24


def test_long_model_gets_its_passes_and_the_min_of_pass_label():
    assert is_long([45.0, 41.0], P) and not is_long([45.0, 39.0], P)
    passes = [[120.0, 100.0], [103.0, 140.0], [150.0, 155.0]]
    refs = [[FAST, FAST]] * 3
    for n in range(1, P.long_passes):
        assert decide(passes[:n], refs[:n], FAST, True, P).action == "requeue"
    d = decide(passes, refs, FAST, True, P)
    assert d.action == "done" and d.estimator == MIN_OF_PASS and d.label_ms == 103.0
    assert d.gated.label_ms is not None and d.pass_min_ms == [100.0, 103.0, 150.0]  # both estimates stored


# --- a label never contradicts its runs (issue 26) --------------------------------------------------

def contradicting_pass():
    """Kept pairs whose ratio x the reference's low percentile lands far above the target runs' median:
    half the targets at 10 ms, just under half at 20 ms with their references at 10 ms, and five
    reference runs at 2 ms (a reference faster than itself: the data of a broken estimator)."""
    targets = [20.0] * 48 + [10.0] * 47 + [10.0] * 5
    references = [10.0] * 95 + [2.0] * 5
    return targets, references


def test_gated_label_is_checked_against_its_kept_runs():
    d = decide([[3.0] * 50], [[FAST] * 50], FAST, long=False, protocol=P)
    assert d.runs_median_ms == 3.0 and d.remeasure is None
    # the tracker learnt another context (references after large models): the label still follows its runs
    d = decide([[2.3] * 80], [[2.4] * 80], 6.5, long=False, protocol=P)
    assert d.action == "done" and d.label_ms == pytest.approx(2.3) and d.gated.fast_ms == 6.5


def test_contradicting_gated_label_is_measured_again_then_refused_for_the_flagged_min_of_pass():
    targets, references = contradicting_pass()
    d = decide([targets], [references], 10.0, long=False, protocol=P)
    assert d.action == "requeue" and d.label_ms is None
    why = ("its gated-ratio label 19.2 ms exceeds the median of its kept pairs' target runs (10 ms) by more "
           "than the protocol's tolerance (1.12x)")
    assert d.remeasure == why
    for passes in (2, 3):
        assert decide([targets] * passes, [references] * passes, 10.0, False, P).action == "requeue"
    d = decide([targets] * 4, [references] * 4, 10.0, False, P)  # every retry spent
    assert (d.action, d.estimator, d.fallback, d.label_ms, d.refused) == ("done", MIN_OF_PASS, True, 10.0, why)
    assert d.gated.label_ms == pytest.approx(19.2)  # stored, not the label


def test_long_model_whose_passes_mostly_met_a_slow_host_gets_more_passes():
    # two short passes in a 2.7x slow state, one long pass in the fast state: min-of-pass says 135 ms
    # while most runs took 50 ms
    slow, fast = [135.0] * 14, [50.0] * 37
    passes = [slow, slow, fast]
    refs = [[FAST] * len(p) for p in passes]
    d = decide(passes, refs, FAST, True, P)
    assert d.action == "requeue" and d.remeasure.startswith("its min-of-pass label 135 ms exceeds the median of "
                                                            "all its target runs (50 ms)")
    d = decide(passes + [fast, fast], refs + [[FAST] * 37] * 2, FAST, True, P)  # the fast passes outvote
    assert d.action == "done" and d.label_ms == 50.0 and d.runs_median_ms == 50.0
    more = [slow, fast, slow]  # the host keeps slowing most passes: 4 of 6 minima slow, most runs fast
    with pytest.raises(InconsistentLabelError, match=r"^its min-of-pass label 135 ms exceeds the median of all its "
                                                     r"target runs \(50 ms\) .* after 6 passes, so no label is stored"):
        decide(passes + more, refs + [[FAST] * len(p) for p in more], FAST, True, P)


def test_gated_label_above_all_its_runs_is_refused_even_when_its_kept_runs_agree():
    # CPU contention on the pinned core: a fast reference run goes with a slowed target run, so the
    # gate keeps the slowed pairs (measured under load: 49 of 318 kept, kept median 5.6 ms, all 1.6 ms)
    targets = [5.6] * 40 + [1.6] * 260
    references = [6.0] * 40 + [12.0] * 260
    d = decide([targets], [references], 6.0, long=False, protocol=P)
    assert d.gated.ok and d.gated.label_ms == pytest.approx(5.6) and d.gated.kept_median_ms == 5.6
    assert d.action == "requeue" and d.remeasure == ("its gated-ratio label 5.6 ms exceeds the median of all its "
                                                     "target runs (1.6 ms) by more than the protocol's tolerance "
                                                     "(1.12x)")
    d = decide([targets] * 4, [references] * 4, 6.0, False, P)
    assert d.estimator == MIN_OF_PASS and d.fallback and d.label_ms == 1.6 and d.refused.startswith("its gated")
