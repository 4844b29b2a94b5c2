"""Any NNI 3.0 model space as one of our search spaces (``search_spaces.nni_space.NNISpace``).

:func:`nni_space` reads the labels ``model_space.simplify()`` gives, as NNI's own strategies do:

- ``Categorical`` (``nni.choice``, ``LayerChoice``, a ``Repeat`` depth, the leaves of mutable widths,
  kernels and expressions): a choice of its values;
- ``CategoricalMultiple`` (``InputChoice``): a choice of the input(s) it picks;
- ``MutableAnnotation`` (NNI constraints): no choice of its own; the model space's ``contains`` checks it;
- ``Numerical`` (``nni.uniform``, ``nni.normal``, ...) or any other kind: a ConfigError naming the label,
  since a search over ids enumerates its choices.

A candidate's network is frozen the way NNI's engine freezes it: a ``SimplifiedModelSpace`` (what a
``NasExperiment`` hands a strategy by default) re-creates the model under the sample, any other
executable space runs its own ``freeze``; a plain ``ModelSpace`` is frozen as NNI's default format would
(re-created; the raw format's deep copy of a whole supernet costs ~1 s for the hub's NasBench201).
A sample NNI rejects while freezing (a ``ConstraintViolation`` in the model's ``__init__``) is an ArchError.
Graphs are read from a faster view of the frozen network (``strategies.nni_bridge.frozen_view``).
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any, Callable, Sequence

from strategies.nni_bridge import require_nni

nni = require_nni()

from nni.mutable import (  # noqa: E402
    Categorical, CategoricalMultiple, Mutable, MutableAnnotation, Numerical, SampleValidationError,
)
from nni.nas.space import ExecutableModelSpace, RawFormatModelSpace, SimplifiedModelSpace  # noqa: E402

from nas_predictor.errors import ArchError, ConfigError  # noqa: E402
from search_spaces.nni_space import Dimension, NNISpace  # noqa: E402


def nni_space(model_space: Any, input_shape: Sequence[int], name: str | None = None) -> NNISpace:
    """Our search space of an NNI model space (a ``ModelSpace``, or the ``ExecutableModelSpace`` NNI
    hands a strategy), its networks exported at ``input_shape`` (batch 1, e.g. ``(1, 3, 32, 32)``).

    ``name``: what the space is registered and its history identified under; default ``nni-<model
    class>`` (disk caches add a fingerprint of the model's definition, so two definitions never mix)."""
    what = model_class(model_space).__name__
    if input_shape is None:
        raise ConfigError(f"model space {what} is searched as whole networks: pass input_shape=(1, 3, H, W) so "
                          "candidates can be exported")
    try:
        _refuse_unbuildable(model_space)
        choices = dimensions(model_space)
    except ConfigError as exc:
        raise ConfigError(f"model space {what}: {exc}") from None
    from strategies.nni_bridge.frozen_view import graph_freezer

    return NNISpace(name or f"nni-{what}", choices, freezer(model_space), input_shape,
                    contains=model_space.contains, definition=definition(model_space),
                    graph_freeze=graph_freezer(model_space))


def dimensions(model_space: Any) -> list[Dimension]:
    """The sample's labels as choices (see the module docstring)."""
    out = []
    for label, mutable in model_space.simplify().items():
        if isinstance(mutable, MutableAnnotation):
            continue  # a constraint adds no label to the sample; contains() checks it
        if isinstance(mutable, Numerical):
            raise ConfigError(_numerical_error(label, mutable))
        if isinstance(mutable, CategoricalMultiple):
            out.append(Dimension.subset(label, mutable.values, mutable.n_chosen))
        elif isinstance(mutable, Categorical):
            out.append(Dimension.categorical(label, mutable.values))
        else:
            raise ConfigError(f"label {label!r} is a {type(mutable).__name__}, which a search over ids cannot "
                              "enumerate; use nni.choice (Categorical) or an InputChoice")
    return out


def _numerical_error(label: str, mutable: Any) -> str:
    # the nni shortcut that made it (nni.uniform, nni.qloguniform, nni.normal, ...)
    shape = "normal" if mutable.mu is not None and mutable.sigma is not None else "uniform"
    kind = ("q" if mutable.quantize is not None else "") + ("log" if mutable.log_distributed else "") + shape
    return (f"label {label!r} is a continuous nni.{kind} (Numerical): a search over ids cannot search a "
            f"continuous nni.{kind}; use nni.choice over a grid, e.g. nni.choice({label!r}, [...])")


def _refuse_unbuildable(model_space: Any) -> None:
    from nni.nas.benchmark import BenchmarkModelSpace

    if isinstance(model_space, BenchmarkModelSpace):
        raise ConfigError("a BenchmarkModelSpace holds no networks to export: search it through its benchmark's "
                          "mapping (whole_network=False) or hand over a model space")
    evaluator = getattr(model_space, "evaluator", None)
    if isinstance(evaluator, Mutable) and evaluator.simplify():
        # one network would then stand for several trainings: equivalent ids would merge them
        raise ConfigError(f"the evaluator has choices of its own ({', '.join(evaluator.simplify())}); a "
                          "whole-network search reads networks only: fix them in the evaluator")


def freezer(model_space: Any) -> Callable[[dict], Any]:
    """``sample -> torch.nn.Module``, the network NNI's engine would build for the sample."""
    if isinstance(model_space, SimplifiedModelSpace):
        space = model_space
    elif isinstance(model_space, ExecutableModelSpace):
        space = model_space  # raw or graph format: their own freeze
    elif getattr(model_space, "trace_copy", None) is not None:
        space = SimplifiedModelSpace.from_model(model_space)
    else:
        space = None

    def freeze(sample: dict) -> Any:
        try:
            frozen = (space or model_space).freeze(sample)
            return frozen.executable_model() if isinstance(frozen, ExecutableModelSpace) else frozen
        except SampleValidationError as exc:  # a ConstraintViolation raised while the model is built
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArchError(f"model space {model_class(model_space).__name__} rejects the sample {sample}: {why}") from None

    return freeze


def _model(model_space: Any) -> Any:
    """The model (or, simplified, its traced recipe) behind a model space; the space itself otherwise."""
    if isinstance(model_space, RawFormatModelSpace):
        return model_space.model_space
    if isinstance(model_space, SimplifiedModelSpace):
        return model_space.model
    return model_space


def model_class(model_space: Any) -> type:
    """The class of the model behind a model space (a graph-format space's own class)."""
    model = _model(model_space)
    symbol = getattr(model, "trace_symbol", None)
    return symbol if isinstance(symbol, type) else type(model)


def definition(model_space: Any) -> str:
    """What identifies the model space's definition for disk caches: the source of the file that defines
    its model class (a library's class: its name and NNI's version) and its init arguments."""
    cls = model_class(model_space)
    module = sys.modules.get(cls.__module__)
    try:
        source = inspect.getsource(module) if module is not None and not cls.__module__.startswith(("nni.", "torch.")) \
            else f"{cls.__module__}.{cls.__qualname__} nni {nni.__version__}"
    except (OSError, TypeError):  # typed at a prompt: its name only
        source = f"{cls.__module__}.{cls.__qualname__}"
    model = _model(model_space)
    args = f"{getattr(model, 'trace_args', ())!r} {getattr(model, 'trace_kwargs', {})!r}"
    return source + "\n" + re.sub(r" at 0x[0-9a-fA-F]+", "", args)  # object addresses change every run
