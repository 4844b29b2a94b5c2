"""A torch module's whole-network ArchGraph without exporting it whole: stitched from per-module fragments,
each exported once and reused by every network that holds the same module at the same input shapes.

Why. A search over a Python-defined or NNI space reads every candidate as the weight-free ONNX export of its
network (:mod:`nas_predictor.onnx.export`) read back by ``onnx_to_graph``: 0.2-0.6 s a candidate, nearly all of
it the legacy exporter (tracing, one Python symbolic call per op, ONNX shape inference) and re-reading what it
wrote. The candidates of one space are made of the same few pieces (a conv of one kernel and width at one
resolution, the same cell wiring), so each distinct piece is exported once here and the graph assembled from
the pieces, by the graph rules of :mod:`nas_predictor.onnx.convert` itself (``op_records`` / ``assemble``).

How. :func:`module_graph` walks the network as the exporter's tracer does, one module at a time:

- every module gets a *signature*: its class, its own attribute values, its parameters' and buffers' shapes
  and its children's signatures. Modules with equal signatures called on equal input shapes trace to the same
  operators, so their fragment is looked up, not rebuilt (``FragmentCache``);
- a module without children (Conv2d, BatchNorm2d, ReLU, a user's leaf) is exported on its own with the
  project's export settings and read by the ONNX reader: its *piece*;
- a module with children is traced with every descendant it calls replaced by a stand-in: one custom op
  (``nas_predictor_fragments::call1`` / ``call``) that returns a zero tensor of the child's output shape
  without computing it. The trace of that *skeleton* (the module's own glue: residual adds, stacks, reshapes,
  input choices) is keyed by its operators, constants and types, and exported once per key with the stand-ins
  as ``Call`` nodes, so all NAS-Bench-201 cells of one stage share one exported skeleton whatever ops their
  edges hold (a child that returns its input, a skip, stays a stand-in too, where that cannot change what
  the exporter merges); the stand-ins are then replaced by the children's fragments. An ``nn.Sequential`` is
  its children in order, so its skeleton is written, not traced.

The graph of a warm NAS-Bench-201 candidate takes ~25 ms this way, against ~0.25 s for export and read
(benchmarks/nni_graph_speed.py).

Exactly the export. The legacy exporter's passes look across module boundaries, and the stitching accounts
for each, or refuses the network (:class:`Unsupported`; the caller then exports it whole):

- common subexpression elimination (on the traced ATen graph): two modules that compute the same thing from
  the same tensors (the ReLU that opens each of a NAS-Bench-201 cell's conv edges from one node) are one node
  in the export. A call is merged into an earlier one with the same fragment, the same input tensors and
  either no weights or the same module, when nothing writes those tensors in place, as the pass decides; any
  other two pieces whose first ATen nodes read the same tensor identically is a merge this module does not
  model: refused;
- dead code elimination: only what the output uses is kept, per ONNX node, as the exporter's DCE does;
- peephole fusions across a boundary (transposes into Gemm, consecutive transposes, expands into
  broadcasting ops, mm + add): a boundary tensor made by Transpose, Expand, MatMul, ... is refused;
- in-place writes to a tensor another piece reads, constant propagation into or out of a piece, parameters
  or tensor constants read as data (the exporter deduplicates equal ones by value), values the trace would
  turn into Python numbers (a TracerWarning), shapes only onnxruntime can size, hooks, shared modules or
  weights, keyword or non-tensor arguments and outputs: refused.

``tests/nas_predictor/onnx/test_fragments.py``, ``tests/search_spaces/test_python_space.py`` and
``tests/strategies/test_nni_frozen_view.py`` compare the stitched graph with the export's on many candidates of
the test spaces (Python, NNI with every kind of mutable, a mobile CNN of NNI mutables, the NNI hub's
NAS-Bench-201); ``search_spaces.python_space`` audits a space's first stitched graphs the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
import hashlib
import io
import itertools
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import onnx
import torch
from torch import nn

from nas_predictor.graph import ArchGraph
from nas_predictor.onnx.convert import OpRecord, assemble, op_records, resolver
from nas_predictor.onnx.export import DEFAULT_OPSET
from nas_predictor.onnx.reader import ALWAYS_PARAMETER, PARAMETER_SLOTS, load_light

DOMAIN = "nas_predictor_fragments"
STAND_IN = "Call"  # the ONNX op type of a stand-in in an exported skeleton
#: ONNX ops whose output crossing a module boundary a peephole pass could fuse with what reads it
#: (transposes into Gemm or each other, expands into broadcasting ops, mm + add into Gemm, sequences, RNN state)
BOUNDARY_SENSITIVE = frozenset({
    "Transpose", "Expand", "MatMul", "Cast", "LogSoftmax", "SequenceConstruct", "SplitToSequence",
    "ConcatFromSequence", "SequenceEmpty", "RNN", "LSTM", "GRU",
})
#: ATen/prim kinds with side effects; CSE and DCE leave them alone
SIDE_EFFECTS = frozenset({"prim::Print", "prim::RaiseException", "aten::warn", "prim::SetAttr", "prim::profile"})
#: tensors of at most this many elements held as module attributes are keyed by value, larger ones by identity
SMALL_TENSOR = 4096
_MODULE_INTERNALS = frozenset({
    "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "_backward_pre_hooks", "_backward_hooks",
    "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "forward",
    "training",  # module_graph reads every module in eval mode, as the export does
})
_PLAIN = frozenset({bool, int, str, type(None)})  # attribute values keyed as they are (floats: by repr)
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
          "_state_dict_pre_hooks")


class Unsupported(Exception):
    """The network holds something the stitching cannot prove equal to its export: export it whole."""


# -- the stand-in op --------------------------------------------------------------------------------------

_REGISTER = threading.Lock()
_registered = False


def _register_stand_in() -> None:
    """The ops a stand-in module calls (``call1`` for one input, ``call`` for several): a zero tensor of the
    child's output (cheap, and what the glue after it traces on), and their ONNX form, one ``Call`` node typed
    as the child's output. The shape and dtype come from the skeleton being traced (``_STANDING``), so the
    trace holds one constant per stand-in, its slot."""
    global _registered
    with _REGISTER:
        if _registered:
            return
        # a plain library op (not torch.library.custom_op, whose Python wrappers cost ~0.2 ms a call)
        library = torch.library.Library(DOMAIN, "DEF")
        library.define("call1(Tensor input, int slot) -> Tensor")
        library.define("call(Tensor[] inputs, int slot) -> Tensor")

        def zeros(slot: int) -> torch.Tensor:
            shape, dtype = _STANDING.frames[-1].output(slot)
            return torch.zeros(shape, dtype=dtype)

        library.impl("call1", lambda x, slot: zeros(slot), "CompositeExplicitAutograd")
        library.impl("call", lambda xs, slot: zeros(slot), "CompositeExplicitAutograd")
        _LIBRARIES.append(library)  # the definitions live as long as their Library object

        from torch.onnx._internal.torchscript_exporter import symbolic_helper

        def node(g, inputs, slot):
            out = g.op(f"{DOMAIN}::{STAND_IN}", *inputs, slot_i=slot)
            # typed as the child's output, so the glue after it converts as it would after the child
            shape, dtype = _STANDING.frames[-1].output(slot)
            out.setType(torch._C.TensorType.create_from_tensor(torch.empty(shape, dtype=dtype)))
            return out

        torch.onnx.register_custom_op_symbolic(
            f"{DOMAIN}::call1", symbolic_helper.parse_args("v", "i")(lambda g, x, slot: node(g, [x], slot)),
            DEFAULT_OPSET)
        torch.onnx.register_custom_op_symbolic(
            f"{DOMAIN}::call", symbolic_helper.parse_args("v", "i")(
                lambda g, xs, slot: node(g, symbolic_helper._unpack_list(xs), slot)), DEFAULT_OPSET)
        _registered = True


_LIBRARIES: list = []
_STANDING = threading.local()  # .frames: the skeletons being traced or exported in this thread, innermost last


def _stand_in_op(flat: list[torch.Tensor], slot: int) -> torch.Tensor:
    if len(flat) == 1:
        return torch.ops.nas_predictor_fragments.call1(flat[0], slot)
    return torch.ops.nas_predictor_fragments.call(flat, slot)


# -- what a piece is -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the exporter's cross-module passes need to know of a piece's traced ATen graph."""

    pure: bool  # no in-place writes, nothing nondeterministic or side-effecting (CSE may merge it)
    stateful: bool  # reads parameters or buffers (two instances are then different computations)
    # CSE keys of the nodes that read a tensor other modules may read: an input ("in", k) or, in a skeleton,
    # a child's output ("s", slot)
    entries: tuple[tuple, ...]
    writes: frozenset[int]  # inputs it writes in place
    out_alias: frozenset[int]  # inputs its output may be a view of
    uses_input: bool  # the output depends on an input (not a constant the exporter would fold)
    # inputs whose tensor object it returns through an op (Dropout in eval mode): the tracer then reads that
    # object's later uses as the op's output, a value CSE never equates with the input
    rebinds: frozenset[int] = frozenset()
    # a skeleton's stand-ins whose output or inputs share an alias set with a tensor its glue or a child writes
    # in place: CSE merges nothing reading them
    tainted_slots: frozenset[int] = frozenset()


