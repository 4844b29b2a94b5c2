"""Reading latency datasets measured on the user's own hardware (``nas-predictor dataset build``).

A dataset folder holds ``manifest.json`` (what was built, how, where), ``labels.jsonl`` (one measured
model per line: family, seed, the variant's config, MACs and the full latency record), ``failures.jsonl``
and an NNLQP-style ``gt.txt``; see search_spaces/cnn_families/dataset.py, which writes them. No graph
is stored: the manifest names the generator that regenerates each model's ONNX from (family, seed),
``export.generator`` = "module:function" called as ``f(family, seed, space=, batch=, opset=)`` and
returning (info, onnx bytes). nas_predictor imports it by that name (like an entry point), so it never
imports search_spaces itself and a user's own generator works the same way.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from nas_predictor.errors import DataError
from nas_predictor.jsonl import read_jsonl
from nas_predictor.io import atomic_write_bytes

FORMAT = "nas-predictor-latency-dataset"
FORMAT_VERSION = 1
MANIFEST, LABELS, FAILURES, GT, RETEST, LOCK = ("manifest.json", "labels.jsonl", "failures.jsonl", "gt.txt",
                                                 "retest.jsonl", ".build.lock")
DEFAULT_OPSET = 17


def graph_path(family: str, space: str, seed: int) -> str:
    """Where ``gt.txt`` says the graph of (family, space, seed) lives, relative to the dataset folder."""
    return f"onnx/{family}/{family}_{space}_{seed:05d}.onnx"


@dataclass
class DatasetRecord:
    """One label of a measured dataset."""

    family: str
    seed: int
    space: str
    batch: int
    opset: int
    graph: str
    latency_ms: float
    estimator: str
    fallback: bool
    macs: int
    config: dict
    label: dict = field(repr=False)

    @property
    def key(self) -> str:
        """``family/seed``: the record's name in graph caches and reports."""
        return f"{self.family}/{self.seed}"


class LatencyDataset:
    """An open dataset folder: its manifest, labels and failures (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.manifest: dict[str, Any] = {}
        if (self.root / MANIFEST).is_file():
            try:
                self.manifest = json.loads((self.root / MANIFEST).read_text())
            except json.JSONDecodeError as err:
                raise DataError(f"{self.root / MANIFEST}: not valid JSON ({err})") from None
            if self.manifest.get("format") != FORMAT:
                raise DataError(f"{self.root}: not a {FORMAT} folder (manifest format "
                                f"{self.manifest.get('format')!r})")
        raw = read_jsonl(self.root / LABELS)
        # a model measured again (``dataset build --relabel``, after a machine change) keeps its last label
        latest = {(e.get("family"), e.get("seed")): e for e in raw}
        self.labels = list(latest.values())
        self.superseded = len(raw) - len(self.labels)
        self.failures = read_jsonl(self.root / FAILURES)

    @property
    def identity(self) -> dict[str, Any] | None:
        return self.manifest.get("identity")

    @property
    def families(self) -> list[str]:
        """Families in the manifest's order (the order they were built in)."""
        return list(self.manifest.get("families") or dict.fromkeys(e["family"] for e in self.labels))

    def done(self) -> set[tuple[str, int]]:
        return {(e["family"], int(e["seed"])) for e in self.labels}

    def failed(self) -> set[tuple[str, int]]:
        return {(e["family"], int(e["seed"])) for e in self.failures}

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.labels:
            counts[e["family"]] = counts.get(e["family"], 0) + 1
        order = {f: i for i, f in enumerate(self.families)}
        return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order))))

    def records(self) -> list[DatasetRecord]:
        """Every label, sorted by family (manifest order) then seed."""
        ident = self.identity or {}
        out = []
        for n, e in enumerate(self.labels, 1):
            try:
                label = e["label"]
                out.append(DatasetRecord(e["family"], int(e["seed"]), e["space"], int(ident.get("batch", 1)),
                                         int(ident.get("opset", DEFAULT_OPSET)), e["graph"], float(label["label_ms"]),
                                         label["estimator"], bool(label["fallback"]), int(e["macs"]), e["config"],
                                         label))
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(f"{self.root / LABELS}:{n}: malformed label ({type(err).__name__}: {err})") from None
        order = {f: i for i, f in enumerate(self.families)}
        return sorted(out, key=lambda r: (order.get(r.family, len(order)), r.seed))

    def generator(self) -> Callable[..., tuple[dict, bytes]]:
        """The function that regenerates this dataset's graphs (named in the manifest)."""
        ref = (self.manifest.get("export") or {}).get("generator")
        if not ref:
            raise DataError(f"{self.root / MANIFEST}: names no graph generator (export.generator)")
        return load_generator(ref)


