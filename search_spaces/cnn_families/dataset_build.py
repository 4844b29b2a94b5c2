"""``dataset build``: measure generated networks or operators into a folder, resumably, refusing mixed labels."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from nas_predictor.data.latency_dataset import (FAILURES, FORMAT, FORMAT_VERSION, LABELS, MANIFEST, LatencyDataset,
                                                 graph_path, write_gt)
from nas_predictor.errors import ConfigError
from nas_predictor.io import atomic_write_bytes, atomic_write_json
from nas_predictor.jsonl import append_jsonl
from search_spaces.cnn_families.dataset_generators import (DEFAULT_GENERATOR, Generator, _generator, build_order,
                                                           dataset_generator, parse_families)
from search_spaces.cnn_families.dataset_pipeline import (_cores, _Exporter, _folder_lock, _inline_exports,
                                                         _measure_stream, _software)
from search_spaces.onnx_export import DEFAULT_OPSET

BUILD_PROVIDERS = ("cpu", "cuda", "tensorrt", "torch-cuda")
# The settings a label depends on: a folder holds labels of one setting only.
IDENTITY_KEYS = ("space", "provider", "batch", "opset")
#: Labels whose reference model ran more than this factor faster or slower than it runs here were
#: measured on another machine (or host): seen here, one VM ran the reference at 5.7-9.3 ms and the
#: next at 2.45-2.9 ms, and labels of the same models differed by 1.6-2.8x.
MACHINE_TOLERANCE = 1.3
MACHINE_CHECK_ROUNDS, MACHINE_CHECK_SECONDS = 6, 5.0  # up to 30 s more of the reference before refusing


@dataclass
class BuildReport:
    """What one build call did."""

    root: Path
    measured: int = 0
    failed: int = 0
    remaining: int = 0
    seconds: float = 0.0
    stopped: str = "done"  # "done", "time limit", "interrupted"
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def labels_per_hour(self) -> float:
        return 3600.0 * self.measured / self.seconds if self.seconds > 0 else 0.0


def build_dataset(
    root: str | os.PathLike, families: Sequence[str] | str | None = None, per_family: int = 300, *,
    provider: str = "cpu", space: str | None = None, batch: int = 1, opset: int = DEFAULT_OPSET,
    measure_core: int | None = None, export_core: int | None = None, max_minutes: float | None = None,
    retry_failed: bool = False, first_seed: int = 0, progress: bool = True, subprocess_export: bool = True,
    command: str | None = None, measurer: Any = None, relabel: bool = False, generator: str = DEFAULT_GENERATOR,
    torch_timer: Callable[..., Any] | None = None,
) -> BuildReport:
    """Measure seeds ``first_seed .. first_seed + per_family - 1`` of each family into ``root``
    (resuming what is there). ``max_minutes`` stops cleanly after that long (build in chunks);
    ``retry_failed`` measures models that failed before again. See the module docstring.

    On the CPU the reference model's fast time here is compared with the one stored in every label:
    labels measured on another machine do not compare with new ones, so a build that would mix them
    is refused, and ``relabel`` measures those models again here (the new label supersedes the old).
    The same holds for gated-ratio labels of the old estimator (record version 1, see
    :func:`old_estimator_labels`): a build that would add labels next to them is refused, and
    ``relabel`` measures them again.

    ``generator`` ("networks" or "operators", see :data:`GENERATORS`) says what the graphs are:
    ``families`` are then its names (operator kinds) and ``space`` one of its spaces (None: its first,
    "nnlqp" for networks, "ops" for operators); a folder of the other generator is refused.

    ``provider="torch-cuda"`` times each variant's torch module (the generator's ``torch`` function: the
    network itself, or ``search_spaces.operators_torch``'s module of the operator's config) with
    ``torch_timer`` (default ``measure_torch_cuda``, which needs a CUDA GPU; a replacement with its
    signature, e.g. a CPU stand-in for a dry run, skips that check)."""
    from tqdm import tqdm

    gen = _generator(generator)
    families = parse_families(families, gen.name)
    if provider not in BUILD_PROVIDERS:
        raise ConfigError(f"unknown provider {provider!r}; choose one of {', '.join(BUILD_PROVIDERS)}")
    space = gen.spaces[0] if space is None else space
    if space not in gen.spaces:
        raise ConfigError(f"unknown space {space!r}{'' if gen.name == DEFAULT_GENERATOR else ' for ' + gen.name}; "
                          f"choose one of {', '.join(gen.spaces)}")
    if provider == "torch-cuda" and gen.torch is None:  # it times the torch module, not the ONNX
        raise ConfigError(f"provider torch-cuda times torch modules; the {gen.name} generator makes ONNX graphs "
                          "only: use --provider cuda")
    for name, value, low in (("per_family", per_family, 1), ("batch", batch, 1), ("first_seed", first_seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if max_minutes is not None and not (max_minutes > 0 and math.isfinite(max_minutes)):
        raise ConfigError(f"max_minutes must be a positive number, got {max_minutes!r}")
    if provider != "cpu":
        from nas_predictor.latency.providers import check_provider
        if provider != "torch-cuda":
            check_provider(provider)  # fail before anything is exported
        elif torch_timer is None:
            from nas_predictor.latency.torch_cuda import require_cuda
            require_cuda()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    identity = {"space": space, "provider": provider, "batch": batch, "opset": opset}
    if gen.name != DEFAULT_GENERATOR:  # a networks folder names no generator (all those built before operators)
        identity["generator"] = gen.name
    start = time.monotonic()
    report = BuildReport(root)
    with _folder_lock(root):
        ds = LatencyDataset(root)
        held = dataset_generator(ds).name if ds.identity is not None else gen.name
        if held != gen.name:
            raise ConfigError(f"{root} holds {held} ({len(ds.labels)} labels), not {gen.name}; one folder never mixes "
                              f"them: use another --out folder")
        if ds.identity is not None and ds.identity != identity:
            diff = ", ".join(f"{k} {ds.identity.get(k)!r} (asked {identity[k]!r})" for k in IDENTITY_KEYS
                             if ds.identity.get(k) != identity[k])
            raise ConfigError(f"{root} holds labels of another setting: {diff}; use another --out folder")
        skip = ds.done() | (set() if retry_failed else ds.failed())
        if provider == "cpu" and ds.labels:
            from nas_predictor.latency import Measurer

            measurer = measurer or Measurer("cpu", core=_cores(measure_core, export_core)[0])
            here_ms = _reference_fast_ms(measurer)
            foreign = other_machine_labels(ds, here_ms)
            # a start while the machine is busy reads the reference slow: look longer before calling the
            # folder another machine's
            for _ in range(MACHINE_CHECK_ROUNDS):
                if not foreign or relabel or not hasattr(measurer, "warm_reference"):
                    break
                here_ms = measurer.warm_reference(MACHINE_CHECK_SECONDS)
                foreign = other_machine_labels(ds, here_ms)
            if foreign and not relabel:
                raise ConfigError(_machine_message(root, ds, foreign, here_ms))
            skip -= set(foreign)
            stale = old_estimator_labels(ds)
            if relabel:
                skip -= stale
            elif stale and build_order(families, per_family, skip, first_seed):
                raise ConfigError(_estimator_message(root, ds, stale))
        tasks = build_order(families, per_family, skip, first_seed)
        manifest = _manifest_base(ds.manifest, identity, families, command, gen)
        atomic_write_json(manifest, root / MANIFEST)
        deadline = start + 60.0 * max_minutes if max_minutes is not None else None
        counts = ds.counts()
        stopped = "done"
        exporter = None
        bar = tqdm(total=len(tasks), unit="model", disable=not progress or not tasks, desc="latency dataset",
                   dynamic_ncols=True)
        measure_core, export_core = _cores(measure_core, export_core) if provider == "cpu" else (measure_core, None)

        def on_label(info: dict, label: Any) -> None:
            append_jsonl(root / LABELS, {"family": info["family"], "seed": info["seed"], "space": space,
                                         "graph": graph_path(info["family"], space, info["seed"]),
                                         "config": info["config"], "input_shape": info["input_shape"],
                                         "macs": info["macs"], "label": label.to_dict()})
            counts[info["family"]] = counts.get(info["family"], 0) + 1
            report.measured += 1
            bar.update()
            bar.set_postfix_str(f"{info['family']} {label.label_ms:.2f} ms", refresh=False)

        def on_failure(family: str, seed: int, stage: str, error: str) -> None:
            append_jsonl(root / FAILURES, {"family": family, "seed": seed, "space": space, "stage": stage,
                                           "error": error})
            report.failed += 1
            bar.update()
            tqdm.write(f"{family} seed {seed}: {stage} failed: {error}", file=sys.stderr)

        try:
            if not tasks:
                items: Iterable[tuple] = []
            elif subprocess_export and provider != "torch-cuda":
                exporter = _Exporter(tasks, export_core, space, batch, opset, gen.name)
                items = iter(exporter)
            else:
                items = _inline_exports(tasks, space, batch, opset, gen.name, provider == "torch-cuda")
            stopped = _measure_stream(items, provider=provider, measure_core=measure_core, space=space,
                                      batch=batch, on_label=on_label, on_failure=on_failure, deadline=deadline,
                                      measurer=measurer, torch_timer=torch_timer)
        except KeyboardInterrupt:
            stopped = "interrupted"
            raise
        finally:
            bar.close()
            if exporter is not None:
                exporter.close()
            report.seconds = time.monotonic() - start
            report.stopped = stopped
            final = LatencyDataset(root)
            if final.superseded:
                # relabelled models: keep only their newest labels, so the file stays one line per model
                # (git keeps the older ones if the folder is committed)
                body = "".join(json.dumps(e, allow_nan=True) + "\n" for e in final.labels)
                atomic_write_bytes(body.encode(), root / LABELS)
                final = LatencyDataset(root)
            report.counts = final.counts()
            report.remaining = len(build_order(families, per_family, final.done() | final.failed(), first_seed))
            if relabel and provider == "cpu":
                report.remaining += len(set(other_machine_labels(final, _reference_fast_ms(measurer)))
                                        | old_estimator_labels(final))
            _finish_manifest(root, manifest, final, report)
            write_gt(root, final.records())
    return report


def _reference_fast_ms(measurer: Any) -> float | None:
    """The reference model's fast-state time on this machine (None for a measurer without one)."""
    tracker = getattr(measurer, "tracker", None)
    return tracker.fast_ms if tracker is not None else None