@dataclass
class Piece:
    """The ONNX side of a leaf module or of a skeleton, in its own tensor names."""

    records: tuple[OpRecord, ...]
    alias: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    constants: dict[str, tuple[int, ...]]
    params: frozenset[str]
    inputs: tuple[str, ...]
    output: str
    slots: dict[str, int]  # stand-in output -> its slot (skeletons)
    template: "_Template | None" = None  # how to place it, made on first use (``_compile``)


@dataclass(frozen=True)
class _Template:
    """A piece with its tensors numbered for placing: own tensors 0..n-1, then the output, the inputs, "".
    Aliases (Identity) are resolved, so a placed piece needs no alias of its own."""

    output_alias: int | None  # the input the piece returns, when it returns one
    own: tuple[str, ...]
    shapes: tuple[tuple[int, tuple[int, ...]], ...]
    constants: tuple[tuple[int, tuple[int, ...]], ...]
    params: tuple[int, ...]
    records: tuple[tuple[OpRecord, tuple[int, ...], tuple[int, ...], int | None], ...]  # record, ins, outs, slot


def _compile(piece: Piece) -> _Template:
    local = resolver(piece.alias)
    outer = {piece.output, *piece.inputs, ""}
    own: dict[str, int] = {}
    for name in itertools.chain(piece.shapes, piece.constants, piece.params,
                                (n for r in piece.records for n in (*r.inputs, *r.outputs))):
        name = local(name) if name else name
        if name not in outer and name not in own:
            own[name] = len(own)
    index = dict(own)
    for k, name in enumerate(piece.inputs):
        index.setdefault(name, len(own) + 1 + k)
    # a piece whose output is one of its inputs (a Dropout in eval, an exported identity): that tensor
    output_alias = piece.inputs.index(piece.output) if piece.output in piece.inputs else None
    index.setdefault(piece.output, len(own))
    index[""] = len(own) + 1 + len(piece.inputs)

    def ref(name: str) -> int:
        return index[local(name) if name else name]

    template = _Template(
        output_alias,
        tuple(own),
        # what it sizes: its own tensors and its output (its inputs are sized where they are made)
        tuple((index[n], d) for n, d in piece.shapes.items() if n in own or n == piece.output),
        tuple((own[local(n)], d) for n, d in piece.constants.items()),
        tuple(own[local(p)] for p in piece.params),
        tuple((r, tuple(ref(n) for n in r.inputs), tuple(ref(n) for n in r.outputs),
               piece.slots.get(r.outputs[0]) if r.op == STAND_IN else None) for r in piece.records))
    piece.template = template
    return template


@dataclass
class Fragment:
    """A module called on given input shapes: its piece, and for each stand-in slot the child called there
    (its path below this module and its fragment). Holds no module, so networks can share it."""

    key: int
    piece: Piece | None  # None: the module returns its input ``alias_input`` itself
    facts: Facts  # of the whole call, its children's facts included
    children: dict[int, tuple[str, "Fragment"]] = field(default_factory=dict)
    alias_input: int | None = None
    shape: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float32


class FragmentCache:
    """Fragments and exported pieces, kept for the process (bounded): what makes the second network cheap.

    Keys hold no module: signatures are interned as small ints; an attribute keyed by identity keeps its
    object alive here, so its id is never reused while the key exists."""

    def __init__(self, opset: int = DEFAULT_OPSET, max_entries: int = 20_000) -> None:
        self.opset = opset
        self.max_entries = max_entries
        self.signatures: dict[tuple, int] = {}
        self.fragments: dict[tuple, Fragment | Unsupported] = {}
        self.pieces: dict[tuple, Piece | Unsupported] = {}
        self.held: dict[int, Any] = {}
        self.numbers = itertools.count()  # fragment keys: one per memoised fragment
        self.lock = threading.RLock()  # one network at a time: stand-ins patch the modules being traced

    def clear(self) -> None:
        self.signatures.clear()
        self.fragments.clear()
        self.pieces.clear()
        self.held.clear()

    def _trim(self) -> None:
        if len(self.fragments) + len(self.pieces) + len(self.signatures) > self.max_entries:
            self.clear()  # keys are cheap to rebuild; a search over a large space only re-exports pieces


DEFAULT_CACHE = FragmentCache()


def module_graph(module: nn.Module, input_shape: Sequence[int], cache: FragmentCache | None = None) -> ArchGraph:
    """The ArchGraph ``onnx_to_graph(export_onnx(module, input_shape))`` gives, stitched from cached fragments.

    Raises :class:`Unsupported` when the network holds something the stitching does not model (see the
    module docstring); the caller then exports it. The module is put in eval mode while it is read (as the
    export does) and given back as it was."""
    cache = cache or DEFAULT_CACHE
    _register_stand_in()
    shape = tuple(int(d) for d in input_shape)
    with cache.lock:
        cache._trim()
        # The cyclic garbage collector would run every few thousand of the tuples made here and walk the whole
        # heap (a supernet, torch) each time: 40 % of the time of a warm graph. What is made here is freed by
        # reference counting; anything cyclic is collected once collection resumes, as it was, afterwards.
        collecting = gc.isenabled()
        gc.disable()
        training = []
        try:
            build = _Build(cache, module)
            # eval mode as the export sets it (nn.Module.__setattr__ is slow, and a plain flag needs none of it)
            training = [m for m in build.signer.modules.values() if m.training]
            for m in training:
                object.__setattr__(m, "training", False)
            return build.graph(shape)
        finally:
            for m in training:
                object.__setattr__(m, "training", True)
            if collecting:
                gc.enable()


# -- signatures -------------------------------------------------------------------------------------------

