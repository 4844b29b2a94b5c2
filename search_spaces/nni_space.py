"""The search space of any NNI 3.0 model space: its samples as readable ids, each one's network frozen
by NNI and read as a whole network (the weight-free ONNX export), like a :class:`PythonSpace`.

An NNI sample is ``{label: value}`` over the labels ``model_space.simplify()`` lists. Each label is a
:class:`Dimension`, a choice of the space:

- a ``Categorical`` (``nni.choice``, a ``LayerChoice``'s index or name, a ``Repeat`` depth, the leaves of
  mutable widths and kernels such as ``MutableConv2d(3, nni.choice("w", [16, 32]), k)`` or of expressions
  built from choices) as it is: ``width=32``;
- an ``InputChoice`` (a ``CategoricalMultiple``) of one input as the input it picks: ``skip=1``;
  of several as the picked values in declared order: ``mix=[0,2]``.

The space is then a :class:`PythonSpace` whose build freezes the model space at the sample: ids
``width=32|kernel=5|...``, sampling, one-step mutations, neighbours, TPE's choices, equivalence keys
(two samples that freeze to the same network, such as depths of blocks an InputChoice leaves unused,
are one network: a search evaluates it once) and the graph caches are PythonSpace's. ``valid`` is the
model space's own check (``contains``: its domains and NNI constraints), remembered per config.

The space imports no NNI (the core and the spaces do not depend on a search framework):
``strategies.nni_bridge.space.nni_space`` reads the mutables into dimensions and hands over NNI's
freeze and check as functions, and a faster freeze for reading graphs only (``graph_freeze``: the model
space's own modules with the sample applied, ``strategies.nni_bridge.frozen_view``; PythonSpace audits the
graphs it gives against the export of the frozen network).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from nas_predictor.errors import ArchError, ConfigError
from search_spaces.python_space import ASSIGN, SEPARATOR, PythonSpace, Value, _text, format_id

#: a subset is written [a,b]: its values' texts hold none of these
SUBSET_OPEN, SUBSET_CLOSE, SUBSET_SEP = "[", "]", ","
#: more values than this in one dimension (subsets of many inputs) is no space to enumerate
MAX_VALUES = 4096


def _plain(value: Any) -> bool:
    """Whether a sample value can stand in an id as it is (what PythonSpace accepts)."""
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return not isinstance(value, str) or (bool(value) and not any(c in value for c in SEPARATOR + ASSIGN))
    return isinstance(value, float) and math.isfinite(value)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same(a: Any, b: Any) -> bool:
    # 1 and True are equal in Python but not the same choice
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Dimension:
    """One label of the sample as a choice: ``values`` are what ids and samplers see, ``sample_values``
    what NNI's sample holds for each (same order). Make one with :meth:`categorical` or :meth:`subset`."""

    label: str
    values: tuple[Value, ...]
    sample_values: tuple[Any, ...]
    kind: str = "categorical"  # or "one" (one input of several), "subset"
    _choices: tuple[Any, ...] = field(default=(), repr=False)  # a subset's candidates

    @classmethod
    def categorical(cls, label: str, values: Iterable[Any]) -> "Dimension":
        """A choice of one value (its sample holds the value)."""
        values = tuple(_python(v) for v in values)
        return cls(label, _shown(label, values), values)

    @classmethod
    def subset(cls, label: str, values: Iterable[Any], n_chosen: int | None) -> "Dimension":
        """A choice of ``n_chosen`` of ``values`` (any number when None); its sample holds the list of
        chosen values. One of several is shown as the value it picks, more as ``[a,b]``."""
        values = tuple(_python(v) for v in values)
        if n_chosen == 1:
            return cls(label, _shown(label, values), tuple([v] for v in values), "one", values)
        sizes = range(len(values) + 1) if n_chosen is None else [n_chosen]
        count = sum(math.comb(len(values), r) for r in sizes)
        if count > MAX_VALUES:
            raise ConfigError(f"choice {label!r} picks {'any number' if n_chosen is None else n_chosen} of "
                              f"{len(values)} values: {count} subsets, more than the {MAX_VALUES} a search enumerates")
        texts = [_text(v) for v in _shown(label, values)]
        bad = [t for t in texts if any(c in t for c in SUBSET_OPEN + SUBSET_CLOSE + SUBSET_SEP)]
        if bad:
            raise ConfigError(f"choice {label!r}: value(s) {bad} hold one of {SUBSET_OPEN + SUBSET_CLOSE + SUBSET_SEP!r}, "
                              "which the id of a subset uses")
        combos = [c for r in sizes for c in itertools.combinations(range(len(values)), r)]
        shown = tuple(SUBSET_OPEN + SUBSET_SEP.join(texts[i] for i in c) + SUBSET_CLOSE for c in combos)
        return cls(label, shown, tuple([values[i] for i in c] for c in combos), "subset", values)

    def sample_value(self, value: Value) -> Any:
        """The NNI sample's value for one of :attr:`values` (a fresh list for a subset)."""
        for shown, sampled in zip(self.values, self.sample_values):
            if _same(shown, value):
                return list(sampled) if isinstance(sampled, list) else sampled
        raise ArchError(f"{self.label}={value!r} is not one of {list(self.values)}")

    def value_of(self, sampled: Any) -> Value:
        """The value of an NNI sample's entry (a subset's picks in any order)."""
        if self.kind == "categorical":
            for shown, candidate in zip(self.values, self.sample_values):
                if _same(candidate, _python(sampled)):
                    return shown
        elif isinstance(sampled, (list, tuple)):
            picked = [next((i for i, c in enumerate(self._choices) if _same(c, _python(s))), None) for s in sampled]
            if None not in picked and len(set(picked)) == len(picked):
                target = [self._choices[i] for i in sorted(picked)]
                for shown, candidate in zip(self.values, self.sample_values):
                    if candidate == target:
                        return shown
        raise ArchError(f"{self.label}={sampled!r} is not a value of this choice ({list(self.sample_values)})")