def other_machine_labels(ds: LatencyDataset, fast_ms: float | None,
                         tolerance: float = MACHINE_TOLERANCE) -> dict[tuple[str, int], float]:
    """(family, seed) -> stored reference fast time, for the labels measured where the reference ran
    more than ``tolerance`` times faster or slower than ``fast_ms`` (this machine's)."""
    if not fast_ms:
        return {}
    out = {}
    for e in ds.labels:
        ref = e["label"].get("reference_fast_ms")
        if ref and not (1.0 / tolerance <= ref / fast_ms <= tolerance):
            out[(e["family"], int(e["seed"]))] = float(ref)
    return out


def old_estimator_labels(ds: LatencyDataset) -> set[tuple[str, int]]:
    """(family, seed) of the gated-ratio labels of record version 1: their ratio was scaled by the
    tracker's reference time, which mixes the reference's runs after every other model (its speed
    depends on what ran before it), so each is off by its own context: in cpu_1t the reference's typical
    run in a model's pairs was a median 1.02x (NAS-Bench-201) to 1.11x (AlexNet) that time."""
    return {(e["family"], int(e["seed"])) for e in ds.labels
            if e["label"].get("estimator") == "gated-ratio" and int(e["label"].get("record_version", 1)) < 2}


def _estimator_message(root: Path, ds: LatencyDataset, stale: set[tuple[str, int]]) -> str:
    return (f"{root}: {len(stale)} of its {len(ds.labels)} labels are gated-ratio labels of record version 1, "
            "scaled by the reference's time after other models (issue 26); labels measured now do not compare "
            "with them. Rerun with --relabel to measure those models again (the new labels supersede the old), "
            "or build into another --out folder")


