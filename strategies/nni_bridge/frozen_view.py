"""A sample's network for reading its graph only: the model space's own modules with its mutables resolved,
built in milliseconds instead of freezing a new network.

Why: NNI freezes a ``SimplifiedModelSpace`` (what a ``NasExperiment`` hands a strategy, and what
``strategies.nni_bridge.space.freezer`` does for a plain ``ModelSpace``) by running the model's ``__init__``
again under the sample. The hub's NAS-Bench-201 then builds every candidate op of every edge of its 15
cells (some 1,900 modules) to keep one in five: 40-90 ms a candidate, more than the rest of its graph.
A graph reads structure only, so :func:`graph_freezer` builds the frozen network the way NNI's raw format
does (``RawFormatModelSpace``: each mutable module replaced by its own ``freeze(sample)``: a LayerChoice by
the chosen candidate, a Repeat by its first blocks, an InputChoice by ``ChosenInputs``, a module with mutable
arguments re-created with their values), except that it does not deep-copy the supernet first: containers
on the way to a mutable are shallow copies, everything else is the model space's own module, shared.

So the view must never be trained or changed, only read (``nas_predictor.onnx.fragments.module_graph`` reads
it, in eval mode, and gives every flag back). That the raw and the re-created network are the same is NNI's
contract for well-written spaces; ``search_spaces.python_space`` checks it on a space's first graphs against
the export of the re-created network and stops using the view for a space where they differ.
"""

from __future__ import annotations

from typing import Any, Callable

from strategies.nni_bridge import require_nni

nni = require_nni()

from nni.mutable import Mutable, MutableAnnotation  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace, MutableModule  # noqa: E402
from nni.nas.space import RawFormatModelSpace, SimplifiedModelSpace  # noqa: E402
from torch import nn  # noqa: E402


def graph_freezer(model_space: Any) -> Callable[[dict], nn.Module] | None:
    """``sample -> network`` built from the supernet's modules (module docstring), or None for a model space
    that holds no supernet to read (a graph-format space: its own freeze only)."""
    if isinstance(model_space, RawFormatModelSpace):
        supernet = model_space.model_space
        return _Viewer(lambda: supernet).freeze
    if isinstance(model_space, SimplifiedModelSpace):
        recipe = model_space.model
        # the model as NNI would build it without a sample: every candidate kept (built once, on first use)
        return _Viewer(lambda: recipe.get()).freeze if hasattr(recipe, "get") else None
    if isinstance(model_space, ModelSpace):
        return _Viewer(lambda: model_space).freeze
    return None


class _Viewer:
    def __init__(self, supernet: Callable[[], nn.Module]) -> None:
        self._make = supernet
        self._supernet: nn.Module | None = None
        self._mutable_below: dict[int, bool] = {}  # the supernet never changes: whether a subtree needs freezing

    def freeze(self, sample: dict) -> nn.Module:
        """The view of ``sample``; NotImplementedError for a model space it cannot view (NNISpace then
        freezes as NNI does)."""
        if self._supernet is None:
            supernet = self._make()
            if _own_choices(supernet):
                # the model's __init__ reads the sample itself (ensure_frozen, a constraint-free add_mutable):
                # only running it again under the sample builds its network
                raise NotImplementedError(f"{type(supernet).__name__} registers choices of its own")
            self._supernet = supernet
        view, _ = self._view(self._supernet, sample, root=True)
        return view

    def _needs(self, module: nn.Module) -> bool:
        key = id(module)
        if key not in self._mutable_below:
            self._mutable_below[key] = _resolves(module) or any(
                self._needs(child) for child in module._modules.values() if child is not None)
        return self._mutable_below[key]

    def _view(self, module: nn.Module, sample: dict, root: bool = False) -> tuple[nn.Module, bool]:
        if not root and _resolves(module):
            return module.freeze(sample), True
        if not self._needs(module):
            return module, False
        replaced = {}
        for name, child in module._modules.items():
            if child is not None:
                new, changed = self._view(child, sample)
                if changed:
                    replaced[name] = new
        if not replaced:
            return module, False
        # NNI's recursive_freeze deep-copies the module here; a shallow copy with its own children suffices,
        # as the view is only read
        copy = type(module).__new__(type(module))
        copy.__dict__.update(module.__dict__)
        copy.__dict__["_modules"] = {**module._modules, **replaced}
        return copy, True


def _resolves(module: nn.Module) -> bool:
    """Whether a module is one NNI replaces when it freezes (a mutable with a ``freeze`` of its own); a
    MutableModule that only holds mutables (a NAS-Bench-201 cell) is walked into, as NNI's recursive freeze
    does, unless it registered choices of its own (its ``freeze`` then says what to do)."""
    if not isinstance(module, Mutable):
        return False
    if isinstance(module, MutableModule) and type(module).freeze is MutableModule.freeze:
        return _own_choices(module)
    return True


def _own_choices(module: nn.Module) -> bool:
    """Whether a module registered mutables other than constraints (which check a sample, not build from it)."""
    return any(not isinstance(m, MutableAnnotation) for m in module.__dict__.get("_mutables", ()))