class _Signer:
    """Signatures of a network's modules (interned ints), their paths, and the refusals no trace shows:
    hooks, modules or weights reachable twice, TorchScript modules."""

    def __init__(self, cache: FragmentCache, root: nn.Module) -> None:
        self.cache = cache
        self.sig: dict[int, int] = {}
        self.path: dict[int, str] = {}
        self.modules: dict[int, nn.Module] = {}
        self._own: dict[int, list[tuple[str, torch.Tensor]]] = {}  # a module's own parameters and persistent buffers
        self._named: dict[int, list[tuple[str, torch.Tensor]]] = {}
        self._tensors: dict[int, list[torch.Tensor]] = {}
        self._param_owner: dict[int, int] = {}
        for hooks in (nn.modules.module._global_forward_hooks, nn.modules.module._global_forward_pre_hooks,
                      nn.modules.module._global_backward_hooks, nn.modules.module._global_backward_pre_hooks):
            if hooks:
                raise Unsupported("global module hooks are registered")
        self._sign(root, "")

    def _sign(self, module: nn.Module, path: str) -> int:
        if id(module) in self.path:
            raise Unsupported(f"module {type(module).__name__} is registered twice ({self.path[id(module)]!r}, {path!r})")
        if isinstance(module, torch.jit.ScriptModule):
            raise Unsupported(f"{type(module).__name__} at {path!r} is a TorchScript module")
        self.path[id(module)] = path
        self.modules[id(module)] = module
        d = module.__dict__
        get = d.get
        if (get("_forward_hooks") or get("_forward_pre_hooks") or get("_backward_hooks") or get("_backward_pre_hooks")
                or get("_state_dict_hooks") or get("_state_dict_pre_hooks")):
            hooks = next(name for name in _HOOKS if get(name))
            raise Unsupported(f"{type(module).__name__} at {path!r} has {hooks.strip('_').replace('_', ' ')}")
        tensors, own = [], []
        transient = d["_non_persistent_buffers_set"]
        me = id(module)
        for kind in ("_parameters", "_buffers"):
            for name, t in d[kind].items():
                if t is None:
                    tensors.append((kind, name, None))
                    continue
                owner = self._param_owner.setdefault(id(t), me)
                if owner != me:
                    raise Unsupported(f"tensor {name!r} of {type(module).__name__} at {path!r} is shared with "
                                      f"the module at {self.path[owner]!r}")
                persistent = kind == "_parameters" or name not in transient
                if persistent:
                    own.append((name, t))
                tensors.append((kind, name, t.shape, t.dtype, t.requires_grad, persistent))
        children = tuple((name, None if child is None else self._sign(child, f"{path}.{name}" if path else name))
                         for name, child in d["_modules"].items())
        self._own[id(module)] = own
        # its own attributes, in a fixed order (most modules hold two dozen internals and a few of their own)
        state = tuple((k, type(d[k]), d[k]) if type(d[k]) in _PLAIN else (k, self._value(d[k], 0))
                      for k in sorted(d.keys() - _MODULE_INTERNALS))
        forward = d.get("forward")  # a forward set on the instance is part of what it computes
        key = (type(module), state, tuple(tensors), children, None if forward is None else self._held(forward))
        sig = self.cache.signatures.get(key)
        if sig is None:
            sig = self.cache.signatures[key] = len(self.cache.signatures)
        self.sig[id(module)] = sig
        return sig

    def _held(self, value: Any) -> tuple:
        self.cache.held.setdefault(id(value), value)
        return ("id", id(value))

    def _value(self, v: Any, depth: int) -> Any:
        """A hashable key equal for attribute values a forward cannot tell apart."""
        t = type(v)
        if v is None or t in (bool, int, str, bytes, complex):
            return (t, v)
        if t is float:
            return (t, repr(v))
        if t in (tuple, list) or isinstance(v, torch.Size):
            return (t, tuple(self._value(x, depth + 1) for x in v))
        if t is dict:
            return (t, tuple((self._value(k, depth + 1), self._value(x, depth + 1)) for k, x in v.items()))
        if t in (set, frozenset):
            return (t, tuple(sorted(repr(self._value(x, depth + 1)) for x in v)))
        if isinstance(v, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return (t, str(v))
        if isinstance(v, enum.Enum):
            return (t, v.name)
        if isinstance(v, torch.Tensor):
            if v.numel() <= SMALL_TENSOR and v.device.type == "cpu" and not v.requires_grad:
                return tensor_key(v)
            return self._held(v)
        if (depth < 3 and not isinstance(v, (nn.Module, type)) and not callable(v)
                and isinstance(getattr(v, "__dict__", None), dict)):
            # a plain record object (e.g. NNI's label scope): by its fields
            return (t, tuple((k, self._value(x, depth + 1)) for k, x in vars(v).items()))
        return self._held(v)

    def tensors(self, module: nn.Module) -> list[torch.Tensor]:
        """:meth:`state`'s tensors, without their names."""
        key = id(module)
        if key not in self._tensors:
            self._tensors[key] = [t for _, t in self._own[key]] + [
                t for child in module._modules.values() if child is not None for t in self.tensors(child)]
        return self._tensors[key]

    def state(self, module: nn.Module) -> list[tuple[str, torch.Tensor]]:
        """The state (parameters and buffers) the tracer makes graph inputs, in its order (the state_dict's: its
        own, then each child's), named below ``module``. Made when a module is traced, not for every module."""
        key = id(module)
        if key not in self._named:
            self._named[key] = self._own[key] + [
                (f"{name}.{inner}", t) for name, child in module._modules.items() if child is not None
                for inner, t in self.state(child)]
        return self._named[key]


# -- tracing and exporting pieces ------------------------------------------------------------------------------

def _flatten(args: tuple) -> tuple[list[torch.Tensor], tuple]:
    """The tensors of a call's arguments in the order the tracer and the exporter list them, and a key of their
    structure and types. Only tensors and lists/tuples of tensors are modelled."""
    flat, structure = [], []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            flat.append(arg)
            structure.append(("t", tuple(arg.shape), arg.dtype))
        elif isinstance(arg, (list, tuple)) and arg and all(isinstance(x, torch.Tensor) for x in arg):
            flat.extend(arg)
            structure.append((type(arg).__name__, tuple((tuple(x.shape), x.dtype) for x in arg)))
        else:
            raise Unsupported(f"an argument of type {type(arg).__name__} (only tensors and lists of tensors)")
    return flat, tuple(structure)


def _distinct(args: tuple) -> tuple[tuple, list[torch.Tensor]]:
    """``args`` with a tensor passed twice replaced by a copy the second time, so a module built on its own
    sees one input per argument (``_Stitch`` checks what identifying them would merge)."""
    seen: set[int] = set()

    def one(t: torch.Tensor) -> torch.Tensor:
        if id(t) in seen:
            return t.clone()
        seen.add(id(t))
        return t

    out = tuple(one(a) if isinstance(a, torch.Tensor) else type(a)(one(x) for x in a) for a in args)
    return out, _flatten(out)[0]


@contextlib.contextmanager
def _export_state(opset: int, in_export: bool) -> Iterator[None]:
    """The exporter's globals as ``torch.onnx.export`` sets them while it traces (a forward may ask
    ``torch.onnx.is_in_onnx_export()``), given back afterwards."""
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    saved = (GLOBALS.in_onnx_export, GLOBALS.export_onnx_opset_version, GLOBALS.operator_export_type)
    GLOBALS.in_onnx_export = in_export
    if in_export:
        GLOBALS.export_onnx_opset_version = opset
        GLOBALS.operator_export_type = torch.onnx.OperatorExportTypes.ONNX
    try:
        yield
    finally:
        GLOBALS.in_onnx_export, GLOBALS.export_onnx_opset_version, GLOBALS.operator_export_type = saved


@contextlib.contextmanager
def _outside_trace() -> Iterator[None]:
    """Suspend the tracer (a stand-in builds its child's fragment, which traces and exports on its own)."""
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    state = torch._C._get_tracing_state()
    saved = (GLOBALS.in_onnx_export, GLOBALS.export_onnx_opset_version, GLOBALS.operator_export_type)
    torch._C._set_tracing_state(None)
    GLOBALS.in_onnx_export = False
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)
        GLOBALS.in_onnx_export, GLOBALS.export_onnx_opset_version, GLOBALS.operator_export_type = saved


