"""NNI samples <-> our arch strings, for the spaces both sides know.

An NNI sample is the dict a model space is frozen with: label -> chosen value. Labels may carry the
scope of the module that made them (the hub's ``NasBench201`` names its edges ``cell/0_1`` ...; a
``BenchmarkModelSpace`` just ``0_1``), so a mapping remembers that prefix to write samples back.

- NAS-Bench-201: label ``i_j`` is the op on the edge from cell node ``i`` to node ``j``; NNI calls the
  ops ``none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3``, the benchmark (and we)
  ``none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``. Our arch strings list the edges
  0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3, so the six labels in that order are ``0_1, 0_2, 1_2, 0_3, 1_3,
  2_3``. One to one: every sample is one arch string and back.
- NAS-Bench-101 (NNI's ``NasBench101Cell`` labels): ``num_nodes`` (2..7 vertices), ``op1..op5`` (the
  middle vertices' ops, names as ours), ``input1..input6`` (the vertices each of vertex 1..6 reads) and
  the constraint ``final`` NNI fills in with the pruned cell. A sample gives the cell's matrix and
  ops; its arch string is our canonical (pruned) one, so samples of one pruned cell share it. An arch
  string goes back to the sample of its pruned cell (the labels beyond its vertices set to a first
  value, which NNI ignores for a smaller cell).
- Any other model space (or one of these searched as whole networks): :class:`NetworkMapping`, whose
  ids are those of the space's ``search_spaces.nni_space.NNISpace`` (``label=value|...``), made by
  ``strategies.nni_bridge.space.nni_space``.

Pure dict code: it needs no NNI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

import numpy as np

from nas_predictor.errors import ArchError, ConfigError

#: NAS-Bench-201 edge labels in our arch-string order (source_target)
NB201_LABELS = ("0_1", "0_2", "1_2", "0_3", "1_3", "2_3")
#: NNI op name -> ours (NAS-Bench-201)
NB201_NNI_TO_OURS = {"none": "none", "skip_connect": "skip_connect", "conv_1x1": "nor_conv_1x1",
                     "conv_3x3": "nor_conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}
NB201_OURS_TO_NNI = {v: k for k, v in NB201_NNI_TO_OURS.items()}

NB101_MAX_NODES = 7
NB101_OP_LABELS = tuple(f"op{i}" for i in range(1, NB101_MAX_NODES - 1))
NB101_INPUT_LABELS = tuple(f"input{i}" for i in range(1, NB101_MAX_NODES))
NB101_LABELS = ("num_nodes", *NB101_OP_LABELS, *NB101_INPUT_LABELS)
NB101_CONSTRAINT_LABEL = "final"
#: what a label beyond a small cell's vertices is set to (NNI reads only the cell's own labels)
NB101_FILLER_OP = "conv3x3-bn-relu"


@lru_cache(maxsize=None)
def _space(name: str) -> Any:
    from nas_predictor.spaces import get_space

    return get_space(name)


def _split(label: str) -> tuple[str, str]:
    """'cell/0_1' -> ('cell/', '0_1')."""
    head, sep, tail = label.rpartition("/")
    return head + sep, tail


def _scoped(labels: Iterable[str], wanted: Iterable[str], optional: Iterable[str] = ()) -> str | None:
    """The one prefix under which ``labels`` are exactly ``wanted`` (plus any of ``optional``), or None."""
    prefixes, names = set(), set()
    for label in labels:
        prefix, name = _split(label)
        prefixes.add(prefix)
        names.add(name)
    if len(prefixes) != 1:
        return None
    wanted = set(wanted)
    if not wanted <= names or names - wanted - set(optional):
        return None
    return prefixes.pop()


@dataclass(frozen=True)
class SampleMapping:
    """How one NNI model space's samples map to arch strings of one of our spaces."""

    space_name: str  # "nasbench201" or "nasbench101"
    prefix: str = ""  # label scope, e.g. "cell/"

    @property
    def space(self) -> Any:
        """Our SearchSpace (one instance per name, shared: spaces cache their tables)."""
        return _space(self.space_name)

    def to_arch(self, sample: Mapping[str, Any]) -> str:
        if self.space_name == "nasbench201":
            return nb201_sample_to_arch(sample, self.prefix)
        return nb101_sample_to_arch(sample, self.prefix)

    def to_sample(self, arch: str) -> dict[str, Any]:
        if self.space_name == "nasbench201":
            return nb201_arch_to_sample(arch, self.prefix)
        return nb101_arch_to_sample(arch, self.prefix)