def _machine_message(root: Path, ds: LatencyDataset, foreign: dict[tuple[str, int], float], fast_ms: float | None) -> str:
    refs = sorted(foreign.values())
    return (f"{root}: {len(foreign)} of its {len(ds.labels)} labels were measured on another machine (the "
            f"reference model ran at {refs[0]:.2f}-{refs[-1]:.2f} ms there, {fast_ms:.2f} ms here); labels of "
            "two machines do not compare. Rerun with --relabel to measure those models again here (the new "
            "labels supersede the old), or build into another --out folder")


def _manifest_base(old: dict, identity: dict, families: Sequence[str], command: str | None,
                   gen: Generator) -> dict:
    from nas_predictor.latency import CpuProtocol, GpuProtocol, REFERENCE_VERSION

    manifest = dict(old) if old else {"format": FORMAT, "format_version": FORMAT_VERSION,
                                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      "builds": []}
    manifest["identity"] = identity
    manifest["families"] = sorted(set(manifest.get("families", [])) | set(families), key=gen.names.index)
    manifest["export"] = {**gen.export, "opset": identity["opset"], "generator": gen.ref}
    manifest["protocol"] = (CpuProtocol() if identity["provider"] == "cpu" else GpuProtocol()).to_dict()
    manifest["reference_version"] = REFERENCE_VERSION if identity["provider"] == "cpu" else None
    manifest["software"] = _software()
    if command:
        manifest.setdefault("commands", [])
        if command not in manifest["commands"]:
            manifest["commands"].append(command)
    return manifest


def _finish_manifest(root: Path, manifest: dict, ds: LatencyDataset, report: BuildReport) -> None:
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest["counts"] = ds.counts()
    manifest["labels"] = len(ds.labels)
    manifest["failures"] = len(ds.failures)
    manifest["fallback_labels"] = sum(bool(e["label"].get("fallback")) for e in ds.labels)
    manifest["builds"] = list(manifest.get("builds", [])) + [{
        "finished": manifest["updated"], "measured": report.measured, "failed": report.failed,
        "seconds": round(report.seconds, 1), "labels_per_hour": round(report.labels_per_hour, 1),
        "stopped": report.stopped, "machine": manifest["software"]["machine"]}]
    atomic_write_json(manifest, root / MANIFEST)
