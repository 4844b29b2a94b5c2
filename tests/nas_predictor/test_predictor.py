import json

import numpy as np
import pytest
import torch

from nas_predictor import list_pretrained, load_predictor, load_pretrained
from nas_predictor.errors import CheckpointError
from nas_predictor.model import NARFormerV2
from nas_predictor.predictor import Predictor, sha256_file
from search_spaces import NASBench201

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]


@pytest.fixture
def predictor(small_model_config):
    meta = {
        "space": "nasbench201",
        "task": "accuracy",
        "label_scale": 0.01,
        "encoding": {"op_vocab": list(NASBench201.op_vocab), "num_freqs": 32, "variant": "nerf"},
        "model": small_model_config.model_dump(),
    }
    return Predictor(meta, [NARFormerV2(small_model_config), NARFormerV2(small_model_config)])


def test_predict_arch_strings_and_graphs_agree(predictor):
    space = NASBench201()
    by_string = predictor.predict(ARCHS)
    by_graph = predictor.predict([space.to_graph(a) for a in ARCHS])
    np.testing.assert_array_equal(by_string, by_graph)
    assert by_string.shape == (3,) and np.all(by_string > 0)


def test_ensemble_is_the_mean_of_members(predictor):
    batch = predictor.tokenizer.encode([NASBench201().to_graph(a) for a in ARCHS])
    with torch.no_grad():
        members = [m(batch).numpy() for m in predictor.models]
    np.testing.assert_allclose(predictor.predict_batch(batch), np.mean(members, axis=0), rtol=1e-6)


def test_save_load_gives_identical_predictions(predictor, tmp_path):
    path = predictor.save(tmp_path / "p.pt")
    loaded = Predictor.load(path)
    np.testing.assert_array_equal(loaded.predict(ARCHS), predictor.predict(ARCHS))
    assert loaded.meta == predictor.meta
    assert not list(tmp_path.glob("*.tmp")), "atomic save must not leave temp files"


def test_int8_checkpoint_is_a_quarter_and_close(predictor, tmp_path):
    full = predictor.save(tmp_path / "full.pt")
    small = predictor.save(tmp_path / "int8.pt", weights="int8")
    assert small.stat().st_size < 0.4 * full.stat().st_size
    np.testing.assert_allclose(Predictor.load(small).predict(ARCHS), predictor.predict(ARCHS), rtol=2e-2)
    with pytest.raises(ValueError, match="weights must be one of"):
        predictor.save(tmp_path / "x.pt", weights="int4")


def test_malformed_int8_entry_is_a_checkpoint_error(predictor, tmp_path):
    payload = torch.load(predictor.save(tmp_path / "int8.pt", weights="int8"), weights_only=True)
    name = next(k for k, v in payload["members"][0].items() if isinstance(v, dict))
    del payload["members"][0][name]["scale"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="member 0 .*malformed int8"):
        Predictor.load(tmp_path / "bad.pt")


def test_half_precision_checkpoint_is_close(predictor, tmp_path):
    full = predictor.save(tmp_path / "full.pt")
    half = predictor.save(tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    np.testing.assert_allclose(Predictor.load(half).predict(ARCHS), predictor.predict(ARCHS), rtol=2e-3)


def test_truncated_checkpoint_is_a_clear_error(predictor, tmp_path):
    path = predictor.save(tmp_path / "p.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        Predictor.load(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Predictor.load(tmp_path / "none.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a nas-predictor checkpoint"):
        Predictor.load(other)
    with pytest.raises(CheckpointError, match="neither a checkpoint file nor a pretrained name"):
        load_predictor("no-such-predictor")


class _Evil:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickled_code_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "nas-predictor/checkpoint", "version": 1, "config": "{}", "members": [_Evil()]}, path)
    with pytest.raises(CheckpointError):
        Predictor.load(path)
    assert not (tmp_path / "PWNED").exists()


def test_config_mismatch_is_reported(predictor, tmp_path):
    path = predictor.save(tmp_path / "p.pt")
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["config"])
    meta["model"]["hidden"] = 128
    payload["config"] = json.dumps(meta)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match its config"):
        Predictor.load(path)


def test_pretrained_registry_lists_and_verifies():
    names = list_pretrained()
    assert "nb201-accuracy" in names
    predictor = load_pretrained("nb201-accuracy")
    preds = predictor.predict(ARCHS)
    # the all-'none' cell cannot learn anything: every sane predictor ranks it last
    assert preds[1] < preds[0] and preds[1] < preds[2]
    with pytest.raises(CheckpointError, match="no pretrained predictor 'nope'"):
        load_pretrained("nope")