def _trace(module: nn.Module, args: tuple, state: list[torch.Tensor], opset: int) -> tuple[torch._C.Graph, Any]:
    """The ATen graph the exporter's tracer records for ``module(*args)``: what ``torch.jit._get_trace_graph``
    does for it (the call's tensors, then the module's ``state`` as graph inputs; not strict, not forced
    out-of-place) under the exporter's globals, without its per-input name lookup (it walks the caller's
    frames for every weight of the network; the names play no part here).
    A TracerWarning means Python read a tensor's value, which a stand-in's zeros would change: refused."""
    from torch.jit._trace import _flatten as flatten, _unflatten as unflatten

    in_vars, in_desc = flatten(args)
    outs = []

    def run(*tensors):
        outs.append(module(*unflatten(list(tensors[:len(in_vars)]), in_desc)))
        out_vars, _ = flatten(outs)
        return out_vars[0] if len(out_vars) == 1 else tuple(out_vars)

    with torch.no_grad(), _export_state(opset, True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        graph, _ = torch._C._create_graph_by_tracing(run, list(in_vars) + state, _no_name, False, False)
    out = outs[0]
    traced = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    if traced:
        raise Unsupported(f"{type(module).__name__}: {str(traced[0].message).splitlines()[0][:160]}")
    if not isinstance(out, torch.Tensor):
        raise Unsupported(f"{type(module).__name__} returns a {type(out).__name__}, not one tensor")
    return graph, out


def _no_name(value: torch.Tensor) -> str:
    return ""


def _export_piece(module: nn.Module, args: tuple, n_inputs: int, opset: int,
                  stand_ins: dict[int, tuple[tuple[int, ...], torch.dtype]]) -> Piece:
    """Export ``module(*args)`` with the project's settings (nas_predictor.onnx.export: legacy exporter, no
    constant folding, weight-free) and read it as op records, the stand-ins' outputs typed as given."""
    names = [f"in{i}" for i in range(n_inputs)]
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, export_params=False, opset_version=opset, do_constant_folding=False,
                          input_names=names, output_names=["out"], dynamo=False,
                          custom_opsets={DOMAIN: 1} if stand_ins else None)
    model = onnx.load_from_string(buffer.getvalue())
    slots = {}
    seeds = []
    for node in model.graph.node:
        if node.domain == DOMAIN:
            slot = next(a.i for a in node.attribute if a.name == "slot")
            slots[node.output[0]] = slot
            shape, dtype = stand_ins[slot]
            seeds.append(onnx.helper.make_tensor_value_info(
                node.output[0], onnx.helper.np_dtype_to_tensor_dtype(torch.empty((), dtype=dtype).numpy().dtype),
                list(shape)))
    graph_inputs = {i.name for i in model.graph.input}
    # an input the module never reads is no graph input (an InputChoice picks some of its inputs)
    loaded = load_light(model, None, [n for n in names if n in graph_inputs], type(module).__name__, seeds)
    if loaded.runtime_sized:
        raise Unsupported(f"{type(module).__name__}: shapes only onnxruntime can size (they may depend on values)")
    records, alias = op_records(loaded)
    return Piece(tuple(records), alias, loaded.shapes, loaded.constants, frozenset(loaded.parameter_inputs),
                 tuple(names), resolver(alias)(model.graph.output[0].name), slots)


def _identity_facts(index: int) -> Facts:
    """A module that returns its input ``index``."""
    return Facts(True, False, (), frozenset(), frozenset({index}), True)


def _check_piece(piece: Piece, what: str) -> None:
    """Refuse what the exporter would treat across pieces: weights or tensor constants read as data (it
    deduplicates equal initializers, and CSE merges equal tensor constants, so one graph Input may stand for
    several), and a piece whose output does not come from its inputs (constant-folded in the whole network)."""
    consts = set(piece.constants) | piece.params
    resolve = resolver(piece.alias)
    for record in piece.records:
        always = ALWAYS_PARAMETER.get(record.op, ())
        maybe = PARAMETER_SLOTS.get(record.op, ())
        for slot, raw in enumerate(record.inputs):
            name = resolve(raw) if raw else ""
            if not name or slot in always or (slot in maybe and name in consts):
                continue
            if name in piece.params:
                raise Unsupported(f"{what} reads a weight as data ({record.op} input {slot})")
            if name in piece.constants and piece.constants[name] != ():
                raise Unsupported(f"{what} reads a tensor constant as data ({record.op} input {slot})")


# -- ATen facts -----------------------------------------------------------------------------------------------

def tensor_key(t: torch.Tensor) -> tuple:
    """A tensor by value: dtype, shape and a digest of its bytes."""
    data = t.detach().cpu().contiguous().reshape(-1)
    raw = data.view(torch.uint8) if data.numel() and data.element_size() == 1 else \
        data.view({2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.int64}[data.element_size()]) \
        if data.numel() else data
    return ("tensor", str(t.dtype), tuple(t.shape), hashlib.sha1(raw.numpy().tobytes()).hexdigest())


def _attributes(node: torch._C.Node) -> tuple:
    out = []
    for name in node.attributeNames():
        kind = node.kindOf(name)
        if kind == "t":
            value = tensor_key(node.t(name))
        elif kind in ("i", "f", "s", "is", "fs", "ss"):
            value = getattr(node, kind)(name)
            value = tuple(value) if isinstance(value, list) else value
        elif kind == "ival":
            value = repr(node.ival(name))
        elif kind in ("ty", "tys"):
            value = str(getattr(node, kind)(name))
        else:
            raise Unsupported(f"ATen node {node.kind()} has a {kind!r} attribute")
        out.append((name, kind, value))
    return tuple(out)


_SCHEMAS: dict[str, Any] = {}


def _schema(node: torch._C.Node):
    text = node.schema()
    if text not in _SCHEMAS:
        _SCHEMAS[text] = None if text == "(no schema)" else torch._C.parse_schema(text)
    return _SCHEMAS[text]


@dataclass
class _Traced:
    """A traced graph read once: its key (what its export depends on), its facts, and whether the stand-ins
    of modules that return their input may stay stand-ins (``identities_ok``, see ``_read_trace``)."""

    key: tuple
    facts: Facts
    identities_ok: bool


_LISTS = ("prim::ListConstruct", "prim::TupleConstruct")
_STAND_IN_KINDS = (f"{DOMAIN}::call1", f"{DOMAIN}::call")
_CONTROL_FLOW = frozenset({"prim::If", "prim::Loop", "prim::CallFunction", "prim::CallMethod", "prim::fork",
                           "prim::Enter", "prim::Exit"})