def _shown(label: str, values: tuple) -> tuple[Value, ...]:
    """Values as ids show them: plain ones as they are, others (tuples, None, ...) as their repr."""
    if not values:
        raise ConfigError(f"choice {label!r} has no values")
    if all(_plain(v) for v in values):
        return values
    shown = tuple(repr(v) for v in values)
    if len(set(shown)) != len(shown) or any(not _plain(s) for s in shown):
        raise ConfigError(f"choice {label!r}: its values {list(values)} cannot be written in an id (their reprs "
                          f"repeat or hold {SEPARATOR!r} or {ASSIGN!r}); use strings, numbers or bools")
    return shown


def sample_id(dimensions: Sequence[Dimension], sample: Mapping[str, Any]) -> str:
    """The id an NNI sample has in the :class:`NNISpace` of these dimensions, without that space (no input
    shape, nothing registered; the model space's own constraints are not checked): what a training
    function inside an NNI trial needs to name its network (``strategies.nni_bridge.current_arch``)."""
    labels = [d.label for d in dimensions]
    if sorted(sample) != sorted(labels):
        raise ArchError(f"the sample {dict(sample)} does not have the labels of its space ({', '.join(labels)})")
    return format_id([(d.label, _text(d.value_of(sample[d.label]))) for d in dimensions])


