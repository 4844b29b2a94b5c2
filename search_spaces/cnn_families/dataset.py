"""A latency dataset of the ten NNLQP families, measured on this machine: build, resume, retest, read.

Layout of a dataset folder (``nas-predictor dataset build --out DIR``)::

    manifest.json    what was built and how: families, space, provider, batch, opset, the protocol, the
                     machine and software of the labels, counts per family, failures, commands, timings
    labels.jsonl     one line per measured model: family, seed, space, graph path, variant config,
                     input shape, MACs, and the full LatencyLabel record (raw and robust statistics)
    failures.jsonl   one line per model that could not be exported or measured (stage, error)
    gt.txt           NNLQP's label format (GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId),
                     rewritten from labels.jsonl; ``load_nnlqp_labels`` reads it once the graphs exist
    retest.jsonl     (``dataset retest``) second measurements of a sample, for the test-retest figure

No ONNX file is stored: every graph is regenerated from (family, seed, space, batch, opset) by
:func:`variant_onnx` (``dataset export`` writes the ``onnx/`` tree that ``gt.txt`` names).

Building: an exporter process pinned to one core generates and exports the variants ahead into a
small queue; this process, pinned to another core, measures them with one long-lived
:class:`~nas_predictor.latency.Measurer` (the reference model and its fast-state tracker stay warm).
The measurement doc found that a busy process on the other core does not disturb a one-thread
measurement, so the two overlap. Seeds are taken round-robin over the families (seed 0 of every
family, then seed 1, ...), so a build stopped at any point holds a balanced dataset.

Resuming: every label and failure is appended and fsynced the moment it exists; a rerun with the same
folder reads them, skips those (family, seed) pairs and goes on, so a killed build loses at most the
models in flight and never measures one twice. A folder built with other settings (provider, space,
batch, opset) is refused; another build running on the same folder is refused (a lock file).

Generators: a folder holds the graphs of one generator (:data:`GENERATORS`): ``networks`` (the
families above, the default) or ``operators`` (``search_spaces.operators``: single operators and small
blocks, ``dataset build --ops``). The identity of an operators folder records ``"generator":
"operators"``; a folder whose identity names none holds networks (every folder built before operators
existed), so the two never mix and ``status`` / ``retest`` / ``export`` work on either.

PyTorch CUDA (``--provider torch-cuda``, for GPU machines without onnxruntime-gpu): each generator also
makes its variants as torch modules (:func:`variant_torch` for networks, ``search_spaces.operators_torch``
for operators: the module of the same sampled config), and the label is that module's CUDA time; the
folder format is the same, and the graphs a reader regenerates are still the ONNX ones.
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from nas_predictor.errors import ConfigError, DataError, NasPredictorError
# The folder format (names, reader, gt.txt writer) lives in nas_predictor, which reads datasets for
# training; they are re-exported here for the builder's users.
from nas_predictor.data.latency_dataset import (FAILURES, FORMAT, FORMAT_VERSION, GT, LABELS, LOCK,
                                                 MANIFEST, RETEST, DatasetRecord, LatencyDataset, graph_path,
                                                 load_dataset, write_gt)
from nas_predictor.jsonl import append_jsonl, read_jsonl
from nas_predictor.io import atomic_write_bytes, atomic_write_json, file_lock
from search_spaces.cnn_families import FAMILIES, SPACES, generate
from search_spaces.onnx_export import DEFAULT_OPSET, export_onnx
from search_spaces import operators

__all__ = ["BUILD_PROVIDERS", "BuildReport", "DatasetRecord", "FAILURES", "FORMAT", "GENERATOR", "GENERATORS",
           "Generator", "GT", "LABELS",
           "LatencyDataset", "MANIFEST", "RETEST", "RetestSummary", "build_dataset", "build_order", "export_graphs",
           "graph_path", "load_dataset", "old_estimator_labels", "other_machine_labels", "parse_families",
           "retest_dataset", "retest_sample", "summarize_retest",
           "variant_onnx", "variant_torch", "write_gt"]

BUILD_PROVIDERS = ("cpu", "cuda", "tensorrt", "torch-cuda")
# The settings a label depends on: a folder holds labels of one setting only.
IDENTITY_KEYS = ("space", "provider", "batch", "opset")
#: Labels whose reference model ran more than this factor faster or slower than it runs here were
#: measured on another machine (or host): seen here, one VM ran the reference at 5.7-9.3 ms and the
#: next at 2.45-2.9 ms, and labels of the same models differed by 1.6-2.8x.
MACHINE_TOLERANCE = 1.3
MACHINE_CHECK_ROUNDS, MACHINE_CHECK_SECONDS = 6, 5.0  # up to 30 s more of the reference before refusing
QUEUE_AHEAD = 6
# How a reader regenerates the graphs (nas_predictor.data.latency_dataset imports it by this name).
GENERATOR = "search_spaces.cnn_families.dataset:variant_onnx"  # exported graphs waiting for the measurer (each 4-60 KB)


@dataclass(frozen=True)
class Generator:
    """What a dataset folder's graphs are made by: the names it takes (families or operator kinds; their
    order is the generator's seeding contract and the folder's order), the function that makes each graph
    (``"module:function"``, called ``f(name, seed, space=, batch=, opset=) -> (info, onnx bytes)``; the
    manifest's ``export.generator``), its variant spaces (the first is the default) and how it exports."""

    name: str
    names: tuple[str, ...]
    ref: str
    spaces: tuple[str, ...]
    noun: tuple[str, str]  # singular, plural: for messages
    export: dict
    # ``"module:function"``, called like ``ref`` but returning (info, torch module): the same variant as a
    # module the torch-cuda provider times (the ONNX graph of the same info is what a predictor trains on)
    torch: str | None = None

    def function(self) -> Callable[..., tuple[dict, bytes]]:
        """The variant function, looked up when called (a test's replacement of it is seen)."""
        return _lookup(self.ref)

    def torch_function(self) -> Callable[..., tuple[dict, Any]]:
        """The torch variant function (``provider="torch-cuda"``), looked up when called."""
        if self.torch is None:
            raise ConfigError(f"the {self.name} generator makes no torch modules")
        return _lookup(self.torch)


def _lookup(ref: str) -> Callable[..., Any]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


DEFAULT_GENERATOR = "networks"  # the generator of a folder whose identity names none
GENERATORS: dict[str, Generator] = {g.name: g for g in (
    Generator("networks", FAMILIES, GENERATOR, SPACES, ("family", "families"),
              {"exporter": "torch.onnx legacy (dynamo=False)", "export_params": False, "do_constant_folding": False},
              "search_spaces.cnn_families.dataset:variant_torch"),
    Generator("operators", operators.KINDS, "search_spaces.operators:variant_onnx", (operators.SPACE,),
              ("kind", "kinds"), {"exporter": "onnx.helper (search_spaces.operators)", "export_params": False},
              "search_spaces.operators_torch:variant_torch"),
)}


def _generator(name: str) -> Generator:
    try:
        return GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}") from None