def _read_trace(graph: torch._C.Graph, structure: tuple, n_data: int, state, stand_ins: dict[int, Fragment],
                ) -> _Traced:
    """Key and facts of a traced ATen graph whose first ``n_data`` inputs are the call's tensors (of types
    ``structure``: the tracer types graph inputs as plain ``Tensor``) and the rest the module's state
    (``state()``: names and tensors in the tracer's order, asked for only when the graph reads any).
    ``stand_ins``: each stand-in slot's child fragment.

    A child that returns its input (an identity, a skip) is kept as a stand-in, so the skeleton does not
    change with which edges are skips, and stands for its input tensor in the facts. The skeleton's export saw
    a fresh tensor there, so ``identities_ok`` is False when that could matter: two of its nodes become one
    CSE would merge, or something writes in place (alias analysis would see other writers)."""
    ref: dict[int, tuple] = {}  # value -> ("in", k) | ("p", name) | ("c", key) | ("n", index, position)
    real: dict[int, tuple] = {}  # the same, a returned input standing for itself
    data_of: dict[int, frozenset[int]] = {}  # value -> the data inputs it depends on
    alias_of: dict[int, frozenset[int]] = {}  # value -> the data inputs it may be a view of
    used_state = []
    named = None
    # state inputs are numbered, and named only when a node reads one (a network's skeleton has hundreds)
    state_index: dict[int, int] = {}
    for i, value in enumerate(graph.inputs()):
        u = value.unique()
        if i < n_data:
            ref[u] = real[u] = ("in", i)
            data_of[u] = alias_of[u] = frozenset({i})
        else:
            state_index[u] = i - n_data
    nodes_key, entries = [], []
    seen, seen_real = set(), set()
    collisions = 0
    writes: set[int] = set()
    # alias sets of all values (union-find), and the ones written in place: CSE merges no node reading one
    group: dict[int, int] = {}

    def find(v: int) -> int:
        while group.get(v, v) != v:
            group[v] = group.get(group[v], group[v])
            v = group[v]
        return v

    def join(v: int, others) -> None:
        for w in others:
            group[find(w)] = find(v)

    written: list[int] = []
    stand_in_values: dict[int, list[int]] = {}  # slot -> its output and its input values
    pure, stateful = True, False
    empty: frozenset[int] = frozenset()
    # (inputsAt/outputsAt: the pybind iterators of inputs() and outputs() cost ten times more)
    for index, node in enumerate(graph.nodes()):
        kind = node.kind()
        if kind in _CONTROL_FLOW:
            raise Unsupported(f"traced graph holds control flow ({kind})")
        ins = [node.inputsAt(i).unique() for i in range(node.inputsSize())]
        for v in ins:
            if v not in ref:  # a weight or buffer, first read here
                named = named or state()
                name, tensor = named[state_index[v]]
                ref[v] = real[v] = ("p", name)
                data_of[v] = alias_of[v] = frozenset()
                used_state.append((name, tuple(tensor.shape), tensor.dtype, tensor.requires_grad))
        in_refs = tuple(ref[v] for v in ins)
        attrs = _attributes(node) if node.hasAttributes() else ()
        nodes_key.append((kind, attrs, in_refs))
        if kind == "prim::Constant":
            value = node.outputsAt(0)
            out_ref = ("c", attrs, value.type().kind())
            u = value.unique()
            ref[u], real[u], data_of[u], alias_of[u] = out_ref, out_ref, empty, empty
            continue
        deps = frozenset().union(*(data_of[v] for v in ins)) if ins else empty
        real_refs = tuple(real[v] for v in ins)
        stateful |= any(r[0] == "p" for r in in_refs)
        if kind in _STAND_IN_KINDS:
            slot = node.inputsAt(1).toIValue()
            if kind == _STAND_IN_KINDS[0]:
                elements = [ins[0]]
            else:
                listed = node.inputsAt(0).node()
                elements = [listed.inputsAt(i).unique() for i in range(listed.inputsSize())] \
                    if listed.kind() == "prim::ListConstruct" else []
            child = stand_ins[slot]
            if any(not data_of[v] for v in elements):
                raise Unsupported("a module is called on a tensor that does not come from the input")
            pure &= child.facts.pure
            stateful |= child.facts.stateful
            for k in child.facts.writes:
                writes |= alias_of[elements[k]]
                written.append(elements[k])
            u = node.outputsAt(0).unique()
            join(u, [elements[k] for k in child.facts.out_alias])
            stand_in_values[slot] = [u, *elements]
            ref[u] = ("n", index, 0)
            # the tensor it stands for: a child's output (a tensor of the network, which other modules may read
            # too), or the input a child that returns its input returns
            real[u] = real[elements[child.alias_input]] if child.alias_input is not None else ("s", slot)
            data_of[u] = deps
            alias_of[u] = frozenset().union(*(alias_of[elements[k]] for k in child.facts.out_alias)) \
                if child.facts.out_alias else empty
            continue
        schema = _schema(node)
        node_pure = kind not in SIDE_EFFECTS and not node.isNondeterministic()
        aliased = empty
        if schema is not None:
            for position, arg in enumerate(schema.arguments):
                if arg.alias_info is not None and arg.alias_info.is_write and position < len(ins):
                    node_pure = False
                    writes |= alias_of[ins[position]]
                    written.append(ins[position])
            if any(r.alias_info is not None for r in schema.returns):
                aliased = frozenset().union(*(alias_of[v] for v in ins)) if ins else empty
                join(node.outputsAt(0).unique(), ins)
        elif kind.startswith("prim::"):  # containers and the like: may hold any of their inputs
            aliased = frozenset().union(*(alias_of[v] for v in ins)) if ins else empty
            join(node.outputsAt(0).unique(), ins)
        pure &= node_pure
        # a node of constants only is folded by constant propagation: it stands for its value
        constant = node_pure and not deps and all(r[0] == "c" for r in in_refs)
        for position in range(node.outputsSize()):
            u = node.outputsAt(position).unique()
            ref[u] = ("c", kind, attrs, in_refs, position) if constant else ("n", index, position)
            real[u] = ("c", kind, attrs, real_refs, position) if constant else ("n", index, position)
            data_of[u], alias_of[u] = deps, aliased
        if constant or not node_pure or kind in _LISTS:
            continue  # lists are mutable values: CSE merges neither them nor, through them, what reads them
        # two nodes the skeleton's export keeps apart that are one once a returned input stands for itself
        collisions += (kind, attrs, real_refs) in seen_real and (kind, attrs, in_refs) not in seen
        seen.add((kind, attrs, in_refs))
        seen_real.add((kind, attrs, real_refs))
        if any(r[0] in ("in", "s") for r in real_refs):  # reads a tensor another module may read
            entries.append((kind, attrs, real_refs))
    outputs = list(graph.outputs())
    if len(outputs) != 1:
        raise Unsupported("the traced module returns several values")
    out = outputs[0].unique()
    if out not in ref:
        raise Unsupported("the module returns one of its weights")
    outputs = tuple((slot, child.shape, child.dtype) for slot, child in sorted(stand_ins.items()))
    key = (structure, tuple(used_state), tuple(nodes_key), ref[out], outputs)
    identities = any(c.alias_input is not None for c in stand_ins.values())
    tainted = {find(v) for v in written}
    tainted_slots = frozenset(slot for slot, values in stand_in_values.items() if any(find(v) in tainted for v in values))
    facts = Facts(pure, stateful, tuple(entries), frozenset(writes), alias_of[out], bool(data_of[out]),
                  tainted_slots=tainted_slots)
    return _Traced(key, facts, not identities or (collisions == 0 and not writes and pure))