@dataclass(frozen=True)
class NetworkMapping:
    """A model space searched as whole networks: samples <-> ids of its ``NNISpace`` (which knows both)."""

    space: Any  # a search_spaces.nni_space.NNISpace

    @property
    def space_name(self) -> str:
        return self.space.name

    def to_arch(self, sample: Mapping[str, Any]) -> str:
        return self.space.to_arch(sample)

    def to_sample(self, arch: str) -> dict[str, Any]:
        return self.space.to_sample(arch)


def detect_mapping(labels: Iterable[str], values: Mapping[str, Iterable[Any]] | None = None) -> SampleMapping | None:
    """The mapping for a space with these labels (``values``: label -> its choices, checked when given),
    or None when they are no space we know."""
    labels = list(labels)
    prefix = _scoped(labels, NB201_LABELS)
    if prefix is not None:
        if values is None or all(label in values and set(values[label]) <= set(NB201_NNI_TO_OURS) for label in labels):
            return SampleMapping("nasbench201", prefix)
        return None
    prefix = _scoped(labels, NB101_LABELS, optional=(NB101_CONSTRAINT_LABEL,))
    if prefix is not None:
        return SampleMapping("nasbench101", prefix)
    return None


def mapping_for_space(model_space: Any) -> SampleMapping | None:
    """The mapping of an NNI model space (anything with ``simplify()``: a ``ModelSpace``, an executable
    or ``BenchmarkModelSpace``), or None when it is no space we know."""
    simplified = model_space.simplify()
    values = {label: list(mutable.values) for label, mutable in simplified.items() if hasattr(mutable, "values")}
    return detect_mapping(list(simplified), values)


def mapping_for_sample(sample: Mapping[str, Any]) -> SampleMapping | None:
    """The mapping a sample's labels imply (values checked for NAS-Bench-201), or None."""
    mapping = detect_mapping(list(sample))
    if mapping is not None and mapping.space_name == "nasbench201" and \
            not all(sample[k] in NB201_NNI_TO_OURS for k in sample):
        return None
    return mapping


# -- NAS-Bench-201 ---------------------------------------------------------------------------------
def _strip(sample: Mapping[str, Any], prefix: str | None, wanted: tuple[str, ...], optional=()) -> dict[str, Any]:
    if prefix is None:
        prefix = _scoped(sample, wanted, optional)
        if prefix is None:
            raise ArchError(f"not a sample of this space: labels {sorted(sample)}, expected "
                            f"{', '.join(wanted)} (under one common scope)")
    out = {}
    for label, value in sample.items():
        if not label.startswith(prefix):
            raise ArchError(f"label {label!r} is outside the scope {prefix!r} of this space")
        out[label[len(prefix):]] = value
    missing = [w for w in wanted if w not in out]
    if missing:
        raise ArchError(f"sample lacks {', '.join(prefix + m for m in missing)}: {dict(sample)}")
    return out


