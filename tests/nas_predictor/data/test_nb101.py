"""NAS-Bench-101 tables: the NASLib 500-cell subset and the official tfrecord layout (synthetic files)."""

import json
import re

import numpy as np
import pytest

from nas_predictor.data import load_nb101_subset, load_nb101_tfrecord
from nas_predictor.errors import DataError
from nas_predictor.nb101_cell import canonical_arch, format_arch
from tests.nas_predictor.data.nb101_synthetic import (
    CELLS,
    EPOCHS,
    HASHES,
    REPEATS,
    accuracies,
    cell_order,
    params,
    record_payload,
    synthetic_payloads,
    write_synthetic_nb101,
    write_tfrecord,
)


# -- the NASLib subset (shared data) ------------------------------------------------------------------
def test_subset_has_the_500_cells_of_the_provenance(data_dir):
    table = load_nb101_subset(data_dir)
    assert len(table) == 500 and table.test_acc is None and table.train_time is None
    assert table.valid_acc.min() == pytest.approx(73.377, abs=1e-3)
    assert table.valid_acc.max() == pytest.approx(94.712, abs=1e-3)
    assert table.valid_acc.mean() == pytest.approx(89.58, abs=0.01)
    # first entry of the file: params 4.095778 M, flops 624.55808 M, val_accuracy 92.578125
    assert table.valid_acc[0] == 92.578125 and table.params[0] == 4_095_778 and table.mflops[0] == 624.55808
    assert 0.29e6 < table.params.min() < table.params.max() < 30.7e6
    assert all(canonical_arch(a) == a for a in table.arch_strs)
    assert all(re.fullmatch("[0-9a-f]{32}", h) for h in table.hashes)
    # NASLib sampled with the official random_spec: many entries are the same cell (other repeats)
    assert len(set(table.hashes)) == 292


def _subset_dir(tmp_path, cells: dict):
    folder = tmp_path / "naslib_zc_subsets"
    folder.mkdir()
    (folder / "zc_nasbench101.json").write_text(json.dumps({"nasbench101": {"cifar10": cells}}))
    return tmp_path


GOOD_KEY = str(tuple([0, 1, 0, 0, 0, 0, 1] + [0] * 6 + [1] + [0] * 35 + [0, 4, 2, 2, 2, 2, 1]))
GOOD_ENTRY = {"val_accuracy": 90.0, "params": 1.5, "flops": 200.0}


def test_subset_entries_are_decoded_and_pruned(tmp_path):
    table = load_nb101_subset(_subset_dir(tmp_path, {GOOD_KEY: GOOD_ENTRY}))
    # edges 0 -> 1, 0 -> 6, 1 -> 6; vertices 2..5 are isolated and pruned away
    assert table.arch_strs == ["011.001.000|input,conv3x3-bn-relu,output"]
    assert table.params.tolist() == [1_500_000] and table.mflops.tolist() == [200.0]


@pytest.mark.parametrize(
    "key, entry, message",
    [
        ("(0, 1)", GOOD_ENTRY, r"malformed cell key '\(0, 1\)'.*56 ints"),
        ("not a tuple", GOOD_ENTRY, "malformed cell key 'not a tuple'"),
        (GOOD_KEY.replace("0, 4, 2", "0, 9, 2"), GOOD_ENTRY, "malformed cell key"),
        (str(tuple([0] * 49 + [0, 4, 2, 2, 2, 2, 1])), GOOD_ENTRY, "no path from input to output"),
        (GOOD_KEY, {"params": 1.5, "flops": 2.0}, r"has no finite number 'val_accuracy' \(got None\)"),
        (GOOD_KEY, {**GOOD_ENTRY, "params": "big"}, "has no finite number 'params'"),
    ],
)
def test_malformed_subset_entries_name_the_key(tmp_path, key, entry, message):
    with pytest.raises(DataError, match=message):
        load_nb101_subset(_subset_dir(tmp_path, {key: entry}))


def test_subset_of_another_format_is_a_data_error(tmp_path):
    folder = tmp_path / "naslib_zc_subsets"
    folder.mkdir()
    (folder / "zc_nasbench101.json").write_text('{"cifar10": {}}')
    with pytest.raises(DataError, match="not a NASLib NAS-Bench-101 file"):
        load_nb101_subset(tmp_path)
    with pytest.raises(DataError, match="subset not found"):
        load_nb101_subset(tmp_path / "naslib_zc_subsets")


# -- the official tfrecord layout (synthetic) ----------------------------------------------------------
def _expected(cell: int, epochs: int, repeats: int = REPEATS) -> tuple[float, float, float]:
    runs = np.array([accuracies(cell, epochs, r) for r in range(repeats)])
    valid, test, time = runs.mean(axis=0)
    return 100 * valid, 100 * test, time


def test_full_file_means_the_108_epoch_repeats_in_first_seen_order(tmp_path):
    table = load_nb101_tfrecord(write_synthetic_nb101(tmp_path / "full.tfrecord"), progress=False)
    # the epoch-4 records come first, with the cells in their original order
    assert table.hashes == list(HASHES) and table.arch_strs == [format_arch(c) for c in CELLS]
    for row, cell in enumerate(range(len(CELLS))):
        valid, test, time = _expected(cell, 108)
        assert table.valid_acc[row] == pytest.approx(valid) and table.test_acc[row] == pytest.approx(test)
        assert table.train_time[row] == pytest.approx(time) and table.params[row] == params(cell)
    assert table.mflops is None


