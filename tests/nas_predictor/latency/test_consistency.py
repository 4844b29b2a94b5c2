import json

import pytest

from nas_predictor.latency import LatencyLabel, RawStats, RobustStats
from nas_predictor.latency.consistency import (BOUNDS, EXACT_RAW_MEDIAN, EXACT_RUNS, OK, UNDETERMINED, VIOLATION,
                                               check_label)
from nas_predictor.latency.protocol import CpuProtocol


def label(label_ms, estimator="gated-ratio", raw=None, **kw) -> LatencyLabel:
    raw = raw or RawStats(median_ms=1.0, p10_ms=0.95, min_ms=0.9, max_ms=1.5, runs=80, pairs_kept=80, pairs_total=80)
    return LatencyLabel(model="m.onnx", label_ms=label_ms, estimator=estimator, provider="cpu",
                        execution_providers=["CPUExecutionProvider"], batch_size=1, raw=raw, robust=RobustStats(),
                        **{"reference_fast_ms": 3.0, "protocol": CpuProtocol().to_dict(), **kw})


def test_stored_runs_are_regated_and_checked_exactly():
    targets = [[1.0, 1.0, 1.0, 5.0], [1.2]]
    references = [[3.0, 3.0, 3.0, 9.0], [3.1]]  # the 5 ms run's pair fails the gate (9 > 3 x 1.12)
    ok = check_label(label(1.1, target_runs_ms=targets, reference_runs_ms=references))
    assert (ok.verdict, ok.basis, ok.low_ms, ok.high_ms, ok.runs) == (OK, EXACT_RUNS, 1.0, 1.0, 4)
    bad = check_label(label(1.13, target_runs_ms=targets, reference_runs_ms=references).to_dict())  # a JSON line
    assert bad.verdict == VIOLATION and bad.excess_low == pytest.approx(1.13)
    assert check_label(label(1.13, target_runs_ms=targets, reference_runs_ms=references), tolerance=1.2).verdict == OK
    with pytest.raises(ValueError, match="reference runs"):
        check_label(label(1.0, target_runs_ms=targets, reference_runs_ms=[[3.0]]))


def test_old_records_are_exact_where_their_runs_are_every_run():
    # the committed dataset's worst label: every pair kept, label 12.7 % over the median of its runs
    raw = RawStats(0.85431, 0.8295395, 0.815167, 1.034654, 88, 88, 88, 1)
    c = check_label(label(0.9627875903143788, raw=raw))
    assert (c.verdict, c.basis, c.low_ms) == (VIOLATION, EXACT_RAW_MEDIAN, 0.85431)
    assert round(c.excess_low, 3) == 1.127
    # min-of-pass is made from every run, kept or not
    part = RawStats(1.0, 0.95, 0.9, 3.0, 80, 10, 80, 3)
    assert check_label(label(1.2, "min-of-pass", raw=part)).verdict == VIOLATION
    assert check_label(label(0.95, "min-of-pass", raw=part)).basis == EXACT_RAW_MEDIAN


def test_old_gated_records_with_pairs_gated_out_are_bounded():
    raw = RawStats(median_ms=1.41, p10_ms=1.38, min_ms=1.37, max_ms=1.53, runs=81, pairs_kept=78, pairs_total=81)
    # 39th smallest of the kept is >= the 39th of all, past p10's position: the kept median is 1.38-1.53;
    # the binding median, the lower of it and all runs' 1.41, is 1.38-1.41
    c = check_label(label(1.5, raw=raw))
    assert (c.verdict, c.basis, c.low_ms, c.high_ms, c.all_runs_median_ms) == (OK, BOUNDS, 1.38, 1.41, 1.41)
    assert check_label(label(1.56, raw=raw)).verdict == UNDETERMINED  # 1.12 x 1.38 < 1.56 <= 1.12 x 1.41
    # the committed nasbench201 cell 157: above 1.12 x the median of all its runs, and above its slowest run
    assert check_label(label(1.6042, raw=raw)).verdict == VIOLATION
    # the kept runs alone may have a median up to 1.53 ms: against them only, 1.6 ms is not surely wrong
    alone = check_label(label(1.6042, raw=raw), kept_only=True)
    assert (alone.verdict, alone.low_ms, alone.high_ms) == (UNDETERMINED, 1.38, 1.53)
    assert check_label(label(1.72, raw=raw), kept_only=True).verdict == VIOLATION  # above 1.12 x its slowest run
    few = RawStats(median_ms=1.41, p10_ms=1.38, min_ms=1.0, max_ms=1.53, runs=81, pairs_kept=10, pairs_total=81)
    assert check_label(label(1.5, raw=few)).low_ms == 1.0  # 10 kept: their median may sit below p10


def test_stored_gated_runs_are_checked_against_all_runs_too():
    # the kept pairs are the slowed ones (contention): their median agrees with the label, all runs do not
    targets, references = [[5.6] * 4 + [1.6] * 26], [[3.0] * 4 + [9.0] * 26]
    c = check_label(label(5.6, target_runs_ms=targets, reference_runs_ms=references))
    assert (c.verdict, c.low_ms, c.all_runs_median_ms, c.runs) == (VIOLATION, 1.6, 1.6, 4)
    assert check_label(label(5.6, target_runs_ms=targets, reference_runs_ms=references), kept_only=True).verdict == OK


def test_labels_without_a_gate_tolerance_use_the_documented_protocols():
    gpu = label(1.0, "median", protocol={"warmup_runs": 10, "repeats": 100}, target_runs_ms=[[1.0, 0.9, 1.1]])
    c = check_label(json.loads(json.dumps(gpu.to_dict())))
    assert c.verdict == OK and c.tolerance == CpuProtocol().tolerance and c.basis == EXACT_RUNS
