"""Zero-cost proxies of a whole search space, cached per architecture (issue 31).

``space_proxies(space, archs)`` scores each architecture's network (built by the space from ``seed``) with
:func:`nas_predictor.zero_cost.compute_proxies` and appends one JSON line per architecture to
``<cache>/zero_cost/<space>-<settings>.jsonl`` as it goes, so a run that is killed loses at most the
network it was on, and the next run (or ``nas-predictor proxies``) computes only what is missing. The
file name carries a hash of everything a score depends on (the space's cache key, the proxies' code
version, the batch, the seed), so changed settings never read another's scores. Appends happen under a
file lock, so two processes can fill one space's cache side by side.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_predictor.errors import ConfigError
from nas_predictor.graph import ArchGraph
from nas_predictor.proxy_features import with_proxies
from nas_predictor.zero_cost import PROXIES, ProxyBatch, compute_proxies

#: bump when a proxy's definition changes: cached scores of the old code are then not read
VERSION = 1
BATCH_SIZE = 64


def _num_classes(space: Any, arch: str, input_shape: Sequence[int]) -> int:
    net = space.build_network(arch).eval()
    with torch.no_grad():
        out = net(torch.zeros((1, *input_shape)))
    out = out[-1] if isinstance(out, (tuple, list)) else out
    return int(out.shape[-1])


def proxy_batch(space: Any, batch_size: int = BATCH_SIZE, seed: int = 0, sample_arch: str | None = None) -> ProxyBatch:
    """The batch for ``space``: its networks' input shape and class count, read off one of its networks."""
    arch = sample_arch or next(iter(space))
    shape = tuple(space.network_input_shape(arch, 1)[1:])
    return ProxyBatch(shape, _num_classes(space, arch, shape), batch_size, seed)


def settings_key(space: Any, batch: ProxyBatch, seed: int) -> str:
    """Everything a score depends on besides the architecture, as JSON."""
    return json.dumps({"space": space.cache_key, "version": VERSION, "batch": batch.identity(), "network_seed": seed},
                      sort_keys=True)


def store_path(space: Any, batch: ProxyBatch, seed: int, cache: str | os.PathLike | None = None) -> Path:
    from nas_predictor.data.paths import cache_dir

    digest = hashlib.sha256(settings_key(space, batch, seed).encode()).hexdigest()[:12]
    return cache_dir(cache) / "zero_cost" / f"{space.name}-{digest}.jsonl"


def read_packaged(space: Any, batch: ProxyBatch, seed: int) -> dict[str, dict[str, float]]:
    """The space's packaged proxy table (SearchSpace.zero_cost_table), when it was computed with these
    settings; rows are the space's architectures in iteration order, NaN where not computed."""
    table = space.zero_cost_table()
    if table is None:
        return {}
    with table.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        if str(data["settings"]) != settings_key(space, batch, seed) or list(data["proxies"]) != list(PROXIES):
            return {}
        values = data["values"]
    archs = list(space)
    if values.shape != (len(archs), len(PROXIES)):
        raise ConfigError(f"{space.name}'s packaged zero-cost table has {values.shape[0]} rows for {len(archs)} "
                          "architectures: it is damaged (reinstall the package)")
    done = np.isfinite(values).all(axis=1)
    return {space.canonical(archs[i]): dict(zip(PROXIES, map(float, values[i]))) for i in np.flatnonzero(done)}


def write_packaged(space: Any, scores: dict[str, dict[str, float]], batch: ProxyBatch, seed: int, path: Path) -> int:
    """Write ``scores`` (canonical arch -> proxies, e.g. a whole cache) as the space's packaged table;
    returns how many rows it holds."""
    archs = [space.canonical(a) for a in space]
    values = np.full((len(archs), len(PROXIES)), np.nan)
    for i, arch in enumerate(archs):
        if arch in scores:
            values[i] = [scores[arch][p] for p in PROXIES]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, values=values, proxies=np.array(PROXIES), settings=np.array(settings_key(space, batch, seed)))
    from nas_predictor.io import atomic_write_bytes

    atomic_write_bytes(buffer.getvalue(), path)
    return int(np.isfinite(values).all(axis=1).sum())


#: path -> ((size, mtime), its rows): a search asks for proxies every tournament and refit, and a whole
#: space's file (15,625 JSON lines) was parsed again each time
_READ: dict[Path, tuple[tuple[int, int], dict[str, dict[str, float]]]] = {}


