"""The export -> measure pipeline of builds and retests: the exporter process, the folder lock, the measuring loop."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from nas_predictor.data.latency_dataset import LOCK, graph_path
from nas_predictor.errors import ConfigError, NasPredictorError
from nas_predictor.io import file_lock
from search_spaces.cnn_families.dataset_generators import DEFAULT_GENERATOR, _generator

QUEUE_AHEAD = 6  # exported graphs waiting for the measurer (each 4-60 KB)


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
