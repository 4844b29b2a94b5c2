"""``dataset retest``: measure a sample of a dataset's models again and summarise the test-retest agreement."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from nas_predictor.data.latency_dataset import MANIFEST, RETEST, LatencyDataset
from nas_predictor.errors import ConfigError, DataError
from nas_predictor.io import atomic_write_json
from nas_predictor.jsonl import append_jsonl, read_jsonl
from search_spaces.cnn_families.dataset_build import old_estimator_labels
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
        first = {(e["family"], int(e["seed"])): float(e["label"]["label_ms"]) for e in ds.labels}
        estimators = {(e["family"], int(e["seed"])): e["label"]["estimator"] for e in ds.labels}
        wanted = set(picked)
        second = {(e["family"], int(e["seed"])): float(e["label"]["label_ms"]) for e in read_jsonl(root / RETEST)
                  if (e["family"], int(e["seed"])) in wanted}
        summary = summarize_retest(first, second, estimators)
        manifest = LatencyDataset(root).manifest
        manifest["retest"] = {"sample": sample, "seed": seed, **summary.as_dict(),
                              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write_json(manifest, root / MANIFEST)
    return summary
