"""tools/ship_latency.py: which number a release chooses by."""

import json
from pathlib import Path

import pytest


@pytest.fixture()
def ship(load_tool):
    return load_tool("ship_latency")


def write_run(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "predictor.pt"


def test_a_release_chooses_by_the_whole_predictors_validation_error_where_the_run_scored_it(tmp_path, ship):
    members = [{"seed": 0, "best_valid_mape": 0.10}, {"seed": 1000, "best_valid_mape": 0.12}]
    # an ensemble's mean prediction (0.08) is better than either member: that is the number to choose by
    valid = {"cpu_ort_1t": {"overall": {"mape": 0.08}}}
    scored = write_run(tmp_path / "ensemble", {"members": members, "valid": valid})
    assert ship.validation_mape(scored) == pytest.approx(0.08)
    # runs saved before the whole predictor was scored fall back to the members' mean
    older = write_run(tmp_path / "older", {"members": members})
    assert ship.validation_mape(older) == pytest.approx(0.11)