def read_store(path: Path) -> dict[str, dict[str, float]]:
    """A cache file's rows (a copy: callers add to it), parsed again only after the file changed."""
    from nas_predictor.jsonl import read_jsonl

    if not path.is_file():
        return {}
    stat = path.stat()
    key = (stat.st_size, stat.st_mtime_ns)
    if path not in _READ or _READ[path][0] != key:
        _READ[path] = (key, {r["arch"]: r["proxies"] for r in read_jsonl(path) if isinstance(r, dict) and "arch" in r})
    return dict(_READ[path][1])


def space_proxies(space: Any, archs: Sequence[str] | None = None, *, cache: str | os.PathLike | None = None,
                  seed: int = 0, batch_size: int = BATCH_SIZE, progress: bool = True) -> dict[str, dict[str, float]]:
    """Every proxy of each architecture of ``archs`` (default: the whole space), from the cache where it
    has them and computed (and appended to it) where not; keyed by ``space.canonical(arch)``."""
    if not builds_networks(space):
        raise ConfigError(f"space {space.name!r} builds no networks: zero-cost proxies need one")
    # building networks draws their initial weights: the caller's random state (a search, a training) is
    # left as it was
    with torch.random.fork_rng(devices=[]):
        return _space_proxies(space, archs, cache, seed, batch_size, progress)


def _space_proxies(space: Any, archs: Sequence[str] | None, cache: str | os.PathLike | None, seed: int,
                   batch_size: int, progress: bool) -> dict[str, dict[str, float]]:
    from nas_predictor.io import file_lock
    from nas_predictor.jsonl import append_jsonl

    archs = [space.canonical(a) for a in (list(space) if archs is None else archs)]
    batch = proxy_batch(space, batch_size, seed, archs[0] if archs else None)
    path = store_path(space, batch, seed, cache)
    known = read_store(path)
    if any(a not in known for a in archs):
        known = {**read_packaged(space, batch, seed), **known}
    todo = list(dict.fromkeys(a for a in archs if a not in known))
    for arch in tqdm(todo, desc=f"zero-cost proxies of {space.name}", unit="network", disable=not progress):
        torch.manual_seed(seed)
        scores = compute_proxies(space.build_network(arch), batch, PROXIES)
        with file_lock(path.with_name(path.name + ".lock"), f"zero-cost cache of {space.name}", wait=True):
            append_jsonl(path, {"arch": arch, "proxies": scores})
        known[arch] = scores
    return {a: known[a] for a in archs}


def builds_networks(space: Any) -> bool:
    """Whether ``space`` builds torch networks (overrides SearchSpace.build_network): zero-cost proxies are
    computed from them."""
    from nas_predictor.spaces import SearchSpace

    method = getattr(type(space), "build_network", None)
    return method is not None and method is not SearchSpace.build_network


def proxy_vote(space: Any, archs: Sequence[str], names: Sequence[str] = PROXIES, *, cache: Any = None,
               batch_size: int | None = None) -> np.ndarray:
    """Each architecture's training-free vote among ``archs``: its rank by each proxy of ``names`` (0 the
    lowest, 1 the highest), averaged over them. A mean of ranks needs no scale and no labels, and no single
    proxy decides: each ranks some space well and another badly (NAS-Bench-Suite-Zero)."""
    from scipy.stats import rankdata

    scores = space_proxies(space, list(archs), cache=cache, batch_size=batch_size or BATCH_SIZE, progress=False)
    table = np.array([[scores[space.canonical(a)][n] for n in names] for a in archs], dtype=np.float64)
    if len(archs) < 2:
        return np.zeros(len(archs))
    return np.mean([(rankdata(column) - 1) / (len(archs) - 1) for column in table.T], axis=0)


def attach_proxies(space: Any, archs: Sequence[str], graphs: Sequence[ArchGraph], *, cache: Any = None,
                   seed: int = 0, batch_size: int | None = None, progress: bool = False) -> list[ArchGraph]:
    """The graphs of ``archs`` with every proxy among their scalars: read from the space's proxy cache,
    computed (and cached) for the architectures it does not have yet."""
    scores = space_proxies(space, list(archs), cache=cache, seed=seed, batch_size=batch_size or BATCH_SIZE,
                           progress=progress)
    return [with_proxies(g, scores[space.canonical(a)]) for a, g in zip(archs, graphs)]