def nb201_sample_to_arch(sample: Mapping[str, Any], prefix: str | None = None) -> str:
    """``{'0_1': 'conv_3x3', ...}`` (any common scope, e.g. ``cell/``) -> our arch string."""
    from search_spaces.nasbench201 import format_arch

    ops = _strip(sample, prefix, NB201_LABELS)
    unknown = {k: v for k, v in ops.items() if k in NB201_LABELS and v not in NB201_NNI_TO_OURS}
    if unknown:
        raise ArchError(f"unknown NAS-Bench-201 op(s) {unknown}; NNI's ops are {', '.join(NB201_NNI_TO_OURS)}")
    return format_arch([NB201_NNI_TO_OURS[ops[label]] for label in NB201_LABELS])


def nb201_arch_to_sample(arch: str, prefix: str = "") -> dict[str, str]:
    """Our arch string -> the NNI sample (labels under ``prefix``, e.g. ``cell/`` for the hub space)."""
    from search_spaces.nasbench201 import parse_arch

    return {prefix + label: NB201_OURS_TO_NNI[op] for label, op in zip(NB201_LABELS, parse_arch(arch))}


# -- NAS-Bench-101 ---------------------------------------------------------------------------------
def nb101_sample_to_arch(sample: Mapping[str, Any], prefix: str | None = None) -> str:
    """An NNI NAS-Bench-101 sample -> our canonical (pruned) arch string; ArchError for a sample that is
    not a cell (no input-output path, over 9 edges once pruned)."""
    from nas_predictor.nb101_cell import canonical_arch, spec_to_arch

    values = _strip(sample, prefix, ("num_nodes",), optional=(*NB101_LABELS, NB101_CONSTRAINT_LABEL))
    try:
        n = int(values["num_nodes"])
    except (TypeError, ValueError):
        raise ArchError(f"num_nodes must be an integer, got {values['num_nodes']!r}") from None
    if not 2 <= n <= NB101_MAX_NODES:
        raise ArchError(f"num_nodes must be 2..{NB101_MAX_NODES}, got {n}")
    needed = [f"op{i}" for i in range(1, n - 1)] + [f"input{i}" for i in range(1, n)]
    missing = [label for label in needed if label not in values]
    if missing:
        raise ArchError(f"a {n}-vertex NAS-Bench-101 sample needs {', '.join(missing)}: {dict(sample)}")
    matrix = np.zeros((n, n), dtype=int)
    for i in range(1, n):
        for src in values[f"input{i}"]:
            src = int(src)
            if not 0 <= src < i:
                raise ArchError(f"input{i} reads vertex {src}; a vertex reads only earlier ones (0..{i - 1})")
            matrix[src, i] = 1
    ops = ["input", *(values[f"op{i}"] for i in range(1, n - 1)), "output"]
    return canonical_arch(spec_to_arch(matrix, ops))


def nb101_arch_to_sample(arch: str, prefix: str = "") -> dict[str, Any]:
    """Our arch string -> the NNI sample of its pruned cell (without ``final``, which NNI derives when
    it freezes the space)."""
    from nas_predictor.nb101_cell import arch_to_spec, canonical_arch

    matrix, ops = arch_to_spec(canonical_arch(arch))
    n = len(ops)
    sample: dict[str, Any] = {"num_nodes": n}
    for i in range(1, NB101_MAX_NODES - 1):
        sample[f"op{i}"] = ops[i] if i < n - 1 else NB101_FILLER_OP
    for i in range(1, NB101_MAX_NODES):
        sample[f"input{i}"] = [k for k in range(i) if matrix[k][i]] if i < n else []
    return {prefix + label: value for label, value in sample.items()}


def check_space(mapping: SampleMapping | None, what: Any) -> SampleMapping:
    if mapping is None:
        raise ConfigError(
            f"{type(what).__name__} is not a space this bridge maps to arch strings: it knows NAS-Bench-201 "
            f"(labels {', '.join(NB201_LABELS)}, e.g. nni.nas.hub.pytorch.NasBench201) and NAS-Bench-101 "
            f"(labels {', '.join(NB101_LABELS[:3])}..., e.g. BenchmarkModelSpace(NasBench101Benchmark()))"
        )
    return mapping
