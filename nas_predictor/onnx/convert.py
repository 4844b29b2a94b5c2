"""ONNX model -> ArchGraph (the reference's graph rules, spec 1.4 step 3, with our fixes).

- One node per op output tensor (a Split with three outputs gives three nodes, each fed by the op's
  inputs); ``Identity`` is skipped (its consumers read its input) and ``Constant`` makes no node.
- Parameter inputs are not edges: Conv/ConvTranspose bias and Gemm C always; Conv weight, Gemm B,
  normalisation scales/statistics, shape / axes / pads operands, ... when they are known constants
  (reader.PARAMETER_SLOTS). Every other input is an edge.
- Graph inputs and constant tensors that feed a data slot become ``Input`` nodes (the network
  input, constant operands of Add/Mul/MatMul, ...); op nodes left without inputs are dropped, as in
  the reference (they compute constants).
- Nodes are topologically ordered (stable in file order); shapes come from onnx shape inference.
- Global scalars: batch_size, flops, params (the constant tensors each op reads, counted per use as the
  reference does: exporters merge equal tensors, e.g. a fresh BatchNorm's mean with its bias), memory_access
  (elements read and written by every op, plus the params), all for the whole batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import onnx

from nas_predictor.errors import OnnxError
from nas_predictor.graph import ArchGraph
from nas_predictor.onnx.attributes import canonical_attributes
from nas_predictor.onnx.costs import node_flops, numel
from nas_predictor.onnx.reader import ALWAYS_PARAMETER, PARAMETER_SLOTS, LoadedModel, load_light, read_light

SKIPPED_OPS = ("Identity", "Constant")
INPUT_OP = "Input"


def onnx_to_graph(
    source: str | os.PathLike | bytes | onnx.ModelProto, batch_size: int | None = None,
    data_inputs: Sequence[str] | None = None,
) -> ArchGraph:
    """Read an ONNX model (path, bytes or ModelProto) into an ArchGraph.

    ``batch_size`` sets dim 0 of the data inputs. A batch other than the file's own is accepted only
    where the result is verifiably right (``check_rebatched``): exporters often write the export batch
    into Reshape constants, and such a graph re-sized to another batch computes something else.
    ``data_inputs`` names the real inputs when a weight-free file's parameter inputs cannot be told
    apart from them by their use and names (see reader.parameter_inputs).
    """
    light, name = read_light(source)  # read and parse the file once, weights' values dropped, for both batches
    if batch_size is None:
        return graph_from_loaded(load_light(light, None, data_inputs, name))
    own = graph_from_loaded(load_light(onnx.ModelProto.FromString(light.SerializeToString()), None, data_inputs, name))
    if batch_size == own.scalars["batch_size"]:
        return own
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OnnxError(f"batch size must be a positive integer, got {batch_size!r}")
    old = int(own.scalars["batch_size"])
    advice = f"export the model at batch {batch_size} (or with a dynamic batch axis) and give that file"
    try:
        moved, names = _graph_and_names(load_light(light, batch_size, data_inputs, name))
    except OnnxError as err:
        raise OnnxError(f"{name}: cannot be re-batched from {old} to {batch_size} ({_after_name(err, name)}); "
                        f"{advice}") from None
    problem = check_rebatched(own, moved, names)
    if problem:
        raise OnnxError(f"{name}: cannot be re-batched from {old} to {batch_size}: {problem}; {advice}")
    return moved


def _after_name(err: OnnxError, name: str) -> str:
    text = str(err)
    return text[len(name) + 2:] if text.startswith(name + ": ") else text


def check_rebatched(own: ArchGraph, moved: ArchGraph, names: Sequence[str] | None = None) -> str | None:
    """Why ``moved`` (the same network sized at another batch) is not ``own`` at that batch, or None.

    Right means: the same nodes and edges; every tensor that follows the input has factor times its
    elements, one dim scaled by the factor and the others unchanged, and factor times its FLOPs
    (inference is per sample); any other tensor either stays as it was or (a class token expanded to
    the input's batch) scales the same way."""
    factor = moved.scalars["batch_size"] / own.scalars["batch_size"]
    if own.ops != moved.ops or own.edges != moved.edges:
        return "the graph changes with the batch size"
    for i, (a, b, attrs, moved_attrs) in enumerate(zip(own.shapes, moved.shapes, own.attrs, moved.attrs)):
        where = f"{own.ops[i]} node {names[i]!r}" if names else f"node {i} ({own.ops[i]})"
        changed = [d for d, (x, y) in enumerate(zip(a, b)) if x != y]
        scaled = len(a) == len(b) and len(changed) == 1 and b[changed[0]] == a[changed[0]] * factor
        if len(a) != len(b) or changed and not scaled or attrs.get("batched") and len(a) and not scaled:
            return (f"{where} gives shape {tuple(b)} at batch {int(moved.scalars['batch_size'])} against "
                    f"{tuple(a)} at batch {int(own.scalars['batch_size'])}, not {factor:g}x along one dim "
                    f"(a shape constant in the file holds the batch)")
        expected = attrs.get("flops", 0.0) * (factor if scaled else 1.0)
        if not math.isclose(moved_attrs.get("flops", 0.0), expected, rel_tol=1e-9, abs_tol=1e-6):
            return f"{where} costs {moved_attrs.get('flops', 0.0):.6g} FLOPs where {expected:.6g} is right"
    return None


def graph_from_loaded(loaded: LoadedModel) -> ArchGraph:
    return _graph_and_names(loaded)[0]


@dataclass(frozen=True)
class OpRecord:
    """One ONNX node as the graph rules read it: what :func:`assemble` needs of it, computed from the node and
    the shapes of its own inputs and outputs only (so a record made from one module's export holds in any
    network that runs that module on the same shapes: nas_predictor.onnx.fragments stitches them)."""

    op: str
    name: str  # the node's name in the file (may be empty)
    inputs: tuple[str, ...]  # as in the file, "" for an omitted optional input
    outputs: tuple[str, ...]  # its non-empty outputs: one graph node each
    attrs: dict  # canonical attributes (nas_predictor.onnx.attributes)
    flops: float  # of the whole op; the graph puts them on its first output


def identity_aliases(graph: onnx.GraphProto) -> dict[str, str]:
    """Identity outputs -> their inputs: a graph node reads through an Identity to what it forwards."""
    return {node.output[0]: node.input[0] for node in graph.node
            if node.op_type == "Identity" and node.input and node.output}


def resolver(alias: dict[str, str]):
    """The tensor a name stands for once Identity chains are followed."""
    def resolve(name: str) -> str:
        if name not in alias:  # most names: no set to make
            return name
        seen = set()
        while name in alias and name not in seen:
            seen.add(name)
            name = alias[name]
        return name
    return resolve


def op_records(loaded: LoadedModel) -> tuple[list[OpRecord], dict[str, str]]:
    """The records of a loaded model's op nodes in file order (Identity, Constant and folded shape arithmetic
    make none), and its Identity aliases."""
    graph = loaded.model.graph
    shapes = loaded.shapes
    alias = identity_aliases(graph)
    resolve = resolver(alias)

    def shape_of(name: str) -> tuple[int, ...] | None:
        return shapes.get(resolve(name)) if name else None

    records = []
    for node in graph.node:
        if node.op_type in SKIPPED_OPS or node.output and all(o in loaded.folded for o in node.output if o):
            continue
        outputs = tuple(o for o in node.output if o)
        if not outputs:
            continue
        canonical = canonical_attributes(node, shape_of)
        flops = node_flops(node.op_type, [resolve(i) if i else "" for i in node.input], list(node.output),
                           canonical, shape_of)
        records.append(OpRecord(node.op_type, node.name, tuple(node.input), outputs, canonical, flops))
    return records, alias


def _graph_and_names(loaded: LoadedModel) -> tuple[ArchGraph, list[str]]:
    """The graph, and for each of its nodes the ONNX node (or input tensor) it came from, for messages."""
    records, alias = op_records(loaded)
    return assemble(records, alias, loaded.shapes, loaded.constants, loaded.parameter_inputs, loaded.data_inputs,
                    loaded.batch_size)


def assemble(records: Sequence[OpRecord], alias: dict[str, str], shapes: dict[str, tuple[int, ...]],
             constants: dict[str, tuple[int, ...]], parameter_inputs: set[str], data_inputs: Sequence[str],
             batch: int) -> tuple[ArchGraph, list[str]]:
    """The graph rules (module docstring) over op records in file order: edges, Input nodes, batched and
    memory attributes, dropped constant computations, topological order and the global scalars; and for each
    graph node the ONNX node (or input tensor) it came from.

    ``shapes`` sizes every tensor, ``constants`` holds the tensors with known values (initializers, Constant
    outputs, folded shape arithmetic) with their dims, ``parameter_inputs`` the weight-free file's weights."""
    resolve = resolver(alias)
    const_names = set(constants) | parameter_inputs
    data = set(data_inputs)

    ops: list[str] = []
    names: list[str] = []
    attrs: list[dict] = []
    node_shapes: list[tuple[int, ...]] = []
    produced_by: dict[str, int] = {}
    op_nodes: list[tuple[OpRecord, list[int]]] = []
    for record in records:
        ids = []
        for position, out in enumerate(record.outputs):
            produced_by[out] = len(ops)
            ids.append(len(ops))
            ops.append(record.op)
            names.append(record.name or out)
            # the op's FLOPs sit on its first output node, so graph totals count them once
            attrs.append({**record.attrs, "flops": record.flops if position == 0 else 0.0})
            node_shapes.append(shapes.get(out, ()))
        op_nodes.append((record, ids))

    input_node: dict[str, int] = {}
    edges: set[tuple[int, int]] = set()
    param_uses: list[str] = []  # constant tensors read by ops, once per use
    # Tensors whose size follows the batch: the data inputs and every output of an op reading one.
    # Each op node records the elements it reads and writes, split into batched and fixed ones, so
    # a graph can be re-batched exactly without exporting again (nas_predictor.onnx.rebatch).
    batched = set(data)
    for record, ids in op_nodes:
        always = ALWAYS_PARAMETER.get(record.op, ())
        maybe = PARAMETER_SLOTS.get(record.op, ())
        elements = {True: 0, False: 0}
        node_batched = False
        for slot, raw_name in enumerate(record.inputs):
            if not raw_name:
                continue  # an omitted optional input
            name = resolve(raw_name)
            if slot in always or (slot in maybe and name in const_names):
                if name in const_names:
                    param_uses.append(name)
                continue
            if name in produced_by:
                src = produced_by[name]
            else:
                if name not in input_node:
                    if name in const_names:
                        param_uses.append(name)
                    input_node[name] = len(ops)
                    ops.append(INPUT_OP)
                    names.append(name)
                    attrs.append({"batched": int(name in batched)})
                    node_shapes.append(shapes.get(name, ()))
                src = input_node[name]
            elements[name in batched] += numel(shapes.get(name))
            node_batched |= name in batched
            for dst in ids:
                edges.add((src, dst))
        if node_batched:
            batched.update(record.outputs)
        elements[node_batched] += sum(numel(shapes.get(out)) for out in record.outputs)
        for position, i in enumerate(ids):
            first = position == 0
            attrs[i].update(batched=int(node_batched), memory_batched=elements[True] if first else 0,
                            memory_fixed=elements[False] if first else 0)

    # Op nodes that nothing feeds compute constants (e.g. ConstantOfShape of a constant): drop them.
    fed = {d for _, d in edges}
    keep = [i for i in range(len(ops)) if ops[i] == INPUT_OP or i in fed]
    if len(keep) < len(ops):
        kept = set(keep)
        edges = {(s, d) for s, d in edges if s in kept and d in kept}
        # an Input node whose only consumers were dropped is dropped too
        used = {s for s, _ in edges}
        keep = [i for i in keep if ops[i] != INPUT_OP or i in used]
    order = _topological(keep, edges)
    new = {old: i for i, old in enumerate(order)}
    params = sum(numel(constants.get(t, shapes.get(t))) for t in param_uses)
    kept_attrs = [attrs[i] for i in order]
    memory = sum(a.get("memory_batched", 0) + a.get("memory_fixed", 0) for a in kept_attrs)
    return ArchGraph(
        ops=tuple(ops[i] for i in order),
        edges=tuple(sorted((new[s], new[d]) for s, d in edges if s in new and d in new)),
        attrs=tuple(kept_attrs),
        shapes=tuple(node_shapes[i] for i in order),
        scalars={"batch_size": float(batch), "flops": float(sum(a.get("flops", 0.0) for a in kept_attrs)),
                 "params": float(params), "memory_access": float(memory + params)},
    ), [names[i] for i in order]


def _topological(nodes: list[int], edges: set[tuple[int, int]]) -> list[int]:
    """Kahn's algorithm, always taking the earliest ready node (stable in file order)."""
    import heapq

    present = set(nodes)
    indeg = {n: 0 for n in nodes}
    succ: dict[int, list[int]] = {n: [] for n in nodes}
    for s, d in edges:
        if s in present and d in present:
            succ[s].append(d)
            indeg[d] += 1
    ready = [n for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, m)
    if len(order) < len(nodes):  # a cycle: let ArchGraph name it
        order += [n for n in nodes if n not in set(order)]
    return order
