import gzip

import pytest

from nas_predictor.data.latency_graphs import _cache_file, cached_network_graphs, network_graphs, read_cache
from nas_predictor.onnx import onnx_to_graph
from search_spaces.nasbench201 import NASBench201
from search_spaces.onnx_export import export_onnx
from tests.waiting import calls_wait_for

ARCHS = [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]


def test_graphs_are_exported_once_cached_and_rebatched_exactly(tmp_path):
    graphs = network_graphs("nasbench201", ARCHS, cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    assert set(read_cache(path)) == set(ARCHS)
    assert cached_network_graphs("nasbench201", tmp_path) == dict(zip(ARCHS, graphs))
    assert cached_network_graphs("fbnet", tmp_path) == {}  # nothing exported for it
    again = network_graphs("nasbench201", ARCHS[::-1], cache=tmp_path, progress=False)
    assert again == graphs[::-1]
    # batch 32 from the cache equals exporting and reading the ONNX file at batch 32
    space = NASBench201()
    onnx_bytes = export_onnx(space.build_network(ARCHS[1]), space.network_input_shape(ARCHS[1]))
    direct = onnx_to_graph(onnx_bytes, batch_size=32)
    [moved] = network_graphs("nasbench201", ARCHS[1:], batch_size=32, cache=tmp_path, progress=False)
    assert moved.shapes == direct.shapes and moved.edges == direct.edges
    assert moved.scalars == pytest.approx(direct.scalars)
    assert "Mul" in moved.ops  # the x0 of `none` edges, with its constant operand unbatched


def test_an_interrupted_cache_write_keeps_the_complete_records(tmp_path):
    network_graphs("nasbench201", ARCHS, cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data + gzip.compress(b'{"arch": "x", "graph": {"ops": ["Inp')[:-6])  # torn tail
    assert set(read_cache(path)) == set(ARCHS)
    extra = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    network_graphs("nasbench201", [extra], cache=tmp_path, progress=False)
    assert set(read_cache(path)) == {*ARCHS, extra}, "records appended after a torn one are readable"


def _held_by_another_process(path):
    """The cache file's lock, held as another process would (flock is per open file, so a second
    handle in this process conflicts with the code under test exactly like another process)."""
    import filelock

    return filelock.FileLock(str(path.with_name(path.name + ".lock")))


def test_readers_of_a_whole_cache_do_not_wait_for_the_lock(tmp_path):
    network_graphs("nasbench201", ARCHS[:1], cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    with _held_by_another_process(path):  # as another process appending exports would
        assert len(network_graphs("nasbench201", ARCHS[:1], cache=tmp_path, progress=False)) == 1


def test_a_read_that_meets_an_append_in_progress_waits_then_reads_again(tmp_path):
    network_graphs("nasbench201", ARCHS[:1], cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole + gzip.compress(b'{"arch": "x", "graph": {"op')[:-6])  # the writer's half-written record
    # the reader neither trusts the torn file nor "repairs" it while the writer holds the lock
    done = calls_wait_for(_held_by_another_process(path),
                          lambda: network_graphs("nasbench201", ARCHS[:1], cache=tmp_path, progress=False),
                          while_held=lambda: path.write_bytes(whole))  # the writer finishes (as if its record were whole)
    assert len(done[0]) == 1


def test_exports_wait_for_the_holder_of_the_cache_lock_and_say_so_once(tmp_path, capsys):
    network_graphs("nasbench201", ARCHS[:1], cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    # a network the cache lacks has to be appended: that waits for the holder to finish
    calls_wait_for(_held_by_another_process(path),
                   lambda: network_graphs("nasbench201", ARCHS, cache=tmp_path, progress=False), threads=2)
    assert set(read_cache(path)) == set(ARCHS)
    assert capsys.readouterr().err.count("waiting for") == 1


def test_load_cache_reads_without_the_lock_and_repairs_a_torn_file(tmp_path):
    from nas_predictor.data.latency_graphs import load_cache

    network_graphs("nasbench201", ARCHS, cache=tmp_path, progress=False)
    path = _cache_file("nasbench201", tmp_path)
    with _held_by_another_process(path):
        assert set(load_cache("nasbench201", tmp_path)) == set(ARCHS)
    path.write_bytes(path.read_bytes() + gzip.compress(b'{"arch": "x", "graph": {"op')[:-6])  # torn tail
    assert set(load_cache("nasbench201", tmp_path)) == set(ARCHS)
    with gzip.open(path, "rt") as f:  # repaired: every record whole again
        assert len(f.read().splitlines()) == len(ARCHS)
