"""A search space defined in Python, without NNI: named choices plus a function that builds the network.

    from search_spaces.python_space import PythonSpace, ints

    space = PythonSpace(
        "my_cnn",
        choices={"depth": ints(1, 4), "width": (16, 32, 64), "kernel": (3, 5, 7), "act": ("relu", "hardswish")},
        build=lambda c: MyNet(**c),            # a config dict -> torch.nn.Module
        input_shape=(1, 3, 32, 32),
    )

An architecture's id is its config written ``depth=2|width=32|kernel=5|act=relu`` (choices in their
declared order), so it is stable across runs and readable in a history. Sampling draws each choice
uniformly, a mutation changes one choice to another of its values, and the neighbours are every such
change; TPE sees the choices as they are. ``valid`` (optional) rejects combinations the builder cannot
make. The graph a predictor reads is the built network's weight-free ONNX export (the core's
``network_graph``), cached by id; a disk cache is keyed by the space's fingerprint (its choices and the
builder's source), so editing the builder never reads stale graphs. Ids whose exports are the same
graph (a choice the export drops, such as a dropout rate) share an ``equivalence_key``, so a search
evaluates that network once.

Exporting costs 0.05-0.5 s a network, so the graph is first stitched from the fragments of modules seen in
earlier networks (``nas_predictor.onnx.fragments``: the same graph in a few milliseconds once warm, or a
refusal, and then the export). The first ``AUDITED_GRAPHS`` stitched graphs of a space are checked against
the export; a space where they differ is warned about and exported from then on.

A space registers itself under its name when it is made (``nas_predictor.spaces.register_space``), so
the latency sources and graph caches that look spaces up by name reach it like an installed one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import warnings
from collections import Counter, OrderedDict
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from nas_predictor.data.latency_graphs import network_graph
from nas_predictor.errors import ArchError, ConfigError
from nas_predictor.graph import ArchGraph
from nas_predictor.spaces import SearchSpace, register_space

Value = str | int | float | bool
SEPARATOR, ASSIGN = "|", "="


def ints(low: int, high: int, step: int = 1) -> tuple[int, ...]:
    """The integers low, low + step, ..., high (both ends included)."""
    if step < 1 or high < low:
        raise ConfigError(f"ints({low}, {high}, {step}): need low <= high and step >= 1")
    return tuple(range(low, high + 1, step))


def floats(low: float, high: float, num: int) -> tuple[float, ...]:
    """``num`` evenly spaced floats from low to high, rounded to 6 significant digits (stable ids)."""
    if num < 2 or not high > low:
        raise ConfigError(f"floats({low}, {high}, {num}): need low < high and at least 2 values")
    return tuple(float(f"{v:.6g}") for v in np.linspace(low, high, num))


# equivalence keys by space definition (cache_key) and id: a space made again with the same definition,
# as tests and notebooks do, need not export its networks again to tell them apart
_GRAPH_KEYS: dict[str, dict[str, str]] = {}


def graph_key(graph: ArchGraph) -> str:
    """A stable hash of a graph (its ops, edges, attributes, shapes and scalars): equal graphs, equal keys."""
    blob = json.dumps(graph.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def format_id(parts: Sequence[tuple[str, str]]) -> str:
    """A space's id from its (choice name, value text) pairs, in the space's order: ``name=value;...``."""
    return SEPARATOR.join(f"{label}{ASSIGN}{text}" for label, text in parts)


def _text(value: Value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


class PythonSpace(SearchSpace):
    """Choices + ``build(config) -> torch.nn.Module`` + input shape, as a full :class:`SearchSpace`."""

    #: its graphs are whole networks (nas_predictor.online reads them with whole-network tokens)
    whole_network = True
    #: stitched graphs checked against the export before a space's stitched graphs are trusted
    AUDITED_GRAPHS = 2

    def __init__(self, name: str, choices: Mapping[str, Sequence[Value]], build: Callable[[dict], Any],
                 input_shape: Sequence[int], valid: Callable[[dict], bool] | None = None) -> None:
        if not name or not all(ch.isalnum() or ch in "_-." for ch in name):
            raise ConfigError(f"a space name is letters, digits and _-. only, got {name!r}")
        if not choices:
            raise ConfigError(f"space {name!r} has no choices")
        self.name = name
        self.build = build
        self.valid = valid
        self._input_shape = tuple(int(d) for d in input_shape)
        if len(self._input_shape) < 2 or self._input_shape[0] != 1 or min(self._input_shape) < 1:
            raise ConfigError(f"space {name!r}: input_shape is a batch-1 shape such as (1, 3, 32, 32), "
                              f"got {tuple(input_shape)}")
        self._choices: dict[str, tuple[Value, ...]] = {}
        self._by_text: dict[str, dict[str, Value]] = {}
        #: stitch graphs from module fragments (False: always export; a failed audit sets it)
        self.stitch_graphs = True
        #: how this space's graphs were made: "stitched", "exported" and, per reason, "refused: ..."
        self.graph_paths: Counter = Counter()
        self._audited = 0
        for label, values in choices.items():
            self._choices[label] = self._check_choice(label, values)
            self._by_text[label] = {_text(v): v for v in self._choices[label]}
        register_space(self)

    def _check_choice(self, label: str, values: Sequence[Value]) -> tuple[Value, ...]:
        if not label or any(c in label for c in SEPARATOR + ASSIGN):
            raise ConfigError(f"space {self.name!r}: choice name {label!r} is empty or holds {SEPARATOR!r} or {ASSIGN!r}")
        values = tuple(values)
        if len(values) < 1:
            raise ConfigError(f"space {self.name!r}: choice {label!r} has no values")
        for v in values:
            if not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
                raise ConfigError(f"space {self.name!r}: choice {label!r} value {v!r} is not a string, integer, "
                                  "finite float or bool")
            if isinstance(v, str) and (not v or any(c in v for c in SEPARATOR + ASSIGN)):
                raise ConfigError(f"space {self.name!r}: choice {label!r} value {v!r} is empty or holds "
                                  f"{SEPARATOR!r} or {ASSIGN!r}")
        texts = [_text(v) for v in values]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"space {self.name!r}: choice {label!r} repeats a value: {list(values)}")
        return values

    # -- ids <-> configs ------------------------------------------------------------------------------
    def arch_of(self, config: Mapping[str, Value]) -> str:
        """The id of a config (every choice named once, each value one of its choice's)."""
        unknown = sorted(set(config) - set(self._choices))
        missing = [k for k in self._choices if k not in config]
        if unknown or missing:
            raise ArchError(f"space {self.name!r}: config {'has unknown choices ' + str(unknown) if unknown else ''}"
                            f"{' and ' if unknown and missing else ''}{'lacks ' + str(missing) if missing else ''}")
        parts = []
        for label, values in self._choices.items():
            value = config[label]
            text = _text(value.item() if isinstance(value, np.generic) else value)  # numpy scalars as Python's
            if text not in self._by_text[label]:
                raise ArchError(f"space {self.name!r}: {label}={config[label]!r} is not one of {list(values)}")
            parts.append((label, text))
        arch = format_id(parts)
        if self.valid is not None and not self.valid(dict(config)):
            raise ArchError(f"space {self.name!r}: {arch} is rejected by the space's valid()")
        return arch

    def config(self, arch: str) -> dict[str, Value]:
        """The config of an id (ArchError naming the first problem when it is not one of this space)."""
        if not isinstance(arch, str):
            raise ArchError(f"space {self.name!r}: an architecture is a string, got {type(arch).__name__}")
        config: dict[str, Value] = {}
        for part in arch.split(SEPARATOR):
            label, sep, text = part.partition(ASSIGN)
            if not sep or label not in self._choices:
                raise ArchError(f"space {self.name!r}: {part!r} in {arch!r} is not name=value of a choice "
                                f"({', '.join(self._choices)})")
            if label in config:
                raise ArchError(f"space {self.name!r}: {label!r} is given twice in {arch!r}")
            if text not in self._by_text[label]:
                raise ArchError(f"space {self.name!r}: {label}={text} is not one of {list(self._choices[label])}")
            config[label] = self._by_text[label][text]
        self.arch_of(config)  # every choice present, and valid()
        return config

    def canonical(self, arch: str) -> str:
        return self.arch_of(self.config(arch))

    # -- the protocol ---------------------------------------------------------------------------------
    def to_graph(self, arch: str) -> ArchGraph:
        key = self.canonical(arch)
        # network_graph keeps the space's graphs in this dict (by canonical id, the last NETWORK_CACHE_SIZE):
        # a stitched graph goes there, so it and every later caller of network_graph find it
        cache = self.__dict__.setdefault("_network_graphs", OrderedDict())
        if key not in cache:
            graph = self._stitched_graph(key)
            if graph is not None:
                cache[key] = graph
                if len(cache) > self.NETWORK_CACHE_SIZE:
                    cache.popitem(last=False)
        if key not in cache:
            self.graph_paths["exported"] += 1
        return network_graph(self, key)

    def graph_network(self, arch: str):
        """The network whose graph :meth:`to_graph` reads: :meth:`build_network`'s (a space may build one
        that is only read, faster: ``NNISpace``)."""
        return self.build_network(arch)

    def _stitched_graph(self, arch: str) -> ArchGraph | None:
        """The graph stitched from module fragments, or None where the stitching refuses the network (it
        is then exported). Audited: see the module docstring."""
        if not self.stitch_graphs:
            return None
        from nas_predictor.onnx.fragments import Unsupported, module_graph

        try:
            graph = module_graph(self.graph_network(arch), self.network_input_shape(arch))
        except Unsupported as exc:
            self.graph_paths[f"refused: {exc}"] += 1
            return None
        if self._audited < self.AUDITED_GRAPHS:
            exported = network_graph(self, arch)
            if graph_key(exported) != graph_key(graph):
                warnings.warn(f"space {self.name!r}: the graph stitched from module fragments differs from the export "
                              f"for {arch}; its graphs are exported from now on", RuntimeWarning, stacklevel=3)
                self.stitch_graphs = False
                self.graph_paths["exported"] += 1
                return None
            self._audited += 1
        self.graph_paths["stitched"] += 1
        return graph

    def equivalence_key(self, arch: str) -> str:
        """Ids whose networks export to the same graph (a choice the export drops, such as a dropout rate,
        or a layer the config leaves unused) share a key: the graph's hash, kept per id. A search
        evaluates one network once. ``equivalent_archs`` stays ``[arch]``: finding the others would
        export the whole space."""
        arch = self.canonical(arch)
        keys = self.__dict__.get("_graph_keys")
        if keys is None:
            keys = self.__dict__["_graph_keys"] = _GRAPH_KEYS.setdefault(self.cache_key, {})
        if arch not in keys:
            keys[arch] = graph_key(self.to_graph(arch))
        return keys[arch]

    def build_network(self, arch: str):
        model = self.build(self.config(arch))
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"space {self.name!r}: build() returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, ...]:
        return (batch, *self._input_shape[1:])

    def _draw(self, rng: np.random.Generator) -> dict[str, Value]:
        return {label: values[int(rng.integers(len(values)))] for label, values in self._choices.items()}

    def sample(self, rng: np.random.Generator) -> str:
        for _ in range(1000):  # valid() may reject some draws
            config = self._draw(rng)
            if self.valid is None or self.valid(config):
                return self.arch_of(config)
        raise ConfigError(f"space {self.name!r}: valid() rejected 1,000 random configs in a row")

    def neighbours(self, arch: str) -> list[str]:
        config = self.config(arch)
        out = []
        for label, values in self._choices.items():
            for v in values:
                if _text(v) != _text(config[label]):
                    changed = {**config, label: v}
                    if self.valid is None or self.valid(changed):
                        out.append(self.arch_of(changed))
        return out

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        near = self.neighbours(arch)
        if not near:
            raise ArchError(f"space {self.name!r}: {arch} has no neighbour (every choice has one value?)")
        return near[int(rng.integers(len(near)))]

    def choices(self) -> list[tuple[str, tuple]]:
        return list(self._choices.items())

    def from_choices(self, values: dict) -> str:
        return self.arch_of({label: values[label] for label in self._choices})

    def to_choices(self, arch: str) -> dict:
        """The config of ``arch``: its values are the declared ones themselves, in the declared order."""
        config = self.config(arch)
        return {label: config[label] for label in self._choices}

    def __len__(self) -> int:
        return math.prod(len(v) for v in self._choices.values())

    def __iter__(self) -> Iterator[str]:
        import itertools

        for combo in itertools.product(*self._choices.values()):
            config = dict(zip(self._choices, combo))
            if self.valid is None or self.valid(config):
                yield self.arch_of(config)

    @property
    def cache_key(self) -> str:
        """The name plus a fingerprint of the choices and of the builder's source (where Python has it)."""
        try:
            source = inspect.getsource(self.build)
        except (OSError, TypeError):  # a builtin or a function typed at a prompt: its qualified name only
            source = getattr(self.build, "__qualname__", repr(type(self.build)))
        blob = json.dumps({"choices": {k: [_text(v) for v in vs] for k, vs in self._choices.items()},
                           "input": self._input_shape, "build": source}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