def test_only108_file_keeps_its_own_order(tmp_path):
    table = load_nb101_tfrecord(write_synthetic_nb101(tmp_path / "only108.tfrecord", epochs=(108,)), progress=False)
    order = cell_order(108)
    assert order != list(range(len(CELLS))) and table.hashes == [HASHES[c] for c in order]
    assert table.valid_acc.tolist() == pytest.approx([_expected(c, 108)[0] for c in order])


def test_another_epoch_budget_can_be_selected(tmp_path):
    path = write_synthetic_nb101(tmp_path / "full.tfrecord")
    table = load_nb101_tfrecord(path, epochs=36, progress=False)
    assert table.test_acc.tolist() == pytest.approx([_expected(c, 36)[1] for c in range(len(CELLS))])
    only108 = write_synthetic_nb101(tmp_path / "only108.tfrecord", epochs=(108,))
    with pytest.raises(DataError, match=r"no records with 36 epochs \(the file has epochs \[108\]\)"):
        load_nb101_tfrecord(only108, epochs=36, progress=False)


def test_progress_bar_only_when_asked(tmp_path, capsys):
    path = write_synthetic_nb101(tmp_path / "full.tfrecord")
    load_nb101_tfrecord(path, progress=False)
    assert capsys.readouterr().err == ""
    load_nb101_tfrecord(path, progress=True)
    assert "full.tfrecord" in capsys.readouterr().err


def test_max_records_reads_only_the_head(tmp_path):
    path = write_synthetic_nb101(tmp_path / "full.tfrecord")
    table = load_nb101_tfrecord(path, epochs=4, max_records=len(CELLS) + 1, progress=False)
    assert table.hashes == list(HASHES)
    # cell 0 has two repeats read, the others one
    assert table.valid_acc[0] == pytest.approx(_expected(0, 4, repeats=2)[0])
    assert table.valid_acc[1] == pytest.approx(100 * accuracies(1, 4, 0)[0])
    with pytest.raises(DataError, match=r"no records with 108 epochs \(the file has epochs \[4\]\)"):
        load_nb101_tfrecord(path, max_records=3, progress=False)


def _offsets(payloads: list[bytes]) -> list[int]:
    return list(np.cumsum([0] + [12 + len(p) + 4 for p in payloads]))


@pytest.mark.parametrize("cut", [1, 5, 14])
def test_truncated_file_names_the_record(tmp_path, cut):
    payloads = synthetic_payloads()
    data = write_tfrecord(tmp_path / "t.tfrecord", payloads).read_bytes()
    last = len(payloads) - 1
    (tmp_path / "t.tfrecord").write_bytes(data[:-cut] if cut < 14 else data[: _offsets(payloads)[last] + 5])
    kind = "truncated header" if cut == 14 else "truncated"
    with pytest.raises(DataError, match=rf"record {last} \(byte {_offsets(payloads)[last]}\): {kind}"):
        load_nb101_tfrecord(tmp_path / "t.tfrecord", progress=False)


def test_corrupt_bytes_fail_the_crc_checks(tmp_path):
    payloads = synthetic_payloads()
    path = write_tfrecord(tmp_path / "c.tfrecord", payloads)
    clean = path.read_bytes()
    offset = _offsets(payloads)[3]
    data = bytearray(clean)
    data[offset + 12 + 20] ^= 0x01  # a byte inside record 3's data
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"record 3 \(byte {offset}\): data CRC mismatch"):
        load_nb101_tfrecord(path, progress=False)
    data = bytearray(clean)
    data[offset + 6] ^= 0x40  # record 3's length: would ask for a 2**54-byte record
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"record 3 .*length CRC mismatch"):
        load_nb101_tfrecord(path, progress=False)


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"not json", "not a JSON record"),
        (b"\xff\xfe", "not a JSON record"),
        (json.dumps(["abc", 108, "0100", "input,output"]).encode(), r"expected \[hash, epochs, adjacency"),
        (json.dumps(["abc", "108", "0100", "input,output", ""]).encode(), "wrong field types"),
        (json.dumps(["abc", 108, "0100", "input,output", "%%%"]).encode(), "unreadable ModelMetrics"),
        (json.dumps(["abc", 108, "0100", "input,output", "CgA="]).encode(), "1 evaluations, expected at least 3"),
    ],
)
def test_bad_records_name_the_record(tmp_path, bad, message):
    path = write_tfrecord(tmp_path / "b.tfrecord", [record_payload(0, 108, 0), record_payload(1, 108, 0), bad])
    with pytest.raises(DataError, match=rf"record 2 \(byte \d+\): {message}"):
        load_nb101_tfrecord(path, progress=False)


def test_invalid_cell_in_a_record_is_a_data_error(tmp_path):
    row = json.loads(record_payload(2, 108, 0))
    row[2] = "000000000"  # no input -> output path
    path = write_tfrecord(tmp_path / "i.tfrecord", [json.dumps(row).encode()])
    with pytest.raises(DataError, match=r"record 0 \(byte 0\): invalid cell: .*no path from input to output"):
        load_nb101_tfrecord(path, progress=False)
    with pytest.raises(DataError, match="tfrecord not found"):
        load_nb101_tfrecord(tmp_path / "missing.tfrecord", progress=False)


def test_synthetic_file_has_the_official_shape():
    assert len(synthetic_payloads()) == len(CELLS) * REPEATS * len(EPOCHS)
    first = json.loads(synthetic_payloads()[0])
    assert first[0] == HASHES[0] and first[1] == 4 and len(first[2]) == 49
