"""ONNX graphs of the networks in latency tables, exported once and cached on disk.

Exporting a network costs tens to hundreds of milliseconds, so a family of 5,000-15,625 networks
takes minutes; every graph is exported at batch 1 (:func:`network_graph`, from its search space's
network), appended
to ``<cache dir>/<space>.jsonl.gz`` as soon as it exists (an interrupted run keeps what it made), and
re-batched exactly for other batch sizes (nas_predictor.onnx.rebatch). The cache is keyed by the
architecture string and a version of the graph rules; delete the file to rebuild it.

One process at a time repairs or extends a cache file (an exclusive lock on ``<file>.lock``,
nas_predictor.io.file_lock): a reader that "repaired" a file another process was still appending to
replaced it under that writer, whose later records were lost. Readers take no lock, so searches that
share a cache never queue: a repair replaces the file atomically, and a read that meets an append in
progress sees a torn last record and reads again under the lock.

Cache dir: ``cache_dir`` argument, else ``$NAS_PREDICTOR_CACHE``, else ``~/.cache/nas_predictor``.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Sequence

from tqdm.auto import tqdm

from nas_predictor.data.paths import cache_dir
from nas_predictor.errors import GraphError
from nas_predictor.graph import ArchGraph
from nas_predictor.io import file_lock
from nas_predictor.onnx.rebatch import rebatch
from nas_predictor.spaces import SearchSpace, cache_key, get_space

if TYPE_CHECKING:
    import onnx

# Bump when onnx_to_graph, the builders or the export settings change what a graph looks like.
GRAPH_VERSION = 1


def _cache_file(space: str, root: Path) -> Path:
    return root / f"{cache_key(space)}-graphs-v{GRAPH_VERSION}.jsonl.gz"


def read_cache(path: Path) -> dict[str, ArchGraph]:
    """Every complete record of a cache file; a torn last record (interrupted write) is ignored."""
    return _read(path)[0]


def cached_network_graphs(space: str, cache: str | os.PathLike | None = None) -> dict[str, ArchGraph]:
    """Every network of ``space`` already in the graph cache, by arch string (nothing is exported)."""
    return read_cache(_cache_file(space, cache_dir(cache)))


def _read(path: Path) -> tuple[dict[str, ArchGraph], bool]:
    """(records, whether the whole file was readable)."""
    graphs: dict[str, ArchGraph] = {}
    if not path.is_file():
        return graphs, True
    intact = True
    try:
        with gzip.open(path, "rt") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    graphs[record["arch"]] = ArchGraph.from_dict(record["graph"])
                except (json.JSONDecodeError, KeyError, GraphError):
                    intact = False  # a torn or foreign line: rebuilt on demand
    except (EOFError, OSError, zlib.error):
        intact = False  # truncated gzip member at the end: keep what was read
    return graphs, intact


def _rewrite(path: Path, graphs: dict[str, ArchGraph]) -> None:
    """Write the readable records to a fresh file (atomically), so later appends stay readable."""
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as handle:
        for arch, graph in graphs.items():
            handle.write(json.dumps({"arch": arch, "graph": graph.to_dict()}, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def network_model(space: SearchSpace, arch: str) -> "onnx.ModelProto | bytes":
    """The whole network of ``arch`` as a weight-free ONNX model at batch 1: the space's own
    ``network_onnx`` (a fast path), else the export of ``space.build_network`` (nas_predictor.onnx.export,
    0.05-1 s). What the graph cache reads and what a measured latency times, so both see one network."""
    from nas_predictor.onnx.export import export_onnx

    key = space.canonical(arch)
    model = space.network_onnx(key)
    if model is None:
        model = export_onnx(space.build_network(key), space.network_input_shape(key))
    return model


def network_graph(space: SearchSpace, arch: str) -> ArchGraph:
    """The whole network of ``arch`` as an ArchGraph: :func:`network_model` read by nas_predictor.onnx (the
    ops that run: unfused BN, residual adds, ...). The last ``space.NETWORK_CACHE_SIZE`` graphs are kept
    on the space, by canonical string."""
    from nas_predictor.onnx import onnx_to_graph

    key = space.canonical(arch)
    cache = space.__dict__.setdefault("_network_graphs", OrderedDict())
    graph = cache.get(key)
    if graph is None:
        graph = onnx_to_graph(network_model(space, key))
        cache[key] = graph
        if len(cache) > space.NETWORK_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return graph


def _export(space: str, arch: str) -> tuple[str, dict]:
    return arch, network_graph(get_space(space), arch).to_dict()


Exporter = Callable[[str, str], tuple[str, dict]]  # (cache space, arch) -> (arch, ArchGraph.to_dict())


def network_graphs(
    space: str, archs: Sequence[str], batch_size: int = 1, cache: str | os.PathLike | None = None,
    workers: int = 1, progress: bool = True, export: Exporter | None = None,
) -> list[ArchGraph]:
    """The ArchGraph of every arch's whole network at ``batch_size``, exporting only what the cache lacks.

    ``export`` makes the graphs of archs that are not a registered search space's (a measured
    dataset's "family/seed" keys); it must be picklable (a module-level function or a partial of one)
    when ``workers`` > 1."""
    path = _cache_file(space, cache_dir(cache))
    # the first read takes no lock (see _locked); repairing a torn file or appending exports holds the
    # lock, after reading again under it (another process may have appended meanwhile)
    graphs, intact = _read(path)
    if not intact or any(a not in graphs for a in archs):
        with _locked(path):
            graphs, intact = _read(path)
            if not intact:
                _rewrite(path, graphs)
            todo = list(dict.fromkeys(a for a in archs if a not in graphs))
            graphs.update(_append_exports(path, space, todo, workers, progress, export or _export))
    out = [graphs[a] for a in archs]
    if batch_size != 1:
        out = [rebatch(g, batch_size) for g in out]
    return out


def load_cache(space: str, cache: str | os.PathLike | None = None) -> dict[str, ArchGraph]:
    """Every network of ``space`` in the graph cache, repairing a torn file first (so appends by
    :func:`export_to_cache` stay readable)."""
    path = _cache_file(space, cache_dir(cache))
    graphs, intact = _read(path)  # no lock: see _locked
    if not intact:
        with _locked(path):
            graphs, intact = _read(path)  # again: another process may have repaired it meanwhile
            if not intact:
                _rewrite(path, graphs)
    return graphs


def export_to_cache(
    space: str, archs: Sequence[str], cache: str | os.PathLike | None = None, progress: bool = False,
) -> dict[str, ArchGraph]:
    """Export ``archs`` (which the caller knows the cache lacks) and append them, without reading the
    cache file: a search that keeps the cache in memory adds a few networks at a time cheaply."""
    path = _cache_file(space, cache_dir(cache))
    with _locked(path):
        return _append_exports(path, space, list(dict.fromkeys(archs)), 1, progress, _export)


def _append_exports(path: Path, space: str, todo: list[str], workers: int, progress: bool,
                    export: Exporter) -> dict[str, ArchGraph]:
    graphs: dict[str, ArchGraph] = {}
    if not todo:
        return graphs
    bar = tqdm(total=len(todo), desc=f"exporting {space} networks", unit="net", disable=not progress,
               dynamic_ncols=True)
    with gzip.open(path, "at") as handle:
        for arch, data in _exported(space, todo, workers, export):
            handle.write(json.dumps({"arch": arch, "graph": data}, separators=(",", ":")) + "\n")
            handle.flush()
            graphs[arch] = ArchGraph.from_dict(data)
            bar.update()
    bar.close()
    return graphs


def _locked(path: Path) -> ContextManager[None]:
    """The cache file's lock, ``<path>.lock``, held by writers: other processes wait for it, and are told
    once whom they wait for. Readers go without it, so searches sharing a cache never queue: a rewrite
    replaces the file atomically, and a read that meets an append in progress sees a torn last record
    (``intact`` False) and reads again under the lock."""
    return file_lock(path.with_name(path.name + ".lock"), f"the graph cache {path}", wait=True)


def _exported(space: str, archs: list[str], workers: int, export: Exporter) -> Iterable[tuple[str, dict]]:
    if workers <= 1:
        for arch in archs:
            yield export(space, arch)
        return
    import multiprocessing

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_single_thread) as pool:
        yield from pool.map(export, [space] * len(archs), archs, chunksize=8)


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)