class NNISpace(PythonSpace):
    """An NNI model space as a :class:`PythonSpace` (see the module docstring).

    Parameters
    ----------
    name
        The space's name (registered under it; disk caches add a fingerprint of ``definition``).
    dimensions
        The sample's labels as choices, in the model space's order.
    freeze
        ``sample -> torch.nn.Module``: NNI's frozen network of a sample.
    input_shape
        The batch-1 input shape the networks are exported at, e.g. ``(1, 3, 32, 32)``.
    contains
        ``sample -> bool``: the model space's own check (domains and constraints); None when every
        combination of the dimensions is a network.
    definition
        Text that changes when the model space's definition does (its source, its arguments): the
        graph caches on disk are keyed by it.
    graph_freeze
        ``sample -> torch.nn.Module``: a network computing what ``freeze``'s does, made faster and only read
        (its graph); None: ``freeze``. It raises NotImplementedError for a space it cannot make networks of.
    """

    def __init__(self, name: str, dimensions: Sequence[Dimension], freeze: Callable[[dict], Any],
                 input_shape: Sequence[int], contains: Callable[[dict], bool] | None = None,
                 definition: str = "", graph_freeze: Callable[[dict], Any] | None = None) -> None:
        self.dimensions = {d.label: d for d in dimensions}
        if len(self.dimensions) != len(dimensions):
            raise ConfigError(f"space {name!r}: a label is given twice in {[d.label for d in dimensions]}")
        self.freeze = freeze
        self.graph_freeze = graph_freeze
        self.contains = contains
        self.definition = definition
        self._verdicts: dict[tuple, bool] = {}  # contains() per config: neighbours() asks it often
        super().__init__(name, {d.label: d.values for d in dimensions}, self._build, input_shape,
                         valid=None if contains is None else self._valid)

    # -- samples <-> ids ------------------------------------------------------------------------------
    def sample_of(self, config: Mapping[str, Value]) -> dict[str, Any]:
        return {label: dim.sample_value(config[label]) for label, dim in self.dimensions.items()}

    def to_sample(self, arch: str) -> dict[str, Any]:
        """The NNI sample of an id (what ``model_space.freeze`` takes)."""
        return self.sample_of(self.config(arch))

    def to_arch(self, sample: Mapping[str, Any]) -> str:
        """The id of an NNI sample (every label of the space, no other)."""
        unknown = sorted(set(sample) - set(self.dimensions))
        missing = [label for label in self.dimensions if label not in sample]
        if unknown or missing:
            raise ArchError(f"space {self.name!r}: the sample {dict(sample)} "
                            f"{'has labels ' + str(unknown) + ' it does not know' if unknown else ''}"
                            f"{' and ' if unknown and missing else ''}{'lacks ' + str(missing) if missing else ''}")
        try:
            return self.arch_of({label: dim.value_of(sample[label]) for label, dim in self.dimensions.items()})
        except ArchError as exc:
            raise ArchError(f"space {self.name!r}: {exc}") from None

    # -- what PythonSpace calls -----------------------------------------------------------------------
    def _valid(self, config: dict) -> bool:
        key = tuple(_text(_python(config[label])) for label in self.dimensions)
        if key not in self._verdicts:
            self._verdicts[key] = bool(self.contains(self.sample_of(config)))
        return self._verdicts[key]

    def _build(self, config: dict) -> Any:
        return self.freeze(self.sample_of(config))

    def graph_network(self, arch: str) -> Any:
        """``graph_freeze``'s network of ``arch`` (NNI's own freeze where there is none, or where it fails:
        e.g. a module that registered mutables without a ``freeze``)."""
        if self.graph_freeze is not None:
            try:
                return self.graph_freeze(self.to_sample(arch))
            except ArchError:
                raise
            except NotImplementedError:
                self.graph_freeze = None  # a space it does not apply to
            except Exception as exc:  # noqa: BLE001 - NNI raises what its modules raise; freeze() is the reference
                warnings.warn(f"space {self.name!r}: the fast freeze for graphs failed ({type(exc).__name__}: "
                              f"{exc}); NNI's freeze is used from now on", RuntimeWarning, stacklevel=2)
                self.graph_freeze = None
        return self.build_network(arch)

    @property
    def cache_key(self) -> str:
        """The name plus a fingerprint of the choices, the input shape and the model space's definition."""
        blob = json.dumps({"choices": {k: [_text(v) for v in d.values] for k, d in self.dimensions.items()},
                           "input": self._input_shape, "definition": self.definition}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
