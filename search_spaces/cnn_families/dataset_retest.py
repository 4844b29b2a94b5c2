"""``dataset retest``: measure a sample of a dataset's models again, summarise the test-retest agreement, and
(``--repair``) let a clearly faster second measurement replace a slowed first one.

Why a repair takes the faster of two measurements: no host state makes a model run faster than it is,
so two labels of one model that disagree by more than the protocol's tolerance mean that one of them was
slowed. The reference gate cannot always see that: a process busy on the *other* core slows a large,
memory-bound target (depthwise convs on big maps, many-branch nets) through the shared cache and memory
bus while the small, cache-resident reference model stays at its fast time. Found on the one-thread
onnxruntime set (docs/latency.md, "Label repair"): HRNet seed 5 was labelled 33.7 ms in four agreeing
passes while the machine also measured operators on the other core, and measures 13.1 ms on a quiet one.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from nas_predictor.data.latency_dataset import LABELS, MANIFEST, RETEST, LatencyDataset, write_gt
from nas_predictor.errors import ConfigError, DataError
from nas_predictor.io import atomic_write_json
from nas_predictor.jsonl import append_jsonl, read_jsonl
from nas_predictor.latency.protocol import CpuProtocol
from search_spaces.cnn_families.dataset_build import MACHINE_TOLERANCE, old_estimator_labels
from search_spaces.cnn_families.dataset_generators import dataset_generator
from search_spaces.cnn_families.dataset_pipeline import (_cores, _Exporter, _folder_lock, _inline_exports,
                                                         _measure_stream)


@dataclass
class RetestSummary:
    """Test-retest agreement: |second / first - 1| over the retested models. ``mean_diff`` is the
    MAPE of the second measurement against the first: the noise floor a predictor's MAPE is read against."""

    models: int
    mean_diff: float
    median_diff: float
    p90_diff: float
    max_diff: float
    within_5pct: float
    within_10pct: float
    by_estimator: dict[str, dict[str, float]]
    by_family: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RepairReport:
    """What ``repair_from_retest`` changed: ``repaired`` labels replaced by their faster retest, out of
    ``compared`` models measured twice; ``slower`` retests beyond the tolerance left the label alone."""

    compared: int
    repaired: int
    slower: int
    tolerance: float
    by_family: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def first_labels(ds: LatencyDataset) -> dict[tuple[str, int], dict]:
    """Each model's label as measured (not as repaired): the label a retest is compared with."""
    out: dict[tuple[str, int], dict] = {}
    for e in read_jsonl(ds.root / LABELS):
        if "repaired" not in e:  # a repair line carries the retest's label; the measured one came before it
            out[(e["family"], int(e["seed"]))] = e["label"]
    return out