def test_manifest_sha256_matches_the_shipped_files():
    from nas_predictor.predictor import PRETRAINED_DIR

    manifest = json.loads((PRETRAINED_DIR / "manifest.json").read_text())
    for name, info in manifest.items():
        assert sha256_file(PRETRAINED_DIR / info["file"]) == info["sha256"], name


def test_average_equivalent_scores_a_class_as_its_mean(predictor):
    space = NASBench201()
    zero_cell = ARCHS[1]
    members = space.equivalent_archs(zero_cell)
    assert len(members) > 100
    plain = predictor.predict(members, average_equivalent=False)
    assert plain.std() > 0, "an untrained model still tells the members apart"
    averaged = predictor.predict([zero_cell, members[5], ARCHS[0]], average_equivalent=True)
    np.testing.assert_allclose(averaged[:2], plain.mean(), rtol=1e-6)
    # a cell alone in its class is scored as itself
    np.testing.assert_allclose(averaged[2], predictor.predict([ARCHS[0]], average_equivalent=False)[0], rtol=1e-6)


def test_average_equivalent_defaults_to_the_checkpoint_setting(predictor, tmp_path):
    assert not predictor.average_equivalent
    plain = predictor.predict(ARCHS)
    predictor.meta["average_equivalent"] = True
    loaded = Predictor.load(predictor.save(tmp_path / "p.pt"))
    assert loaded.average_equivalent
    averaged = loaded.predict(ARCHS)
    assert averaged[1] != plain[1] and averaged[0] == pytest.approx(plain[0], rel=1e-6)
    graphs = loaded.predict([NASBench201().to_graph(a) for a in ARCHS])  # graphs are scored as given
    np.testing.assert_allclose(graphs, plain, rtol=1e-6)


def test_an_empty_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="the file is empty") as err:
        Predictor.load(tmp_path / "empty.pt")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_tensor(predictor, tmp_path, bad):
    with torch.no_grad():
        name, tensor = next((n, t) for n, t in predictor.models[1].named_parameters() if t.dim() == 2)
        tensor.view(-1)[:3] = bad
    predictor.save(tmp_path / "p.pt")
    with pytest.raises(CheckpointError, match=rf"member 1 weight '{name}' holds 3 NaN or infinite value\(s\)"):
        Predictor.load(tmp_path / "p.pt")


def test_a_non_finite_prediction_is_an_error_naming_the_input(predictor):
    from nas_predictor.predictor import PredictionError

    with torch.no_grad():
        next(t for t in predictor.models[0].parameters() if t.dim() == 2).fill_(float("nan"))
    with pytest.raises(PredictionError, match=r"the prediction is not finite for 3 of 3 input\(s\), first "
                                              r"'\|nor_conv_3x3~0\|"):
        predictor.predict(ARCHS)
    graphs = [NASBench201().to_graph(a) for a in ARCHS]
    with pytest.raises(PredictionError, match="first input 0"):
        predictor.predict_graphs(graphs)


def test_results_files_are_strict_json(tmp_path):
    from nas_predictor.errors import DataError
    from nas_predictor.predictor import atomic_write_json

    atomic_write_json({"a": [1.0, {"b": 2}]}, tmp_path / "ok.json")
    assert json.loads((tmp_path / "ok.json").read_text()) == {"a": [1.0, {"b": 2}]}
    with pytest.raises(DataError, match=r"refusing to write the non-finite number nan at a\[1\]\.b"):
        atomic_write_json({"a": [1.0, {"b": float("nan")}]}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_a_non_finite_latency_prediction_is_an_error(tmp_path):
    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.predictor import PredictionError
    from search_spaces.onnx_export import export_onnx

    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), (1, 3, 16, 16), tmp_path / "m.onnx")
    graph = onnx_to_graph(tmp_path / "m.onnx")
    predictor = load_pretrained("latency-help-b1")
    assert np.isfinite(predictor.predict_latency([graph])).all()
    with torch.no_grad():  # a model gone bad in memory, where no load-time check can see it
        for model in predictor.models:
            for tensor in model.parameters():
                tensor.fill_(float("nan"))
    with pytest.raises(PredictionError, match="not finite for 1 of 1 input"):
        predictor.predict_latency([graph])


def test_cpu_batches_group_similar_sizes_within_the_pair_budget():
    import numpy as np

    from nas_predictor.encoding import CPU_PAIR_BUDGET, size_batches

    sizes = np.array([800, 10, 400, 12, 790, 11])
    order = np.argsort(sizes, kind="stable")
    parts = size_batches(order, sizes, 128, "cpu")
    assert np.array_equal(np.concatenate(parts), order)  # every graph once, in size order
    for part in parts:
        assert len(part) == 1 or len(part) * sizes[part].max() ** 2 <= CPU_PAIR_BUDGET
    assert [len(p) for p in size_batches(order, sizes, 4, "cuda")] == [4, 2]  # a GPU takes whole batches
