"""benchmarks/ship_latency.py: which number a release chooses by."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ship():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ship_latency", ROOT / "benchmarks" / "ship_latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "predictor.pt"


def test_a_release_chooses_by_the_whole_predictors_validation_error_where_the_run_scored_it(tmp_path, ship):
    members = [{"seed": 0, "best_valid_mape": 0.10}, {"seed": 1000, "best_valid_mape": 0.12}]
    # an ensemble's mean prediction (0.08) is better than either member: that is the number to choose by
    scored = write_run(tmp_path / "ensemble", {"members": members, "valid": {"cpu_ort_1t": {"overall": {"mape": 0.08}}}})
    assert ship.validation_mape(scored) == pytest.approx(0.08)
    # runs saved before the whole predictor was scored fall back to the members' mean
    older = write_run(tmp_path / "older", {"members": members})
    assert ship.validation_mape(older) == pytest.approx(0.11)