def dataset_generator(ds: LatencyDataset) -> Generator:
    """The generator of a built folder's graphs (networks when its identity names none)."""
    return _generator((ds.identity or {}).get("generator", DEFAULT_GENERATOR))


def variant_onnx(family: str, seed: int, *, space: str = "nnlqp", batch: int = 1,
                 opset: int = DEFAULT_OPSET) -> tuple[dict, bytes]:
    """Variant ``seed`` of ``family`` (its ``as_dict()``) and its weight-free ONNX at ``batch``.

    The same arguments always give the same graph: this is how a dataset's graphs are regenerated."""
    variant = generate(family, seed, space=space)
    shape = (batch,) + tuple(variant.input_shape[1:])
    data = export_onnx(variant.build(), shape, opset=opset)
    info = variant.as_dict()
    info["input_shape"] = list(shape)
    return info, data


def variant_torch(family: str, seed: int, *, space: str = "nnlqp", batch: int = 1,
                  opset: int = DEFAULT_OPSET) -> tuple[dict, Any]:
    """:func:`variant_onnx`'s info and the torch module of the same variant, without the ONNX export
    (the torch-cuda provider times the module; an export, ~1 s per network, would be thrown away)."""
    variant = generate(family, seed, space=space)
    info = variant.as_dict()
    info["input_shape"] = [batch, *variant.input_shape[1:]]
    return info, variant.build()