@functools.lru_cache(maxsize=None)
def load_generator(ref: str) -> Callable[..., tuple[dict, bytes]]:
    """``"package.module:function"`` -> the function (imported on first use)."""
    module, _, name = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise DataError(f"cannot import the dataset's graph generator {ref!r} ({err}); is the package that "
                        "built the dataset installed?") from None


def measured_on(records: Sequence[DatasetRecord]) -> dict[str, Any]:
    """Where and how the labels of ``records`` were measured: what a predictor trained on them is a model
    of (its checkpoint carries this). Values that differ between labels are listed."""
    def values(key: str) -> Any:
        seen = sorted({str(r.label.get(key)) for r in records if r.label.get(key) is not None})
        return seen[0] if len(seen) == 1 else seen

    refs = [float(r.label["reference_fast_ms"]) for r in records if r.label.get("reference_fast_ms")]
    first = records[0].label if records else {}
    return {"provider": first.get("provider"), "threads": first.get("threads"), "batch_size": first.get("batch_size"),
            "cpu_model": values("cpu_model"), "gpu": values("gpu") or None, "machine": values("machine"),
            "onnxruntime": values("onnxruntime_version"), "reference_version": values("reference_version"),
            "reference_fast_ms": float(statistics.median(refs)) if refs else None,
            "labels": len(records), "first": min((r.label.get("timestamp", "") for r in records), default=None),
            "last": max((r.label.get("timestamp", "") for r in records), default=None)}


def load_dataset(root: str | os.PathLike) -> list[DatasetRecord]:
    """The labels of a dataset folder, sorted by family then seed."""
    root = Path(root)
    if not (root / LABELS).is_file():
        raise DataError(f"{root}: no {LABELS}; build one with `nas-predictor dataset build --out {root}`")
    return LatencyDataset(root).records()


def _platform_id(label: dict) -> str:
    """A whitespace-free name of where a label was measured, for gt.txt's PlatformId column."""
    where = label.get("gpu") or label.get("cpu_model") or "unknown"
    threads = label.get("threads")
    text = f"{label['provider']}-{where}" + (f"-t{threads}" if threads else "")
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def write_gt(root: str | os.PathLike, records: Sequence[DatasetRecord] | None = None) -> Path:
    """Rewrite ``gt.txt`` from the labels (atomically): NNLQP's columns, one line per label."""
    root = Path(root)
    records = load_dataset(root) if records is None else records
    lines = [f"{i:05d} {r.graph} {r.batch} {r.latency_ms:.6g} {r.family} {_platform_id(r.label)}"
             for i, r in enumerate(records, 1)]
    atomic_write_bytes(("\n".join(lines) + ("\n" if lines else "")).encode(), root / GT)
    return root / GT


# --- graphs for training -----------------------------------------------------------------------------

def _export_generated(generator: str, dataset_space: str, opset: int, cache_space: str, key: str) -> tuple[str, dict]:
    """(key, ArchGraph dict) of the ``family/seed`` graph, regenerated at batch 1 (picklable for workers)."""
    from nas_predictor.onnx import onnx_to_graph

    family, seed = key.rsplit("/", 1)
    _, data = load_generator(generator)(family, int(seed), space=dataset_space, batch=1, opset=opset)
    return key, onnx_to_graph(data).to_dict()


def dataset_graph_cache_space(ds: LatencyDataset) -> str:
    """The graph-cache name of a dataset's graphs: generator, variant space and opset (not the batch:
    graphs are cached at batch 1 and re-batched)."""
    ident = ds.identity or {}
    ref = (ds.manifest.get("export") or {}).get("generator", "")
    digest = hashlib.sha1(ref.encode()).hexdigest()[:8]
    return f"measured-{ident.get('space', 'unknown')}-opset{ident.get('opset', DEFAULT_OPSET)}-{digest}"


def dataset_graphs(ds: LatencyDataset, records: Sequence[DatasetRecord], cache: str | os.PathLike | None = None,
                   workers: int = 1, progress: bool = True) -> list:
    """The ArchGraph of each record's network at the dataset's batch size, via the graph cache (each
    graph is regenerated and converted once per machine)."""
    from nas_predictor.data.latency_graphs import network_graphs

    ident = ds.identity or {}
    ref = (ds.manifest.get("export") or {}).get("generator")
    if not ref:
        raise DataError(f"{ds.root / MANIFEST}: names no graph generator (export.generator)")
    load_generator(ref)  # a missing generator fails here, before any worker starts
    export = functools.partial(_export_generated, ref, ident.get("space", "nnlqp"), int(ident.get("opset", DEFAULT_OPSET)))
    return network_graphs(dataset_graph_cache_space(ds), [r.key for r in records], int(ident.get("batch", 1)),
                          cache, workers, progress, export=export)