# -- building a network's fragments ----------------------------------------------------------------------------

class _Frame:
    """One skeleton being traced: the stand-in slots it hands out, and whether a child that returns its input
    is inlined (the trace then sees that tensor) or kept as a stand-in (see ``_read_trace``)."""

    def __init__(self, module: nn.Module, path: str, inline_identities: bool) -> None:
        self.module = module
        self.path = path
        self.inline_identities = inline_identities
        self.children: dict[int, tuple[str, Fragment]] = {}

    def output(self, slot: int) -> tuple[tuple[int, ...], torch.dtype]:
        fragment = self.children[slot][1]
        return fragment.shape, fragment.dtype

    def slot(self, child_path: str, fragment: Fragment) -> int:
        # one slot per call, so each stand-in output is one tensor of the network; two calls of one module
        # on the same tensors, which the exporter's CSE merges, are merged when stitched (_Stitch._merge)
        slot = len(self.children)
        self.children[slot] = (child_path[len(self.path) + 1:] if self.path else child_path, fragment)
        return slot


class _Build:
    def __init__(self, cache: FragmentCache, root: nn.Module) -> None:
        self.cache = cache
        self.root = root
        self.signer = _Signer(cache, root)
        self.frames: list[_Frame] = []

    # stand-ins replace the forward of every module below the root while the network is read
    @contextlib.contextmanager
    def _stand_ins(self) -> Iterator[None]:
        patched = []
        try:
            for module in self.signer.modules.values():
                if module is not self.root:
                    patched.append((module, module.__dict__.get("forward", _MISSING)))
                    module.__dict__["forward"] = self._stand_in(module)
            yield
        finally:
            for module, original in patched:
                if original is _MISSING:
                    module.__dict__.pop("forward", None)
                else:
                    module.__dict__["forward"] = original

    @contextlib.contextmanager
    def _own_forward(self, module: nn.Module) -> Iterator[None]:
        """Run ``module``'s real forward (its descendants keep their stand-ins)."""
        if module is self.root:
            yield
            return
        stand_in = module.__dict__.pop("forward")
        original = self._originals.get(id(module), _MISSING)
        if original is not _MISSING:
            module.__dict__["forward"] = original
        try:
            yield
        finally:
            module.__dict__["forward"] = stand_in

    def _stand_in(self, module: nn.Module):
        def forward(*args, **kwargs):
            if kwargs:
                raise Unsupported(f"{type(module).__name__} is called with keyword arguments")
            if not self.frames:
                raise Unsupported(f"{type(module).__name__} is called outside its parent's forward")
            with _outside_trace():
                flat, structure = _flatten(args)
                fragment = self._fragment(module, structure, lambda: _distinct(args))
            frame = self.frames[-1]
            if fragment.alias_input is not None and frame.inline_identities:
                return flat[fragment.alias_input]  # the module returns its input: the trace sees that tensor
            slot = frame.slot(self.signer.path[id(module)], fragment)
            return _stand_in_op(flat, slot)
        return forward

    def graph(self, input_shape: tuple[int, ...]) -> ArchGraph:
        self._originals = {k: m.__dict__["forward"] for k, m in self.signer.modules.items() if "forward" in m.__dict__}
        x = torch.zeros(input_shape)
        outer = getattr(_STANDING, "frames", None)
        _STANDING.frames = self.frames
        try:
            with self._stand_ins():
                top = self._fragment(self.root, (("t", input_shape, x.dtype),), lambda: ((x,), [x]))
        finally:
            _STANDING.frames = outer
        if top.piece is None:
            raise Unsupported("the network returns its input")
        return _Stitch(top, input_shape).graph()

    def _fragment(self, module: nn.Module, structure: tuple, make_args) -> Fragment:
        """The memoised fragment of ``module`` on inputs of ``structure`` (``make_args``: the call's arguments
        and their tensors, made only when the fragment must be built)."""
        key = (self.signer.sig[id(module)], structure, self.cache.opset)
        found = self.cache.fragments.get(key)
        if found is None:
            try:
                args, flat = make_args()
                if type(module) is nn.Sequential and len(flat) == 1:
                    found = self._chain(module, flat[0])
                else:
                    found = self._build(module, args, flat, key)
            except Unsupported as exc:
                found = exc
            except Exception as exc:  # noqa: BLE001 - a forward that fails fails its export too, which names it
                found = Unsupported(f"{type(module).__name__} fails on its own: {type(exc).__name__}: {exc}")
            self.cache.fragments[key] = found
        if isinstance(found, Unsupported):
            raise Unsupported(*found.args)
        return found

    def _chain(self, module: nn.Sequential, x: torch.Tensor) -> Fragment:
        """An ``nn.Sequential``'s fragment without tracing it: its forward is its children in order, so its
        skeleton is one stand-in after the other (what its export's trace would give: no op of its own, nothing
        for CSE to merge since each reads the one before), identity children left out."""
        shape, dtype = tuple(x.shape), x.dtype
        records, slots, children, shapes = [], {}, {}, {"in0": shape}
        current = "in0"
        alias: frozenset[int] = frozenset({0})  # the input the current tensor may be a view of
        writes: set[int] = set()
        pure, stateful, rebinds = True, False, True
        for name, child in module._modules.items():
            if child is None:
                continue
            structure = (("t", shape, dtype),)

            def make(s=shape, d=dtype):
                t = torch.zeros(s, dtype=d)  # what the stand-in before it returns
                return (t,), [t]

            child_fragment = self._fragment(child, structure, make)
            if child_fragment.alias_input is not None:
                continue
            facts = child_fragment.facts
            if 0 in facts.writes:
                writes |= alias
            alias = alias if 0 in facts.out_alias else frozenset()
            pure &= facts.pure
            stateful |= facts.stateful
            rebinds &= 0 in facts.rebinds
            slot = len(children)
            out = f"s{slot}"
            records.append(OpRecord(STAND_IN, out, (current,), (out,), {}, 0.0))
            slots[out] = slot
            children[slot] = (name, child_fragment)
            current, shape, dtype = out, child_fragment.shape, child_fragment.dtype
            shapes[out] = shape
        if not records:
            return Fragment(next(self.cache.numbers), None, _identity_facts(0), alias_input=0,
                            shape=shape, dtype=dtype)
        facts = Facts(pure, stateful, (), frozenset(writes), alias, True, frozenset({0}) if rebinds else frozenset())
        piece = Piece(tuple(records), {}, shapes, {}, frozenset(), ("in0",), current, slots)
        return Fragment(next(self.cache.numbers), piece, facts, children, None, shape, dtype)

    def _traced(self, module: nn.Module, args: tuple, n_inputs: int, structure: tuple,
                inline_identities: bool) -> tuple[_Frame, torch._C.Graph, torch.Tensor, _Traced | None]:
        frame = _Frame(module, self.signer.path[id(module)], inline_identities)
        self.frames.append(frame)
        try:
            with self._own_forward(module):
                graph, out = _trace(module, args, self.signer.tensors(module), self.cache.opset)
        finally:
            self.frames.pop()
        result = next(graph.outputs()).unique()
        if any(v.unique() == result for v in list(graph.inputs())[:n_inputs]):
            return frame, graph, out, None  # it returns an input
        stand_ins = {slot: child for slot, (_, child) in frame.children.items()}
        traced = _read_trace(graph, structure, n_inputs, lambda: self.signer.state(module), stand_ins)
        return frame, graph, out, traced

    def _build(self, module: nn.Module, args: tuple, flat: list[torch.Tensor], key: tuple) -> Fragment:
        frame, graph, out, traced = self._traced(module, args, len(flat), key[1], False)
        if traced is not None and not traced.identities_ok:
            frame, graph, out, traced = self._traced(module, args, len(flat), key[1], True)
        if traced is None:
            result = next(graph.outputs()).unique()
            index = next(i for i, v in enumerate(graph.inputs()) if v.unique() == result)
            return Fragment(next(self.cache.numbers), None, _identity_facts(index), alias_input=index,
                            shape=tuple(out.shape), dtype=out.dtype)
        what = type(module).__name__
        if not traced.facts.uses_input:
            raise Unsupported(f"{what}'s output does not depend on its input (the exporter folds it)")
        rebinds = frozenset(k for k, t in enumerate(flat) if out is t)
        facts = dataclasses.replace(traced.facts, rebinds=rebinds) if rebinds else traced.facts
        piece = self.cache.pieces.get(traced.key)
        if piece is None:
            try:
                stand_ins = {slot: (child.shape, child.dtype) for slot, (_, child) in frame.children.items()}
                # the export traces again: the same slots in the same order
                self.frames.append(_Frame(module, frame.path, frame.inline_identities))
                try:
                    with self._own_forward(module):
                        piece = _export_piece(module, args, len(flat), self.cache.opset, stand_ins)
                finally:
                    self.frames.pop()
                _check_piece(piece, what)
            except Unsupported as exc:
                piece = exc
            except Exception as exc:  # noqa: BLE001 - an export failure is the whole export's to report
                piece = Unsupported(f"{type(module).__name__} cannot be exported on its own: {exc}")
            self.cache.pieces[traced.key] = piece
        if isinstance(piece, Unsupported):
            raise Unsupported(*piece.args)
        if set(piece.slots.values()) - set(frame.children):
            raise Unsupported(f"{type(module).__name__}: its export calls children its trace did not")
        if any(not child.facts.pure or child.facts.rebinds
               for slot, (_, child) in frame.children.items() if slot not in piece.slots.values()):
            # the skeleton's DCE dropped the stand-in of a child that writes in place (the exporter keeps such a
            # node when what it writes is read later) or that returns its input tensor itself (the tracer reads
            # that tensor as the child's output from then on, used or not): its effect would be lost
            raise Unsupported(f"{type(module).__name__}: a child that writes in place or returns its input tensor "
                              "has a result nothing uses")
        children = {slot: frame.children[slot] for slot in sorted(set(piece.slots.values()))}
        return Fragment(next(self.cache.numbers), piece, facts, children, None, tuple(out.shape), out.dtype)


