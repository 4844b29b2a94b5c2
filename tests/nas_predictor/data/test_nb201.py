
import numpy as np
import pytest

from nas_predictor.data import load_nb201_table, paper_split, random_split, resolve_data_dir
from nas_predictor.errors import DataError


def test_loader_reads_the_shared_csv(nb201_table):
    assert len(nb201_table) == 15625
    assert nb201_table.arch_strs[1].startswith("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|")
    assert nb201_table.column("c10valid_valid_200ep")[1] == pytest.approx(90.769333)
    assert nb201_table.column("c10_test_200ep")[1] == pytest.approx(93.66)
    valid = nb201_table.column("c10valid_valid_200ep")
    assert 9 < valid.min() < valid.max() < 92


def test_unknown_column_lists_the_available_ones(nb201_table):
    with pytest.raises(DataError, match="no column 'c10_valid'.*c10valid_valid_200ep"):
        nb201_table.column("c10_valid")


def test_missing_data_dir_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="is not a directory"):
        resolve_data_dir(tmp_path / "nope")
    monkeypatch.setenv("NAS_PREDICTOR_DATA", str(tmp_path / "also-nope"))
    with pytest.raises(DataError, match="NAS_PREDICTOR_DATA"):
        resolve_data_dir()
    with pytest.raises(DataError, match="table not found"):
        load_nb201_table(tmp_path)


def test_env_var_selects_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_PREDICTOR_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path


def test_malformed_csv_names_the_line(tmp_path):
    (tmp_path / "nb201_derived").mkdir()
    (tmp_path / "nb201_derived" / "nb201_accuracies.csv").write_text("index,arch_str,acc\n0,|a~0|,abc\n")
    with pytest.raises(DataError, match=r"nb201_accuracies.csv:2: 'abc' is not a number"):
        load_nb201_table(tmp_path)


def test_nan_labels_are_reported(tmp_path):
    from nas_predictor.data.nb201 import NB201Table

    table = NB201Table(["a", "b"], {"acc": np.array([1.0, np.nan])}, source="t")
    with pytest.raises(DataError, match="'acc' has 1 non-finite value.*index 1"):
        table.column("acc")


def test_paper_split_is_index_order_and_tests_on_everything():
    s = paper_split(15625, 781)
    assert s.train.tolist() == list(range(781))
    assert s.valid.tolist() == list(range(781, 981))
    assert len(s.test) == 15625


def test_random_split_is_seeded_and_disjoint():
    a, b = random_split(1000, 50, 20, seed=3), random_split(1000, 50, 20, seed=3)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.valid, b.valid)
    assert not set(a.train) & set(a.valid)
    assert not np.array_equal(a.train, random_split(1000, 50, 20, seed=4).train)
    with pytest.raises(DataError, match="cannot take"):
        paper_split(100, 90, 20)
