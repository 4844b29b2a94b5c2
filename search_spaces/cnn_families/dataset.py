"""A latency dataset of the ten NNLQP families, measured on this machine: build, resume, retest, read.

Layout of a dataset folder (``nas-predictor dataset build --out DIR``)::

    manifest.json    what was built and how: families, space, provider, batch, opset, the protocol, the
                     machine and software of the labels, counts per family, failures, commands, timings
    labels.jsonl     one line per measured model: family, seed, space, graph path, variant config,
                     input shape, MACs, and the full LatencyLabel record (raw and robust statistics)
    failures.jsonl   one line per model that could not be exported or measured (stage, error)
    gt.txt           NNLQP's label format (GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId),
                     rewritten from labels.jsonl; ``load_nnlqp_labels`` reads it once the graphs exist
    retest.jsonl     (``dataset retest``) second measurements of a sample, for the test-retest figure;
                     ``dataset repair`` appends a retest clearly faster than its label to labels.jsonl
                     as that model's label (marked ``repaired``; the slowed label stays in the file)

No ONNX file is stored: every graph is regenerated from (family, seed, space, batch, opset) by
:func:`variant_onnx` (``dataset export`` writes the ``onnx/`` tree that ``gt.txt`` names).

Building: an exporter process pinned to one core generates and exports the variants ahead into a
small queue; this process, pinned to another core, measures them with one long-lived
:class:`~nas_predictor.latency.Measurer` (the reference model and its fast-state tracker stay warm).
The measurement doc found that a busy process on the other core does not disturb a one-thread
measurement, so the two overlap; that holds for the exporter, but heavy work there (a training run, a
second measurer) slows large memory-bound targets through the shared cache and memory bus while the
small reference stays fast, which the gate cannot see: keep other work off the machine during a build,
and ``dataset retest`` / ``dataset repair`` find and replace labels so slowed (docs/latency.md).
Seeds are taken round-robin over the families (seed 0 of every family, then seed 1, ...), so a build
stopped at any point holds a balanced dataset.

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

from typing import Any

# The folder format (names, reader, gt.txt writer) lives in nas_predictor, which reads datasets for
# training; they are re-exported here for the builder's users.
from nas_predictor.data.latency_dataset import (FAILURES, FORMAT, GT, LABELS, MANIFEST, RETEST, DatasetRecord,
                                                 LatencyDataset, graph_path, load_dataset, write_gt)
from nas_predictor.data.latency_dataset import FORMAT_VERSION as FORMAT_VERSION, LOCK as LOCK
from search_spaces.cnn_families import generate
# The builder's parts, one module per concern; re-exported so that `search_spaces.cnn_families.dataset`
# keeps every name it had (manifests name this module's variant_onnx as their generator).
from search_spaces.cnn_families.dataset_build import (BUILD_PROVIDERS, BuildReport, build_dataset, old_estimator_labels,
                                                      other_machine_labels)
from search_spaces.cnn_families.dataset_build import (IDENTITY_KEYS as IDENTITY_KEYS,
                                                      MACHINE_CHECK_ROUNDS as MACHINE_CHECK_ROUNDS,
                                                      MACHINE_CHECK_SECONDS as MACHINE_CHECK_SECONDS,
                                                      MACHINE_TOLERANCE as MACHINE_TOLERANCE)
from search_spaces.cnn_families.dataset_export import export_graphs
from search_spaces.cnn_families.dataset_generators import (GENERATOR, GENERATORS, Generator, build_order,
                                                           parse_families)
from search_spaces.cnn_families.dataset_generators import (DEFAULT_GENERATOR as DEFAULT_GENERATOR,
                                                           dataset_generator as dataset_generator)
from search_spaces.cnn_families.dataset_pipeline import QUEUE_AHEAD as QUEUE_AHEAD
from search_spaces.cnn_families.dataset_retest import (RepairReport, RetestSummary, first_labels,
                                                       repair_from_retest, retest_dataset, retest_sample,
                                                       summarize_retest)
from search_spaces.onnx_export import DEFAULT_OPSET, export_onnx

__all__ = ["BUILD_PROVIDERS", "BuildReport", "DatasetRecord", "FAILURES", "FORMAT", "GENERATOR", "GENERATORS",
           "Generator", "GT", "LABELS",
           "LatencyDataset", "MANIFEST", "RETEST", "RepairReport", "RetestSummary", "build_dataset", "build_order",
           "export_graphs",
           "first_labels", "graph_path", "load_dataset", "old_estimator_labels", "other_machine_labels",
           "parse_families", "repair_from_retest", "retest_dataset", "retest_sample", "summarize_retest",
           "variant_onnx", "variant_torch", "write_gt"]


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