def repair_from_retest(root: str | os.PathLike, tolerance: float | None = None) -> RepairReport:
    """Where a model's retest is faster than its current label by more than ``tolerance`` (default: the
    protocol's, the same ratio the reference gate allows), append the retest as its label, marked
    ``repaired`` with the value it replaces; readers take a model's newest line. Idempotent: a repaired
    label equals its retest."""
    root = Path(root)
    tol = float(tolerance if tolerance is not None else CpuProtocol().tolerance)
    if tol < 1.0:
        raise ConfigError(f"a repair tolerance is a ratio >= 1, got {tol}")
    with _folder_lock(root):
        ds = LatencyDataset(root)
        current = {(e["family"], int(e["seed"])): e for e in ds.labels}
        retests = {(e["family"], int(e["seed"])): e["label"] for e in read_jsonl(root / RETEST)}
        refs = [float(e["label"]["reference_fast_ms"]) for e in ds.labels if e["label"].get("reference_fast_ms")]
        if refs:  # a repair never mixes machines: the retest must come from the labels' machine
            median = float(np.median(refs))
            other = [k for k, lab in retests.items() if lab.get("reference_fast_ms")
                     and not 1.0 / MACHINE_TOLERANCE <= float(lab["reference_fast_ms"]) / median <= MACHINE_TOLERANCE]
            if other:
                raise ConfigError(f"{root}: {len(other)} retest labels were measured where the reference model ran "
                                  f"more than {MACHINE_TOLERANCE}x faster or slower than for the labels (median "
                                  f"{median:.3g} ms): another machine; a repair never mixes machines")
        compared = repaired = slower = 0
        by_family: dict[str, int] = {}
        for key, second in retests.items():
            entry = current.get(key)
            if entry is None:
                continue
            compared += 1
            label_ms, retest_ms = float(entry["label"]["label_ms"]), float(second["label_ms"])
            if retest_ms * tol < label_ms:
                append_jsonl(root / LABELS, {**entry, "label": second,
                                             "repaired": {"previous_ms": label_ms, "retest_ms": retest_ms,
                                                          "tolerance": tol,
                                                          "rule": "retest faster than the label by more than the "
                                                                  "tolerance: the label was slowed"}})
                repaired += 1
                by_family[key[0]] = by_family.get(key[0], 0) + 1
            elif label_ms * tol < retest_ms:
                slower += 1
        report = RepairReport(compared, repaired, slower, tol, by_family)
        if repaired:
            write_gt(root)
        manifest = LatencyDataset(root).manifest
        manifest.setdefault("repairs", []).append({**report.as_dict(),
                                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        atomic_write_json(manifest, root / MANIFEST)
    return report


def retest_sample(ds: LatencyDataset, sample: int, seed: int = 0) -> list[tuple[str, int]]:
    """``sample`` labelled (family, seed) pairs drawn without replacement, stratified by family."""
    names = dataset_generator(ds).names
    done = sorted(ds.done(), key=lambda fs: (names.index(fs[0]), fs[1]))
    if sample > len(done):
        raise ConfigError(f"{ds.root} holds {len(done)} labels; cannot retest a sample of {sample}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(done))
    # round-robin over families in the permuted order, so every family is represented
    by_family: dict[str, list[tuple[str, int]]] = {}
    for i in order:
        by_family.setdefault(done[i][0], []).append(done[i])
    picked: list[tuple[str, int]] = []
    while len(picked) < sample:
        for f in sorted(by_family, key=names.index):
            if by_family[f] and len(picked) < sample:
                picked.append(by_family[f].pop(0))
    return picked


def summarize_retest(first: dict[tuple[str, int], float], second: dict[tuple[str, int], float],
                     estimators: dict[tuple[str, int], str] | None = None) -> RetestSummary:
    keys = sorted(set(first) & set(second))
    if not keys:
        raise DataError("no model was measured twice")
    diff = np.array([abs(second[k] / first[k] - 1.0) for k in keys])

    def stats(d: np.ndarray) -> dict[str, float]:
        return {"models": int(d.size), "mean_diff": float(d.mean()), "median_diff": float(np.median(d)),
                "p90_diff": float(np.percentile(d, 90)),
                "within_10pct": float(np.mean(d <= 0.10))}

    by_est: dict[str, dict[str, float]] = {}
    if estimators:
        for est in sorted({estimators[k] for k in keys}):
            mask = np.array([estimators[k] == est for k in keys])
            by_est[est] = stats(diff[mask])
    families = np.array([k[0] for k in keys])
    by_family = {f: stats(diff[families == f]) for f in dict.fromkeys(families.tolist())}
    return RetestSummary(len(keys), float(diff.mean()), float(np.median(diff)), float(np.percentile(diff, 90)),
                         float(diff.max()), float(np.mean(diff <= 0.05)), float(np.mean(diff <= 0.10)), by_est,
                         by_family)


def retest_dataset(root: str | os.PathLike, sample: int = 100, *, seed: int = 0, measure_core: int | None = None,
                   export_core: int | None = None, progress: bool = True, subprocess_export: bool = True,
                   measurer: Any = None, torch_timer: Callable[..., Any] | None = None) -> RetestSummary:
    """Measure a sample of a dataset's models again (resumable, into retest.jsonl) and compare."""
    from tqdm import tqdm

    root = Path(root)
    with _folder_lock(root):
        ds = LatencyDataset(root)
        if ds.identity is None:
            raise DataError(f"{root}: no manifest; not a built dataset")
        ident = ds.identity
        generator = dataset_generator(ds).name
        picked = retest_sample(ds, sample, seed)
        retested = {(e["family"], int(e["seed"])) for e in read_jsonl(root / RETEST)}
        tasks = [fs for fs in picked if fs not in retested]
        stale = old_estimator_labels(ds) & set(tasks)
        if stale:  # a retest with today's estimator would compare two estimators, not two measurements
            raise ConfigError(f"{root}: {len(stale)} of the {len(picked)} sampled models have gated-ratio labels of "
                              "record version 1 (issue 26); measure them again first with `dataset build --relabel`")
        bar = tqdm(total=len(tasks), unit="model", disable=not progress or not tasks, desc="retest")
        exporter = None

        def on_label(info: dict, label: Any) -> None:
            append_jsonl(root / RETEST, {"family": info["family"], "seed": info["seed"], "label": label.to_dict()})
            bar.update()

        def on_failure(family: str, seed_: int, stage: str, error: str) -> None:
            bar.update()
            tqdm.write(f"{family} seed {seed_}: {stage} failed on retest: {error}", file=sys.stderr)

        m_core, e_core = _cores(measure_core, export_core) if ident["provider"] == "cpu" else (measure_core, None)
        try:
            if tasks and subprocess_export and ident["provider"] != "torch-cuda":
                exporter = _Exporter(tasks, e_core, ident["space"], ident["batch"], ident["opset"], generator)
                items: Iterable[tuple] = iter(exporter)
            else:
                items = _inline_exports(tasks, ident["space"], ident["batch"], ident["opset"], generator,
                                        ident["provider"] == "torch-cuda")
            _measure_stream(items, provider=ident["provider"], measure_core=m_core, space=ident["space"],
                            batch=ident["batch"], on_label=on_label, on_failure=on_failure, deadline=None,
                            measurer=measurer, torch_timer=torch_timer)
        finally:
            bar.close()
            if exporter is not None:
                exporter.close()
        measured = first_labels(ds)  # test-retest of two measurements, never of a repair against its retest
        first = {k: float(v["label_ms"]) for k, v in measured.items()}
        estimators = {k: v["estimator"] for k, v in measured.items()}
        wanted = set(picked)
        second = {(e["family"], int(e["seed"])): float(e["label"]["label_ms"]) for e in read_jsonl(root / RETEST)
                  if (e["family"], int(e["seed"])) in wanted}
        summary = summarize_retest(first, second, estimators)
        manifest = LatencyDataset(root).manifest
        manifest["retest"] = {"sample": sample, "seed": seed, **summary.as_dict(),
                              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write_json(manifest, root / MANIFEST)
    return summary
