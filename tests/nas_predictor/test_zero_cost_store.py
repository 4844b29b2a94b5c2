"""nas_predictor/zero_cost_store.py: a space's proxies cached per architecture, reloaded identically,
computed once, resumable after a torn write."""

import json

import pytest

import nas_predictor.zero_cost_store as store
from tests.python_spaces import contract_space


def test_proxies_are_cached_reloaded_identically_and_computed_only_once(tmp_path, monkeypatch):
    space = contract_space()
    archs = [space.sample(__import__("numpy").random.default_rng(s)) for s in range(3)]
    first = store.space_proxies(space, archs, cache=tmp_path, batch_size=8, progress=False)
    assert list(first) == [space.canonical(a) for a in archs]
    assert all(set(v) == set(store.PROXIES) for v in first.values())
    calls = []
    real = store.compute_proxies
    monkeypatch.setattr(store, "compute_proxies", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = store.space_proxies(space, archs, cache=tmp_path, batch_size=8, progress=False)
    assert again == first and calls == []  # read back, bit for bit, nothing recomputed
    # another seed or batch is another file: never mixed
    other = store.space_proxies(space, archs[:1], cache=tmp_path, batch_size=8, seed=1, progress=False)
    assert len(calls) == 1 and other[archs[0]] != first[archs[0]]


def test_a_torn_last_line_is_recomputed_and_the_rest_kept(tmp_path, monkeypatch):
    space = contract_space()
    archs = [space.sample(__import__("numpy").random.default_rng(s)) for s in range(2)]
    done = store.space_proxies(space, archs, cache=tmp_path, batch_size=8, progress=False)
    (path,) = (tmp_path / "zero_cost").glob("*.jsonl")
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed while writing the second
    calls = []
    real = store.compute_proxies
    monkeypatch.setattr(store, "compute_proxies", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert store.space_proxies(space, archs, cache=tmp_path, batch_size=8, progress=False) == done
    assert len(calls) == 1
    assert [json.loads(x)["arch"] for x in path.read_text().splitlines()] == [space.canonical(a) for a in archs]


def test_the_proxies_command_fills_the_cache_and_a_rerun_computes_nothing(tmp_path, capsys):
    from nas_predictor.cli import main

    space = contract_space()
    argv = ["proxies", "--space", space.name, "--limit", "2", "--batch-size", "8", "--cache", str(tmp_path),
            "--quiet", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["networks"] == 2 and first["computed_now"] == 2 and set(first["median"]) == set(store.PROXIES)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["computed_now"] == 0


def test_the_proxies_command_names_an_unknown_space(capsys):
    from nas_predictor.cli import main

    assert main(["proxies", "--space", "no_such_space", "--quiet"]) == 2
    assert "unknown search space 'no_such_space'" in capsys.readouterr().err


def test_two_shards_fill_one_cache_with_the_whole_space_and_nothing_twice(tmp_path, capsys):
    from nas_predictor.cli import main

    space = contract_space()
    base = ["proxies", "--space", space.name, "--limit", "5", "--batch-size", "8", "--cache", str(tmp_path),
            "--quiet", "--json"]
    counts = []
    for shard in ("0/2", "1/2"):
        assert main(base + ["--shard", shard]) == 0
        counts.append(json.loads(capsys.readouterr().out)["computed_now"])
    assert counts == [3, 2]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["computed_now"] == 0  # the two shards covered all five
    (path,) = (tmp_path / "zero_cost").glob("*.jsonl")
    archs = [json.loads(x)["arch"] for x in path.read_text().splitlines()]
    assert len(archs) == len(set(archs)) == 5
    with pytest.raises(SystemExit) as stop:
        main(base + ["--shard", "2/2"])
    assert stop.value.code == 2
    assert "need 0 <= I < N" in capsys.readouterr().err


def test_a_packaged_table_is_read_before_anything_is_computed_and_only_for_its_own_settings(tmp_path, monkeypatch):
    from search_spaces.nasbench201 import NASBench201

    space = NASBench201()
    archs = [space.arch_from_index(i) for i in (0, 7, 9000)]
    batch = store.proxy_batch(space, store.BATCH_SIZE, 0)
    made_up = {space.canonical(a): {p: float(i + k) for k, p in enumerate(store.PROXIES)} for i, a in enumerate(archs[:2])}
    table = tmp_path / "table.npz"
    assert store.write_packaged(space, made_up, batch, 0, table) == 2
    monkeypatch.setattr(NASBench201, "zero_cost_table", lambda self: table)
    calls = []
    monkeypatch.setattr(store, "compute_proxies", lambda *a, **k: calls.append(1) or dict.fromkeys(store.PROXIES, 1.0))
    got = store.space_proxies(space, archs, cache=tmp_path / "cache", progress=False)
    assert got[space.canonical(archs[0])] == made_up[space.canonical(archs[0])]
    assert len(calls) == 1  # only the row the table does not hold
    store.space_proxies(space, archs[:1], cache=tmp_path / "other", seed=1, progress=False)
    assert len(calls) == 2  # another seed: the table's scores are not these settings'


def test_computing_proxies_leaves_the_callers_random_state_as_it_was(tmp_path):
    import torch

    space = contract_space()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    store.space_proxies(space, [space.sample(__import__("numpy").random.default_rng(0))], cache=tmp_path,
                        batch_size=4, progress=False)
    assert torch.equal(torch.rand(3), expected)
