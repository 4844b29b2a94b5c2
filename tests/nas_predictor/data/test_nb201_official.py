"""Loading the official NAS-Bench-201 .pth format safely (synthetic files, same structure)."""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest
import torch

from nas_predictor.data import nb201_official
from nas_predictor.data.nb201_official import ACCURACY_COLUMNS, PARAMS_COLUMN, load_nb201_pth
from nas_predictor.errors import DataError

from .nb201_synthetic import write_tiny_nb201_pth

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
# Ragged on purpose: the real file has archs trained with 1, 2 or 3 seeds.
SEEDS = [[777, 888], [777, 888, 999], [888]]
VALID = [[90.0, 91.0], [80.0, 82.0, 84.5], [10.0]]
TEST = [[89.0, 90.5], [79.0, 81.0, 83.0], [10.5]]
PARAMS = [1.25, 0.5, 0.073]
COLUMNS = [*ACCURACY_COLUMNS, PARAMS_COLUMN]


def _write(path, **kwargs):
    return write_tiny_nb201_pth(path, ARCHS, VALID, TEST, seeds=SEEDS, params_mb=PARAMS, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-tiny.pth"
    return path, _write(path)


def test_loads_arch_strings_and_seed_means(tiny):
    path, expected = tiny
    table = load_nb201_pth(path)
    assert table.arch_strs == ARCHS
    assert table.source == str(path)
    assert sorted(table.columns) == sorted(COLUMNS)
    for name in COLUMNS:
        assert table.columns[name].dtype == np.float64
        np.testing.assert_allclose(table.column(name), expected[name], rtol=0, atol=1e-9, err_msg=name)
    # Spot values written out by hand (mean over seeds, last of 200 epochs, 'full' schedule).
    np.testing.assert_allclose(table.column("c10valid_valid_200ep"), [90.5, 82.166666666666667, 10.0])
    np.testing.assert_allclose(table.column("c100_test_200ep"), [69.75, 61.0, -9.5])


def test_matches_the_official_api(tiny):
    """Our fast reads agree with NASBench201API's own seed-averaged queries."""
    from nas_201_api import NASBench201API

    path, _ = tiny
    table = load_nb201_pth(path)
    api = NASBench201API(torch.load(path, map_location="cpu", weights_only=True), verbose=False)
    info_key = {"x-valid": "valid-accuracy", "ori-test": "test-accuracy", "x-test": "test-accuracy"}
    for i in range(len(ARCHS)):
        assert api[i] == table.arch_strs[i]
        for name, (dataset, set_name) in ACCURACY_COLUMNS.items():
            info = api.get_more_info(i, dataset, iepoch=None, hp="200", is_random=False)
            assert table.columns[name][i] == pytest.approx(info[info_key[set_name]], abs=1e-9), (i, name)
        params = api.get_cost_info(i, "cifar10-valid", hp="200")["params"]
        assert table.columns[PARAMS_COLUMN][i] == pytest.approx(params)


@pytest.mark.parametrize("legacy", [True, False])
def test_numpy_scalars_in_both_torch_formats(tmp_path, legacy):
    """Legacy (pre-1.6) torch format with numpy 1.x names, as in the 2020 files; and the zip format."""
    path = tmp_path / "numpy.pth"
    expected = _write(path, legacy_format=legacy, numpy_scalars=True)
    if legacy:
        assert b"numpy.core.multiarray\nscalar" in path.read_bytes()
    table = load_nb201_pth(path)
    for name in COLUMNS:
        np.testing.assert_allclose(table.column(name), expected[name], atol=1e-9, err_msg=name)


def test_unevaluated_arch_is_nan(tmp_path):
    path = tmp_path / "partial.pth"
    _write(path, unevaluated=[1])
    table = load_nb201_pth(path)
    assert table.arch_strs == ARCHS
    for name in COLUMNS:
        assert np.isnan(table.columns[name][1]) and np.isfinite(table.columns[name][[0, 2]]).all()
    with pytest.raises(DataError, match="non-finite"):
        table.column("c10_test_200ep")


@pytest.mark.parametrize("legacy", [False, True])
def test_progress_bar_path(tmp_path, monkeypatch, legacy):
    monkeypatch.setattr(nb201_official, "_PROGRESS_MIN_BYTES", 0)
    path = tmp_path / "progress.pth"
    expected = _write(path, legacy_format=legacy)
    table = load_nb201_pth(path, progress=True)
    np.testing.assert_allclose(table.column("in16_test_200ep"), expected["in16_test_200ep"])


def test_truncated_file(tmp_path):
    for legacy in (False, True):
        src = tmp_path / f"whole_{legacy}.pth"
        _write(src, legacy_format=legacy)
        data = src.read_bytes()
        cut = tmp_path / f"NAS-Bench-201-cut-{legacy}.pth"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(DataError, match="truncated or corrupt") as err:
            load_nb201_pth(cut)
        assert str(cut) in str(err.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope" / "NAS-Bench-201-v1_1-096897.pth"
    with pytest.raises(DataError, match="not found") as err:
        load_nb201_pth(missing)
    assert str(missing) in str(err.value)


def test_not_a_benchmark_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(DataError, match="not a NAS-Bench-201 benchmark file"):
        load_nb201_pth(path)


class _Payload:
    """Unpickling this would create the marker file (via os.system / open)."""

    def __init__(self, marker: str, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch '{self.marker}'",))
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["system", "open"])
@pytest.mark.parametrize("legacy", [False, True])
def test_refuses_pickled_objects_without_running_them(tmp_path, how, legacy):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    blob = {"meta_archs": ARCHS, "arch2infos": {0: _Payload(str(marker), how)}, "evaluated_indexes": [0]}
    torch.save(blob, path, _use_new_zipfile_serialization=not legacy)
    assert not marker.exists()
    with pytest.raises(DataError, match="refusing to load") as err:
        load_nb201_pth(path)
    assert str(path) in str(err.value)
    assert "weights_only=False" not in str(err.value)  # no advice to load it unsafely
    assert not marker.exists()
    # Control: the payload is live, i.e. ordinary unpickling does run it.
    control = tmp_path / "CONTROL"
    result = pickle.loads(pickle.dumps(_Payload(str(control), how)))
    if hasattr(result, "close"):
        result.close()
    assert control.exists()


class _Record:
    """An ordinary class with no custom pickling."""

    def __init__(self) -> None:
        self.accuracy = 93.0


def test_refuses_plain_custom_class_instance(tmp_path):
    path = tmp_path / "obj.pth"
    # Sanity: the same dict with plain data (a set, as in some benchmark files) loads.
    torch.save({"meta_archs": ARCHS, "arch2infos": {}, "evaluated_indexes": set()}, path)
    assert load_nb201_pth(path).arch_strs == ARCHS
    torch.save({"meta_archs": ARCHS, "arch2infos": {0: _Record()}, "evaluated_indexes": [0]}, path)
    with pytest.raises(DataError, match="refusing to load") as err:
        load_nb201_pth(path)
    assert "_Record" in str(err.value)


def test_missing_nas_201_api(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "nas_201_api", None)  # makes `import nas_201_api` fail
    with pytest.raises(DataError, match=r"pip install nas-bench-201.*nas-predictor\[nb201\]"):
        load_nb201_pth(tiny[0])