_MISSING = object()


# -- stitching -------------------------------------------------------------------------------------------------

@dataclass
class _Call:
    """One fragment placed in the network: the network's tensors it reads and makes, and where it sits."""

    fragment: Fragment
    path: str  # of its module below the network
    inputs: tuple[str, ...]
    output: str
    parent: "_Call | None"
    removed: bool = False
    slots: dict[int, str] = field(default_factory=dict)  # a skeleton's stand-in slot -> the tensor it made
    slot_inputs: dict[int, tuple[str, ...]] = field(default_factory=dict)  # ... and the tensors it read


_INPUT = "input"  # the network's input in a stitched graph


class _Stitch:
    """The network's graph from its fragment: every fragment placed with the network's tensor names (a skeleton's
    children where its stand-ins are, so the records come in the export's file order), the exporter's passes
    across modules applied or refused (module docstring), then :func:`nas_predictor.onnx.convert.assemble`."""

    def __init__(self, top: Fragment, input_shape: tuple[int, ...]) -> None:
        self.top = top
        self.input_shape = input_shape
        self.records: list[OpRecord] = []
        self.owner: list[_Call] = []
        self.alias: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.constants: dict[str, tuple[int, ...]] = {}
        self.params: set[str] = set()
        self.calls: list[_Call] = []
        self._ids = itertools.count()

    def graph(self) -> ArchGraph:
        data, out = _INPUT, "logits"
        self.shapes[data] = self.input_shape
        self._place(self.top, "", (data,), out, None)
        resolve = resolver(self.alias)
        self._check_writes(resolve)
        live, needed = self._live(resolve(out), resolve)
        self._merge(live, needed, resolve(out))
        resolve = resolver(self.alias)
        self._check_boundaries(live, resolve)
        removed = self._removed()
        records = [r for i, r in enumerate(self.records) if i in live and id(self.owner[i]) not in removed]
        graph, _ = assemble(records, self.alias, self.shapes, self.constants, self.params, [data],
                            int(self.input_shape[0]))
        return graph

    def _place(self, fragment: Fragment, path: str, inputs: tuple[str, ...], output: str,
               parent: _Call | None) -> None:
        piece = fragment.piece
        call = _Call(fragment, path, inputs, output, parent)
        self.calls.append(call)
        template = piece.template or _compile(piece)
        prefix = f"f{next(self._ids)}/"
        # the piece's tensor names here: its own (prefixed), its output, its inputs, and "" (an omitted input)
        table = [prefix + local for local in template.own]
        table.append(output)
        table.extend(inputs)
        table.append("")
        if template.output_alias is not None:
            self.alias[output] = inputs[template.output_alias]
        self.shapes.update((table[ref], dims) for ref, dims in template.shapes)
        self.constants.update((table[ref], dims) for ref, dims in template.constants)
        self.params.update(table[ref] for ref in template.params)
        for record, ins, outs, slot in template.records:
            names_in = tuple(table[r] for r in ins)
            if slot is not None:
                call.slots[slot] = table[outs[0]]
                call.slot_inputs[slot] = names_in
                child_path, child = fragment.children[slot]
                if child.piece is None:  # a module that returns its input
                    self.alias[table[outs[0]]] = names_in[child.alias_input]
                    continue
                full = f"{path}.{child_path}" if path and child_path else path or child_path
                self._place(child, full, names_in, table[outs[0]], call)
                continue
            self.owner.append(call)
            self.records.append(OpRecord(record.op, record.name, names_in, tuple(table[r] for r in outs),
                                         record.attrs, record.flops))

    def _check_writes(self, resolve) -> None:
        """A module that writes its input in place (``nn.ReLU(inplace=True)``) is stitched only where nothing
        else reads that tensor, dead or alive (the exporter redirects later readers to the written value, and
        keeps a write to a value read later even when its result is unused), where the tensor is no view of
        another (the write would reach that one too), and where the tensor is made right before the write (the
        exporter's in-place conversion may move nodes between the two: the file order, and so the graph's
        node order, would change). A module that returns its input tensor itself through an op (``rebinds``)
        likewise, where nothing but its own output's readers reads that tensor."""
        writers = [c for c in self.calls if c.fragment.facts.writes or c.fragment.facts.rebinds]
        if not writers:
            return
        made_by: dict[str, list[_Call]] = {}
        for call in self.calls:
            made_by.setdefault(resolve(call.output), []).append(call)
        for call in writers:
            facts = call.fragment.facts
            inside = {id(call)}  # the call and what is placed inside it (placed after it, parents first)
            for other in self.calls:
                if other.parent is not None and id(other.parent) in inside:
                    inside.add(id(other))
            around, up = set(), call.parent  # the calls it is placed inside
            while up is not None:
                around.add(id(up))
                up = up.parent

            def reads(name: str) -> str:  # resolved, but what the call returns stays its own tensor
                seen = set()
                while name in self.alias and name != call.output and name not in seen:
                    seen.add(name)
                    name = self.alias[name]
                return name

            for k in facts.writes | facts.rebinds:
                tensor = resolve(call.inputs[k])
                elsewhere = any(reads(n) == tensor for i, record in enumerate(self.records)
                                if id(self.owner[i]) not in inside for n in record.inputs if n) or any(
                    reads(n) == tensor for other in self.calls
                    if id(other) not in inside and id(other) not in around  # not its own, nor its parents'
                    for n in other.inputs)
                if elsewhere:
                    what = "writes in place" if k in facts.writes else "returns as its own output"
                    raise Unsupported(f"{type_name(call)} {what} a tensor other modules read")
                if k not in facts.writes:
                    continue
                made_at = [i for i, record in enumerate(self.records) if tensor in record.outputs]
                first = min((i for i, owner in enumerate(self.owner) if id(owner) in inside), default=None)
                if not made_at or first is None or any(
                        id(self.owner[i]) not in inside for i in range(made_at[-1] + 1, first)):
                    raise Unsupported(f"{type_name(call)} writes in place a tensor not made right before it")
                if tensor != _INPUT and (tensor not in made_by or any(
                        maker.fragment.facts.out_alias for maker in made_by[tensor] if id(maker) not in inside)):
                    # a view (the write reaches the tensor it views) or glue, whose views the facts do not follow
                    raise Unsupported(f"{type_name(call)} writes in place a tensor that may be a view of another")

    def _live(self, output: str, resolve) -> tuple[set[int], set[str]]:
        """Records the output uses (the exporter's dead code elimination, per ONNX node), and the tensors used."""
        needed = {output}
        live = set()
        for i in range(len(self.records) - 1, -1, -1):
            record = self.records[i]
            if any(o in needed for o in record.outputs):
                live.add(i)
                needed.update(resolve(n) for n in record.inputs if n)
        return live, needed

    def _merge(self, live: set[int], needed: set[str], output: str) -> None:
        """Common subexpression elimination across pieces, and the in-place writes it must respect (module
        docstring): calls merged where the exporter's CSE merges all their nodes; refused where it would merge
        some nodes of two calls, or of one call whose inputs turned out to be one tensor."""
        resolve = resolver(self.alias)
        live_calls = [c for c in self.calls if resolve(c.output) in needed]
        made_by: dict[str, list[_Call]] = {}
        for call in live_calls:
            made_by.setdefault(resolve(call.output), []).append(call)
        written = self._written(resolve)
        views_of_output = self._aliases_of(output, made_by, resolve)
        # pass 1, in file order: a call the exporter's CSE folds into an earlier one (every node of it) is merged
        merged: dict[tuple, _Call] = {}
        removed: set[int] = set()  # merged calls and what is placed inside them (placed after them)
        for call in live_calls:
            if call.parent is not None and id(call.parent) in removed:
                removed.add(id(call))
                continue
            if not call.fragment.facts.pure:
                continue
            ins = tuple(resolve(i) for i in call.inputs)
            key = (call.fragment.key, ins, call.path if call.fragment.facts.stateful else None)
            earlier = merged.setdefault(key, call)
            if earlier is not call:
                out_a, out_b = resolve(earlier.output), resolve(call.output)
                # CSE leaves nodes whose values something writes, and two values the output may be, apart
                if (not set(ins) & written and out_a not in written and out_b not in written
                        and not (out_a in views_of_output and out_b in views_of_output)):
                    call.removed = True
                    removed.add(id(call))
                    self.alias[call.output] = earlier.output
                    resolve = resolver(self.alias)
        # pass 2: any other node CSE would now merge (two calls', or one call's whose tensors became one) is refused
        entries: dict[tuple, _Call] = {}
        for call in live_calls:
            if id(call) in removed:
                continue
            own = set(call.fragment.facts.entries)
            bound = {(kind, attrs, self._bind(call, refs, resolve)) for kind, attrs, refs in own}
            if len(bound) < len(own):
                raise Unsupported(f"{type_name(call)} reads one tensor where its export saw several and treats "
                                  "them alike (CSE would merge nodes its export kept apart)")
            for key in bound:
                other = entries.setdefault(key, call)
                if other is not call:
                    raise Unsupported(f"{type_name(other)} and {type_name(call)} open with the same {key[0]} on one "
                                      "tensor (a merge of partial modules the stitching does not model)")

    def _removed(self) -> set[int]:
        """The calls merged away, with everything placed inside them (calls are placed parents first)."""
        removed: set[int] = set()
        for call in self.calls:
            if call.removed or (call.parent is not None and id(call.parent) in removed):
                removed.add(id(call))
        return removed

    def _written(self, resolve) -> set[str]:
        """Tensors in an alias set something writes in place (the exporter's CSE merges no node reading one):
        inputs written, a skeleton's tainted stand-ins' tensors, and the views of any of them."""
        tainted: set[str] = set()
        for call in self.calls:
            facts = call.fragment.facts
            tainted.update(resolve(call.inputs[k]) for k in facts.writes)
            for slot in facts.tainted_slots:
                if slot in call.slots:
                    tainted.add(resolve(call.slots[slot]))
                    tainted.update(resolve(n) for n in call.slot_inputs[slot] if n)
        if not tainted:
            return tainted
        grew = True
        while grew:  # a view of a tainted tensor, or a tensor a tainted one views, is in the same alias set
            grew = False
            for call in self.calls:
                for k in call.fragment.facts.out_alias:
                    pair = {resolve(call.inputs[k]), resolve(call.output)}
                    if pair & tainted and not pair <= tainted:
                        tainted |= pair
                        grew = True
        return tainted

    @staticmethod
    def _bind(call: _Call, refs: tuple, resolve) -> tuple:
        """A CSE key's references as the network's tensors and weights."""
        return tuple(("t", resolve(call.inputs[r[1]])) if r[0] == "in" else
                     ("t", resolve(call.slots[r[1]])) if r[0] == "s" else
                     ("p", f"{call.path}.{r[1]}" if call.path else r[1]) if r[0] == "p" else
                     ("n", id(call)) if r[0] == "n" else r for r in refs)

    @staticmethod
    def _aliases_of(tensor: str, made_by: dict[str, list[_Call]], resolve) -> set[str]:
        """Tensors the network's output may be a view of (CSE never merges two of them)."""
        seen, todo = set(), [tensor]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            for call in made_by.get(t, ()):
                todo.extend(resolve(call.inputs[k]) for k in call.fragment.facts.out_alias)
        return seen

    def _check_boundaries(self, live: set[int], resolve) -> None:
        made = {o: self.records[i].op for i in live for o in self.records[i].outputs}
        removed = self._removed()
        for call in self.calls:
            if id(call) in removed:
                continue
            # what the network returns is read by nothing: only its inputs are boundaries
            for tensor in (*call.inputs, call.output) if call.parent is not None else call.inputs:
                op = made.get(resolve(tensor))
                if op in BOUNDARY_SENSITIVE:
                    raise Unsupported(f"a {op} output crosses the boundary of {type_name(call)} (a peephole pass "
                                      "may fuse it with what reads it)")


def type_name(call: _Call) -> str:
    return f"the module at {call.path!r}" if call.path else "the network"
