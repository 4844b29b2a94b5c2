import numpy as np
import pytest
import torch

from nas_predictor.data.latency_tables import (
    canonical_setting,
    help_settings,
    load_help_latency,
    load_nnlqp_labels,
    load_nnmeter_latency,
    nnmeter_settings,
    parse_setting,
)
from nas_predictor.errors import DataError


def test_setting_names():
    assert parse_setting("titan_rtx_32") == ("titan_rtx", 32)
    assert parse_setting("titan_xp_64") == ("titanxp", 64)
    assert parse_setting("gold_6226") == ("gold_6226", 1)
    assert canonical_setting("titan_xp_1") == "titanxp_1" and canonical_setting("pixel3") == "pixel3"


def test_help_records_match_the_spec_loader_checks(data_dir):
    nb = load_help_latency("nasbench201", "titan_rtx_1", data_dir)
    assert len(nb) == 15625 and nb.batch_size == 1 and nb.space == "nasbench201"
    assert nb.archs[0] == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    np.testing.assert_allclose(nb.latency_ms[:2], [5.5567, 6.7083], atol=1e-4)
    np.testing.assert_allclose(load_help_latency("nasbench201", "pixel3", data_dir).latency_ms[:2], [3.60585, 17.2381], atol=1e-4)
    fb = load_help_latency("fbnet", "titan_rtx_1", data_dir)
    assert len(fb) == 5000 and fb.archs[0].split("-")[:3] == ["k5_e6", "skip", "k3_e1_g2"]
    np.testing.assert_allclose(fb.latency_ms[:2], [7.9913, 10.1576], atol=1e-4)
    np.testing.assert_allclose(load_help_latency("fbnet", "fpga", data_dir).latency_ms[:2], [25.30272, 23.03968], atol=1e-4)
    ofa = load_help_latency("ofa_mbv3", "2080ti_64", data_dir)
    assert len(ofa) == 5000 and ofa.batch_size == 64 and ofa.archs[0].endswith("d=2,2,2,2,3;r=204")
    np.testing.assert_allclose(ofa.latency_ms[:2], [28.8872, 20.2067], atol=1e-4)
    # OFA's titan_xp is HELP's titanxp
    assert load_help_latency("ofa_mbv3", "titanxp_1", data_dir).setting == "titanxp_1"
    assert {"titan_rtx_1", "2080ti_32", "titanxp_32"} <= set(help_settings("ofa_mbv3", data_dir))


def test_unknown_setting_and_space_are_clear_errors(data_dir):
    with pytest.raises(DataError, match="no HELP latency file for setting 'a100_1'.*available: .*titan_rtx_1"):
        load_help_latency("fbnet", "a100_1", data_dir)
    with pytest.raises(DataError, match="space 'nasbench101'"):
        load_help_latency("nasbench101", "titan_rtx_1", data_dir)


def _fake_help_dir(tmp_path, values):
    folder = tmp_path / "help_fbnet_ofa_latency" / "fbnet"
    folder.mkdir(parents=True)
    torch.save({"arch": [{"arch_str": ["skip"] * 22}, {"arch_str": ["k3_e1"] * 22}]}, folder / "metainfo.pt")
    torch.save(values, folder / "titan_rtx_1.pt")
    return tmp_path


def test_bad_latency_files_are_clear_errors(tmp_path):
    root = _fake_help_dir(tmp_path / "nan", [1.0, float("nan")])
    with pytest.raises(DataError, match="NaN.*record 1"):
        load_help_latency("fbnet", "titan_rtx_1", root)
    root = _fake_help_dir(tmp_path / "short", [1.0])
    with pytest.raises(DataError, match="1 latencies for 2 architectures"):
        load_help_latency("fbnet", "titan_rtx_1", root)
    root = _fake_help_dir(tmp_path / "cut", [1.0, 2.0])
    path = root / "help_fbnet_ofa_latency" / "fbnet" / "titan_rtx_1.pt"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="titan_rtx_1.pt: cannot read a HELP latency list, the file is truncated or corrupt"):
        load_help_latency("fbnet", "titan_rtx_1", root)


def test_unsafe_pickles_are_refused(tmp_path):
    root = _fake_help_dir(tmp_path, [1.0, 2.0])
    torch.save([1.0, torch.nn.ReLU()], root / "help_fbnet_ofa_latency" / "fbnet" / "titan_rtx_1.pt")
    with pytest.raises(DataError, match="refusing to load"):
        load_help_latency("fbnet", "titan_rtx_1", root)


def test_nnmeter_logs(data_dir):
    assert "cortexA76cpu_tflite21" in nnmeter_settings(data_dir)
    table = load_nnmeter_latency("cortexA76cpu_tflite21", data_dir)
    assert len(table) == 2000 and table.space == "nasbench201"
    assert table.latency_ms[0] == pytest.approx(11.7491)
    assert len(load_nnmeter_latency("myriadvpu_openvino2019r2", data_dir)) == 1999
    with pytest.raises(DataError, match="no nn-Meter log for device 'tpu'"):
        load_nnmeter_latency("tpu", data_dir)


def test_nnlqp_gt_format(tmp_path, data_dir):
    shared = load_nnlqp_labels(data_dir / "nnlqp_gt_labels" / "gt_stage.txt", require_files=False)
    assert len(shared) == 20000 and shared[0].model_type == "alexnet" and shared[0].stage == "train"
    (tmp_path / "onnx" / "fam").mkdir(parents=True)
    (tmp_path / "onnx" / "fam" / "a.onnx").write_bytes(b"")
    gt = tmp_path / "gt.txt"
    gt.write_text("1 onnx/fam/a.onnx 1 2.5 fam 1\n2 onnx/fam/b.onnx 1 3.0 fam 1\n")
    with pytest.raises(DataError, match="1 of 2 ONNX graphs.*b.onnx"):
        load_nnlqp_labels(gt)
    gt.write_text("1 onnx/fam/a.onnx 1 2.5 fam 1\n")
    [record] = load_nnlqp_labels(gt)
    assert record.onnx_path == tmp_path / "onnx" / "fam" / "a.onnx" and record.latency_ms == 2.5 and record.stage is None
    gt.write_text("1 onnx/fam/a.onnx one 2.5 fam 1\n")
    with pytest.raises(DataError, match="gt.txt:1: batch size and latency must be numbers"):
        load_nnlqp_labels(gt)
    gt.write_text("1 onnx/fam/a.onnx 1\n")
    with pytest.raises(DataError, match="gt.txt:1: expected 6 or 7 fields"):
        load_nnlqp_labels(gt)
