"""Training accuracy predictors on NAS-Bench-101: the paper-protocol configs on a synthetic official
tfrecord, the held-out mini-protocol on the shared subset, and the config checks."""

from pathlib import Path

import numpy as np
import pytest

from nas_predictor.config import load_config
from nas_predictor.errors import ConfigError
from nas_predictor.predictor import Predictor
from nas_predictor.train import prepare_data, run_experiment
from tests.nas_predictor.data.nb101_synthetic import cell_accuracy, write_random_nb101

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAST = ["train.epochs=2", "model.hidden=32", "model.num_blocks=1", "train.batch_size=64"]


@pytest.fixture(scope="module")
def tfrecord(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb101") / "nasbench_only108.tfrecord"
    cells = write_random_nb101(path, 700, seed=0)
    return path, cells


@pytest.mark.parametrize("n_train", [424, 4236])
def test_paper_configs_split_the_official_order(tfrecord, n_train):
    path, cells = tfrecord
    cfg = load_config(CONFIGS / f"nb101_accuracy_{n_train}.yaml", [f"data.table_file={path}"])
    assert (cfg.data.n_train, cfg.data.n_valid, cfg.data.split) == (n_train, 200, "paper")
    if n_train + 200 > len(cells):  # the 1 % protocol needs the real file; the error says why
        with pytest.raises(Exception, match=f"{n_train} train \\+ 200 validation items from {len(cells)}"):
            prepare_data(cfg)
        return
    data = prepare_data(cfg)
    assert len(data.archs) == 700
    np.testing.assert_array_equal(data.train_idx, np.arange(424))
    np.testing.assert_array_equal(data.valid_idx, np.arange(424, 624))
    np.testing.assert_array_equal(data.test_idx, np.arange(700))  # tau on all cells, as the paper
    # training target: mean validation accuracy over the 3 repeats; evaluation: mean test accuracy (percent)
    expected_valid = np.array([100 * (cell_accuracy(c) + 0.001) for c in cells])
    np.testing.assert_allclose(data.train_labels, expected_valid, atol=1e-9)
    np.testing.assert_allclose(data.eval_labels, expected_valid - 1.0, atol=1e-9)


def test_424_config_trains_and_ranks_the_synthetic_benchmark(tfrecord, tmp_path):
    path, _ = tfrecord
    cfg = load_config(CONFIGS / "nb101_accuracy_424.yaml", [f"data.table_file={path}", *FAST])
    result = run_experiment(cfg, tmp_path / "run", progress=False)
    # the made-up accuracy is a simple function of the ops: even two epochs of a tiny model rank it
    assert result["kendall_tau"] > 0.3
    predictor = Predictor.load(tmp_path / "run" / "predictor.pt")
    assert predictor.meta["space"] == "nasbench101"
    arch = "010.001.000|input,conv3x3-bn-relu,output"
    assert np.isfinite(predictor.predict([arch])).all()


def test_subset_mini_protocol_tests_only_on_held_out_cells(data_dir):
    cfg = load_config(CONFIGS / "nb101_accuracy_subset.yaml")
    data = prepare_data(cfg, str(data_dir))
    assert len(data.archs) == 292  # 500 rows, repeats of a cell merged
    assert len(set(data.archs)) == 292
    used = set(data.train_idx) | set(data.valid_idx)
    assert (len(data.train_idx), len(data.valid_idx), len(data.test_idx)) == (100, 50, 142)
    assert not used & set(data.test_idx)
    other = prepare_data(load_config(CONFIGS / "nb101_accuracy_subset.yaml", ["data.split_seed=1"]), str(data_dir))
    assert set(other.train_idx) != set(data.train_idx)


def test_nb101_configs_are_checked():
    with pytest.raises(ConfigError, match="does not go with space"):
        load_config(CONFIGS / "nb101_accuracy_subset.yaml", ["space=nasbench201"])
    with pytest.raises(ConfigError, match="not a NAS-Bench-101 metric"):
        load_config(CONFIGS / "nb101_accuracy_subset.yaml", ["data.eval_target=c10_test_200ep"])


def test_held_out_split_that_leaves_nothing_is_refused(data_dir):
    cfg = load_config(CONFIGS / "nb101_accuracy_subset.yaml", ["data.n_train=242", "data.n_valid=50"])
    with pytest.raises(ConfigError, match="leave none of the 292 to test on"):
        prepare_data(cfg, str(data_dir))


def test_subset_has_no_test_accuracy_to_evaluate_on(data_dir):
    cfg = load_config(CONFIGS / "nb101_accuracy_subset.yaml", ["data.eval_target=test_acc"])
    with pytest.raises(Exception, match="no test accuracy"):
        prepare_data(cfg, str(data_dir))


def test_pinat_split_of_the_official_file_draws_by_seed_and_tests_on_every_other_cell(tfrecord):
    # the TNASP / PINAT protocol on NB101 (benchmarks/accuracy_random_split.py --config configs/nb101_accuracy_424.yaml)
    path, cells = tfrecord
    split = [f"data.table_file={path}", "data.split=random", "data.n_train=100", "data.n_valid=0", "data.test_on=rest"]
    a, b = (prepare_data(load_config(CONFIGS / "nb101_accuracy_424.yaml", [*split, f"data.split_seed={s}"])) for s in (0, 1))
    assert (len(a.train_idx), len(a.valid_idx), len(a.test_idx)) == (100, 0, len(cells) - 100)
    assert np.intersect1d(a.train_idx, a.test_idx).size == 0
    assert not np.array_equal(np.sort(a.train_idx), np.sort(b.train_idx))
    assert a.train_idx.max() > 424  # drawn from the whole file, not its first cells
