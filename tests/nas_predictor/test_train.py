import time

import numpy as np
import pytest
import torch

from nas_predictor.config import load_config
from nas_predictor.encoding import CellTokenizer
from nas_predictor.errors import DataError
from nas_predictor.metrics import kendall_tau
from nas_predictor.train import linear_warmup_decay, run_experiment, train_member
from nas_predictor.train_data import PreparedData, encode_cells
from search_spaces import NASBench201


def test_schedule_peaks_at_ten_percent_and_ends_at_zero():
    f = linear_warmup_decay(1000, 0.1)
    values = [f(s) for s in range(1001)]
    assert values[0] == 0.0
    assert int(np.argmax(values)) == 100 and values[100] == 1.0
    assert values[50] == pytest.approx(0.5)
    assert values[550] == pytest.approx(0.5)
    assert values[1000] == 0.0
    assert all(a <= b for a, b in zip(values[:100], values[1:101]))
    assert all(a >= b for a, b in zip(values[100:], values[101:]))


def _fake_prepared(nb201_table, n_train, n_valid):
    space = NASBench201()
    archs = nb201_table.arch_strs[: n_train + n_valid + 50]
    graphs = [space.to_graph(a) for a in archs]
    idx = np.arange(len(archs))
    labels = nb201_table.column("c10valid_valid_200ep")[: len(archs)]
    return PreparedData(archs, graphs, idx[:n_train], idx[n_train : n_train + n_valid], idx, labels, labels,
                        space.op_vocab)


def _tiny_config(**train):
    overrides = ["model.hidden=64", "model.num_blocks=2", "train.threads=0", "data.n_train=32", "data.n_valid=16"]
    return load_config(None, overrides + [f"train.{k}={v}" for k, v in train.items()])


