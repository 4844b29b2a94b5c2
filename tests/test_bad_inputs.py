"""A fast slice of the bad-input suite (benchmarks/bad_inputs.py), judged by the suite's own code, so a
regression of any of these clear errors fails CI without running all of it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bad_inputs  # noqa: E402

# in-process (API) cases: milliseconds each
API_KINDS = [
    "NB201 API: wrong edge count", "NB101: cycle (lower triangle)", "FBNet: unknown block", "OFA: depth 7",
    "API: NaN weights refused at load", "API: empty .pt", "API: model gone NaN in memory",
    "graph: NaN FLOPs", "API: config tree with a NaN warmup", "oracle returns NaN", "oracle report holds NaN",
    "oracle returns a string", "strategy param top_k=-2 (API)", "run_search on a folder another process holds",
]
# through the real command line (a subprocess each, ~3 s)
CLI_KINDS = [
    "checkpoint: empty .pt", "checkpoint: NaN weights", "--archs-file missing", "--set unclosed list",
    "search --seed -1", "top_k=abc", "--data-dir CSV header only",
]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, data_dir):
    fx = bad_inputs.Fixtures(tmp_path_factory.mktemp("bad_inputs"))
    fx.data = Path(data_dir)
    fx.build()
    (fx.root / "ok.yaml").write_text("name: ok\ntrain:\n  epochs: 1\n")
    return fx


def _case(kind: str) -> bad_inputs.Case:
    found = [c for c in bad_inputs.cases() if c.kind == kind]
    assert len(found) == 1, f"no single suite case named {kind!r}"
    return found[0]


def test_the_suite_covers_at_least_130_kinds_in_every_area():
    cases = bad_inputs.cases()
    assert len({(c.category, c.kind) for c in cases}) == len(cases) >= 130
    assert {"arch strings", "checkpoints", "onnx files", "configs", "numeric flags", "search data", "oracles",
            "calibration", "concurrency"} <= {c.category for c in cases}


@pytest.mark.parametrize("kind", API_KINDS)
def test_api_bad_input_is_a_clear_error(kind, fixtures):
    row = bad_inputs.judge(_case(kind), fixtures)
    assert row["verdict"] == "clear error", row


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_cli_bad_input_is_a_clear_error(kind, fixtures):
    row = bad_inputs.judge(_case(kind), fixtures)
    assert row["verdict"] == "clear error", row
    assert row["exit_code"] == 2 and not row["traceback"] and not row["non_finite_in_output"]


def test_the_judge_fails_a_traceback_and_a_nan():
    """The rule itself: a traceback, a wrong exit status or a NaN in the output is never a pass."""
    case = bad_inputs.Case("t", "t", "error", argv=["x"], fragment="boom")
    outcome = bad_inputs.Outcome(1, "", "Traceback (most recent call last):\n  ...\nValueError: boom\n", 0.1)
    original = bad_inputs.run_cli
    try:
        bad_inputs.run_cli = lambda c, fx: outcome
        row = bad_inputs.judge(case, None)
        assert row["verdict"] == "FAIL" and "traceback" in row["problems"] and "exit 1, expected 2" in row["problems"]
        bad_inputs.run_cli = lambda c, fx: bad_inputs.Outcome(0, '{"prediction": NaN}', "", 0.1)
        result = bad_inputs.Case("t", "t", "result", argv=["x"], check=bad_inputs.finite_json)
        row = bad_inputs.judge(result, None)
        assert row["verdict"] == "FAIL" and "NaN/Infinity in the output" in row["problems"]
    finally:
        bad_inputs.run_cli = original