def parse_families(text: str | Sequence[str] | None, generator: str = DEFAULT_GENERATOR) -> tuple[str, ...]:
    """``"all"`` / None -> every family (operator kind, for ``generator="operators"``); otherwise
    comma-separated names, checked, in the generator's order."""
    known = _generator(generator).names
    if text is None or text == "all" or (not isinstance(text, str) and list(text) == ["all"]):
        return known
    names = [n.strip() for part in ([text] if isinstance(text, str) else text) for n in part.split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        one, many = _generator(generator).noun
        raise ConfigError(f"unknown {one if len(unknown) == 1 else many} {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(known)} or 'all'")
    return tuple(f for f in known if f in names)


def build_order(families: Sequence[str], per_family: int, skip: set[tuple[str, int]],
                first_seed: int = 0) -> list[tuple[str, int]]:
    """(family, seed) pairs still to do, round-robin: seed s of every family before seed s + 1."""
    return [(f, s) for s in range(first_seed, first_seed + per_family) for f in families if (f, s) not in skip]


def export_graphs(root: str | os.PathLike, families: Sequence[str] | str | None = None, *,
                  progress: bool = True) -> int:
    """Write the ONNX files ``gt.txt`` names (skipping those present); returns the number written.
    ``families``: names (or comma-separated text, or "all") of the folder's generator."""
    from tqdm import tqdm

    root = Path(root)
    records = load_dataset(root)
    generator = dataset_generator(LatencyDataset(root))
    if families is not None:
        wanted = set(parse_families(families, generator.name))
        records = [r for r in records if r.family in wanted]
    make = generator.function()
    written = 0
    for r in tqdm(records, unit="graph", disable=not progress, desc="export"):
        path = root / r.graph
        if path.is_file():
            continue
        atomic_write_bytes(make(r.family, r.seed, space=r.space, batch=r.batch, opset=r.opset)[1], path)
        written += 1
    write_gt(root)
    return written


# --- building ----------------------------------------------------------------------------------------

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


def _cores(measure_core: int | None, export_core: int | None) -> tuple[int | None, int | None]:
    """Measure on the last allowed core (core 0 takes more interrupts), export on another one."""
    from nas_predictor.latency.pinning import NO_PINNING, choose_core

    measure = choose_core(measure_core)
    if export_core == NO_PINNING or not hasattr(os, "sched_getaffinity"):
        return measure, None
    allowed = sorted(os.sched_getaffinity(0))
    if export_core is None:
        others = [c for c in allowed if c != measure]
        export_core = others[-1] if others else measure
    elif export_core not in allowed:
        raise ConfigError(f"export core {export_core} is not available to this process (allowed: {allowed})")
    return measure, export_core


def _export_worker(tasks: list[tuple[str, int]], out: Any, core: int | None, space: str, batch: int,
                   opset: int, generator: str = DEFAULT_GENERATOR) -> None:
    """Exporter process: generate and export each (family, seed) and hand the graph to the measurer."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    import torch

    torch.set_num_threads(1)  # one core; more threads would spill onto the measuring core
    make = _generator(generator).function()
    for family, seed in tasks:
        try:
            info, data = make(family, seed, space=space, batch=batch, opset=opset)
        except Exception as err:  # one bad variant must not stop the build
            out.put(("error", family, seed, f"{type(err).__name__}: {err}"))
        else:
            out.put(("ok", family, seed, info, data))
    out.put(None)


class _Exporter:
    """The exporter process and its queue; iterating yields ("ok" | "error", ...) items in task order."""

    def __init__(self, tasks: list[tuple[str, int]], core: int | None, space: str, batch: int, opset: int,
                 generator: str = DEFAULT_GENERATOR) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no torch threads or locks inherited
        self.queue = ctx.Queue(maxsize=QUEUE_AHEAD)
        self.process = ctx.Process(target=_export_worker,
                                   args=(tasks, self.queue, core, space, batch, opset, generator),
                                   daemon=True, name="nas-predictor-exporter")
        self.process.start()

    def __iter__(self) -> Iterator[tuple]:
        while True:
            try:
                item = self.queue.get(timeout=5.0)
            except queue_module.Empty:
                if not self.process.is_alive():
                    raise NasPredictorError(f"the exporter process died (exit code {self.process.exitcode}); "
                                            "labels measured so far are kept, rerun to resume") from None
                continue
            if item is None:
                return
            yield item

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        self.queue.close()
        self.queue.cancel_join_thread()


def _inline_exports(tasks: list[tuple[str, int]], space: str, batch: int, opset: int,
                    generator: str = DEFAULT_GENERATOR, torch_modules: bool = False) -> Iterator[tuple]:
    """In-process exports, for GPU providers and for callers who want no subprocess; with
    ``torch_modules`` each item carries the variant's torch module instead of its ONNX bytes."""
    gen = _generator(generator)
    make = gen.torch_function() if torch_modules else gen.function()
    for family, seed in tasks:
        try:
            info, data = make(family, seed, space=space, batch=batch, opset=opset)
        except Exception as err:
            yield ("error", family, seed, f"{type(err).__name__}: {err}")
        else:
            yield ("ok", family, seed, info, data)


def _folder_lock(root: Path) -> Any:
    """One build or retest per dataset folder; a second one is refused at once, told who holds it."""
    return file_lock(root / LOCK, f"dataset folder {root} (another build or retest)", error=ConfigError)


def _measure_stream(items: Iterable[tuple], *, provider: str, measure_core: int | None, space: str, batch: int,
                    on_label: Callable[[dict, Any], None], on_failure: Callable[[str, int, str, str], None],
                    deadline: float | None, measurer: Any = None, torch_timer: Callable[..., Any] | None = None) -> str:
    """Measure every exported item; call back per label / failure. Returns why it stopped. For
    torch-cuda the items carry torch modules, timed by ``torch_timer`` (default ``measure_torch_cuda``)."""
    if provider == "torch-cuda":
        if torch_timer is None:
            from nas_predictor.latency import measure_torch_cuda as torch_timer

        for item in items:
            if deadline is not None and time.monotonic() > deadline:
                return "time limit"
            if item[0] == "error":
                on_failure(item[1], item[2], "export", item[3])
                continue
            _, family, seed, info, module = item
            try:
                label = torch_timer(module, info["input_shape"], name=graph_path(family, space, seed))
            except (NasPredictorError, RuntimeError) as err:  # RuntimeError: torch's, e.g. CUDA out of memory
                on_failure(family, seed, "measure", f"{type(err).__name__}: {err}".splitlines()[0])
                continue
            on_label(info, label)
        return "done"

    from nas_predictor.latency import Measurer

    measurer = measurer or Measurer(provider, core=measure_core)
    metas: list[dict] = []

    def sources() -> Iterator[bytes]:
        for item in items:
            if item[0] == "error":
                on_failure(item[1], item[2], "export", item[3])
                continue
            metas.append(item[3])
            yield item[4]

    stream = measurer.measure_many(sources())
    try:
        for outcome in stream:
            info = metas[outcome.index]
            if outcome.error is not None:
                on_failure(info["family"], info["seed"], "measure", str(outcome.error))
            else:
                outcome.label.model = graph_path(info["family"], space, info["seed"])
                on_label(info, outcome.label)
            if deadline is not None and time.monotonic() > deadline:
                return "time limit"
    finally:
        stream.close()
    return "done"


def _software() -> dict[str, str]:
    from nas_predictor.latency.record import cpu_model, machine_id, software_versions

    return {**software_versions(), "cpu_model": cpu_model(), "machine": machine_id(), "python": sys.version.split()[0]}


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


# --- test-retest ---------------------------------------------------------------------------------------

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