def test_tiny_run_overfits_32_cells(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    cfg = _tiny_config(epochs=200, batch_size=16, lr=2e-3, lambda_ac=0.0, lambda_sr=3.0, sr_mode="all_pairs",
                       init_output_bias="true")
    tok = CellTokenizer(data.space_vocab)
    train = encode_cells(tok, data.graphs[:32], data.train_labels[:32] * 0.01, "train")
    # validate on the training cells themselves: this test is about fitting, not generalising
    member = train_member(cfg, train, train, seed=0, device=torch.device("cpu"), progress=False)
    pred = member.model(train.batch).detach().numpy()
    truth = train.labels.numpy()
    assert kendall_tau(truth, pred) > 0.85
    assert np.mean(np.abs(pred - truth) / truth) < 0.03
    assert member.history[-1]["loss"] < 0.1 * member.history[0]["loss"]


def test_training_is_deterministic_with_a_seed(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    cfg = _tiny_config(epochs=2, batch_size=8)
    a = run_experiment(cfg, prepared=data, progress=False)
    b = run_experiment(cfg, prepared=data, progress=False)
    assert a["kendall_tau"] == b["kendall_tau"]
    for ma, mb in zip(a["predictor"].models, b["predictor"].models):
        for (ka, va), (kb, vb) in zip(ma.state_dict().items(), mb.state_dict().items()):
            assert torch.equal(va, vb), ka


def test_run_writes_checkpoint_and_results(nb201_table, tmp_path):
    import json

    from nas_predictor.predictor import Predictor

    data = _fake_prepared(nb201_table, 32, 16)
    cfg = _tiny_config(epochs=2, batch_size=16, ensemble=2)
    result = run_experiment(cfg, out_dir=tmp_path, prepared=data, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["num_archs"] == len(data.test_idx) and len(saved["members"]) == 2
    assert [m["seed"] for m in saved["members"]] == [0, 1000]
    loaded = Predictor.load(tmp_path / "predictor.pt")
    assert len(loaded.models) == 2
    np.testing.assert_array_equal(loaded.predict(data.archs[:5]), result["predictor"].predict(data.archs[:5]))


def test_nan_label_is_a_clear_error(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    data.train_labels = data.train_labels.copy()
    data.train_labels[3] = np.nan
    with pytest.raises(DataError, match="NaN.*position 3"):
        run_experiment(_tiny_config(epochs=1), prepared=data, progress=False)


def test_divergence_is_reported_not_hidden(nb201_table):
    from nas_predictor.errors import TrainingError

    data = _fake_prepared(nb201_table, 32, 16)
    with pytest.raises(TrainingError, match=r"loss became (nan|inf|-inf) in epoch .*train.lr"):
        run_experiment(_tiny_config(epochs=3, lr=1e30, warmup_fraction=0.0), prepared=data, progress=False)
    # the same error, with its message, when the member trained in a worker process
    with pytest.raises(TrainingError, match=r"loss became (nan|inf|-inf) in epoch .*seed (0|1000)\)"):
        run_experiment(_tiny_config(epochs=3, lr=1e30, warmup_fraction=0.0, ensemble=2, workers=2, threads=2),
                       prepared=data, progress=False)


def test_equivalence_averaging_is_reported_beside_the_plain_tau(nb201_table, tmp_path):
    from nas_predictor.predictor import Predictor

    data = _fake_prepared(nb201_table, 32, 16)
    overrides = ["model.hidden=64", "model.num_blocks=2", "data.n_train=32", "data.n_valid=16", "train.epochs=1",
                 "train.batch_size=16", "predict.average_equivalent=true"]
    result = run_experiment(load_config(None, overrides), out_dir=tmp_path, prepared=data, progress=False)
    assert result["average_equivalent"] is True
    assert result["kendall_tau"] != result["kendall_tau_plain"]
    loaded = Predictor.load(tmp_path / "predictor.pt")
    assert loaded.average_equivalent, "the setting travels with the checkpoint"


def test_parallel_members_match_sequential_ones(nb201_table):
    """Members trained in worker processes are the same models as members trained one by one."""
    data = _fake_prepared(nb201_table, 32, 16)
    base = ["model.hidden=64", "model.num_blocks=2", "data.n_train=32", "data.n_valid=16", "train.epochs=2",
            "train.batch_size=16", "train.ensemble=2", "train.threads=2"]
    callbacks = [EveryOtherEpoch()]
    seq = run_experiment(load_config(None, base), prepared=data, progress=False, callbacks=callbacks)
    par = run_experiment(load_config(None, [*base, "train.workers=2"]), prepared=data, progress=False,
                         callbacks=callbacks)
    assert [m["seed"] for m in par["members"]] == [0, 1000]
    np.testing.assert_allclose(par["predictor"].predict(data.archs), seq["predictor"].predict(data.archs), rtol=2e-4)
    # the callback travelled to the worker processes, and what it returned came back from them
    for run in (seq, par):
        assert [[(epoch, out) for epoch, _, out in m.records[0]] for m in run["member_results"]] == [[(1, 2)]] * 2
        assert "curve" not in run  # time-to-tau curves are the benchmark's (benchmarks/probes.py)


class EveryOtherEpoch:
    """A picklable epoch callback: on odd epochs, the epoch + 1 and whether the model is in eval mode."""

    def __call__(self, epoch, model, device):
        assert not model.training and device.type == "cpu"
        return epoch + 1 if epoch % 2 else None


class Slow:
    """An epoch callback that takes 0.2 s, returning nothing: its time is not training time."""

    def __call__(self, epoch, model, device):
        time.sleep(0.2)


def test_epoch_callbacks_see_each_epoch_and_their_time_is_not_training_time(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    tok = CellTokenizer(data.space_vocab)
    train = encode_cells(tok, data.graphs[:32], data.train_labels[:32] * 0.01, "train")
    cfg = _tiny_config(epochs=4, batch_size=16)
    plain = train_member(cfg, train, train, seed=0, device=torch.device("cpu"), progress=False)
    start = time.perf_counter()
    watched = train_member(cfg, train, train, seed=0, device=torch.device("cpu"), progress=False,
                           callbacks=[EveryOtherEpoch(), Slow()])
    wall = time.perf_counter() - start
    # the same training, epoch by epoch: a callback only watches
    assert [h["loss"] for h in watched.history] == [h["loss"] for h in plain.history]
    for a, b in zip(plain.model.state_dict().values(), watched.model.state_dict().values()):
        assert torch.equal(a, b)
    first, slow = watched.records
    assert [(epoch, out) for epoch, _, out in first] == [(1, 2), (3, 4)] and slow == []
    # the epochs with a record carry the training seconds so far, which leave out the callbacks' 0.8 s
    assert [h.get("train_seconds") for h in watched.history][1::2] == [seconds for _, seconds, _ in first]
    assert "train_seconds" not in watched.history[0]
    assert watched.callback_seconds >= 0.8 and watched.seconds <= wall - 0.8


def test_class_variants_draw_only_members_of_each_cells_class(nb201_table):
    from nas_predictor.train_data import class_variants

    space = NASBench201()
    archs = list(nb201_table.arch_strs)
    graphs = [space.to_graph(a) for a in archs]
    cells = np.array([0, 1, 2, 7, 100])
    tok = CellTokenizer(space.op_vocab)
    variants = class_variants(tok, space, archs, graphs, cells)
    classes = [space.equivalent_archs(archs[c]) for c in cells]
    assert variants.counts.tolist() == [len(members) for members in classes]

    def fingerprint(batch, row):
        return batch.tokens[row].numpy().tobytes()

    allowed = [{fingerprint(tok.encode([space.to_graph(m)]), 0) for m in members} for members in classes]
    own = [fingerprint(tok.encode([graphs[c]]), 0) for c in cells]
    gen = torch.Generator().manual_seed(0)
    drawn_per_cell: list[set[bytes]] = [set() for _ in cells]
    for _ in range(200):
        drawn = variants.draw(torch.arange(len(cells)), gen)
        for i in range(len(cells)):
            assert fingerprint(drawn, i) in allowed[i], f"cell {cells[i]}: drew a graph outside its class"
            drawn_per_cell[i].add(fingerprint(drawn, i))
    for i, members in enumerate(classes):
        # uniform draws over the class: small classes are covered completely, the cell itself included
        if len(members) <= 20:
            assert drawn_per_cell[i] == allowed[i] and own[i] in drawn_per_cell[i]
        else:
            assert len(drawn_per_cell[i]) > 20


def test_equivalence_augment_trains_and_rejects_ac(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    result = run_experiment(_tiny_config(epochs=2, batch_size=16, lambda_ac=0.0, equivalence_augment="true"),
                            prepared=data, progress=False)
    assert np.isfinite(result["kendall_tau"]) and result["members"][0]["best_epoch"] >= 0
    with pytest.raises(Exception, match="equivalence_augment.*lambda_ac"):
        _tiny_config(lambda_ac=0.5, equivalence_augment="true")


def test_select_tolerance_keeps_the_latest_epoch_near_the_best(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    tok = CellTokenizer(data.space_vocab)
    train = encode_cells(tok, data.graphs[:32], data.train_labels[:32] * 0.01, "train")
    valid = encode_cells(tok, data.graphs[32:48], data.train_labels[32:48] * 0.01, "valid")
    kwargs = dict(epochs=12, batch_size=16, lr=2e-3, lambda_ac=0.0, lambda_sr=3.0, sr_mode="all_pairs")
    strict = train_member(_tiny_config(**kwargs), train, valid, seed=0, device=torch.device("cpu"), progress=False)
    taus = np.array([h["valid_tau"] for h in strict.history])
    assert strict.best_epoch == int(np.argmax(taus))  # first of any ties
    for tol in (0.05, 0.3, 0.99):
        loose = train_member(_tiny_config(**kwargs, select_tolerance=tol), train, valid, seed=0,
                             device=torch.device("cpu"), progress=False)
        expected = int(np.flatnonzero(taus >= taus.max() - tol)[-1])
        assert loose.best_epoch == expected and loose.best_valid_tau == taus[expected]
    assert loose.best_epoch == len(taus) - 1


def test_ema_keeps_the_moving_average_of_the_weights(nb201_table):
    data = _fake_prepared(nb201_table, 32, 16)
    tok = CellTokenizer(data.space_vocab)
    train = encode_cells(tok, data.graphs[:32], data.train_labels[:32] * 0.01, "train")
    kwargs = dict(epochs=3, batch_size=16, lr=2e-3, lambda_ac=0.0, lambda_sr=3.0, sr_mode="all_pairs",
                  select_tolerance=0.99)  # keep the last epoch, so the kept weights are the final ones
    raw = train_member(_tiny_config(**kwargs), train, train, seed=0, device=torch.device("cpu"), progress=False)
    # decay 1e-9: the average is (numerically) the latest weights, so training is unchanged
    near_raw = train_member(_tiny_config(**kwargs, ema_decay=1e-9), train, train, seed=0,
                            device=torch.device("cpu"), progress=False)
    for a, b in zip(raw.model.state_dict().values(), near_raw.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    smooth = train_member(_tiny_config(**kwargs, ema_decay=0.9), train, train, seed=0,
                          device=torch.device("cpu"), progress=False)
    # the same raw trajectory (EMA does not feed back into training), but a different kept model that
    # lies between the first and the last weights
    assert [h["loss"] for h in smooth.history] == [h["loss"] for h in raw.history]
    w_raw = torch.cat([p.flatten() for p in raw.model.parameters()])
    w_ema = torch.cat([p.flatten() for p in smooth.model.parameters()])
    assert not torch.allclose(w_raw, w_ema)
    # validation scored the averaged weights, the ones kept
    with torch.inference_mode():
        kept_tau = kendall_tau(train.labels.numpy(), smooth.model(train.batch).numpy())
    assert kept_tau == pytest.approx(smooth.history[smooth.best_epoch]["valid_tau"], abs=1e-9)


def test_ema_warmup_ramps_the_decay_so_the_first_weights_fade():
    from nas_predictor.train import _warm_ema

    net = torch.nn.Linear(2, 1)
    avg = torch.optim.swa_utils.AveragedModel(net, multi_avg_fn=_warm_ema(0.998))
    expected = None
    for step in range(30):
        with torch.no_grad():
            net.weight.fill_(float(step))
        avg.update_parameters(net)
        # AveragedModel copies the first weights, then blends with decay min(0.998, (1 + n) / (10 + n))
        decay = min(0.998, (1 + step) / (10 + step))
        expected = float(step) if expected is None else decay * expected + (1 - decay) * step
    torch.testing.assert_close(avg.module.weight, torch.full((1, 2), expected))
    # plain 0.998 would still sit near the first weights (~0.9); the ramp follows the trajectory
    assert expected > 20


def test_bucketed_batches_cover_every_item_once_and_group_similar_sizes():
    from nas_predictor.train_data import epoch_batches

    sizes = np.random.default_rng(0).integers(150, 450, size=1000)
    plain = epoch_batches(1000, 16, torch.Generator().manual_seed(0))
    bucketed = epoch_batches(1000, 16, torch.Generator().manual_seed(0), sizes)
    for batches in (plain, bucketed):
        assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    # padding to each batch's largest graph: bucketing wastes far less
    waste = lambda batches: sum(int(sizes[b].max()) * len(b) - int(sizes[b].sum()) for b in batches)  # noqa: E731
    assert waste(bucketed) < 0.2 * waste(plain)
    again = epoch_batches(1000, 16, torch.Generator().manual_seed(0), sizes)
    assert all(torch.equal(a, b) for a, b in zip(bucketed, again))
