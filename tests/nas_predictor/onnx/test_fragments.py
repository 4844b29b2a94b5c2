"""nas_predictor.onnx.fragments: a module's graph stitched from per-module fragments is the graph of its export,
node for node, on networks that exercise each pass the exporter runs across module boundaries (CSE, DCE,
in-place writes, identities, list inputs), and what the stitching does not model is refused, never guessed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.export import export_onnx
from nas_predictor.onnx.fragments import FragmentCache, Unsupported, module_graph
from search_spaces.python_space import graph_key
from tests.python_spaces import _net, plain_cnn


def exported(module: nn.Module, shape) -> dict:
    return onnx_to_graph(export_onnx(module, shape)).to_dict()


def assert_same_as_export(module: nn.Module, shape, cache: FragmentCache | None = None) -> None:
    stitched = module_graph(module, shape, cache or FragmentCache())
    assert stitched.to_dict() == exported(module, shape)


class ReLUConv(nn.Module):
    """NAS-Bench-201's ReLU-conv-BN edge: its ReLU is one node with a sibling's that reads the same tensor."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x)


class Cell(nn.Module):
    """A NAS-Bench-201-like cell: every node sums ops of all earlier nodes (torch.stack + sum glue)."""

    def __init__(self, c: int, ops: list[str]) -> None:
        super().__init__()
        make = {"conv3": lambda: ReLUConv(c, 3), "conv1": lambda: ReLUConv(c, 1), "skip": nn.Identity,
                "pool": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False), "none": Zero}
        edges = iter(ops)
        self.layers = nn.ModuleList(nn.ModuleList(make[next(edges)]() for _ in range(node)) for node in (1, 2, 3))

    def forward(self, x):
        nodes = [x]
        for layer in self.layers:
            nodes.append(torch.sum(torch.stack([op(nodes[i]) for i, op in enumerate(layer)]), 0))
        return nodes[-1]


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class CellNet(nn.Module):
    def __init__(self, ops: list[str], c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList(Cell(c, ops) for _ in range(2))
        self.last = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))  # an in-place write, single reader
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.pool(self.last(x))
        return self.head(x.view(x.size(0), -1))


OPS = ("conv3", "conv1", "skip", "pool", "none")


def test_cells_of_every_kind_of_edge_are_their_export():
    rng = np.random.default_rng(0)
    cache = FragmentCache()
    for _ in range(12):
        ops = [OPS[i] for i in rng.integers(len(OPS), size=6)]
        net = CellNet(ops)
        assert module_graph(net, (1, 3, 8, 8), cache).to_dict() == exported(net, (1, 3, 8, 8)), ops


def test_siblings_reading_one_tensor_share_the_nodes_the_export_shares():
    # three conv edges from the cell input: one Relu in the export (CSE), and so in the stitched graph
    net = CellNet(["conv3", "conv3", "conv1", "conv1", "skip", "conv3"])
    graph = module_graph(net, (1, 3, 8, 8), FragmentCache())
    assert graph.to_dict() == exported(net, (1, 3, 8, 8))
    assert graph.ops.count("Relu") < graph.ops.count("Conv")


class Twice(nn.Module):
    """One module called on the same tensor twice (one computation) and on another (a second one)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.Hardswish()

    def forward(self, x):
        y = self.act(x)
        return self.conv(y) + self.conv(y) + self.conv(self.act(y))


class DeadBranch(nn.Module):
    """A child whose output nothing uses (the export's DCE drops it) and an identity in the glue."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Conv2d(4, 4, 1)
        self.unused = nn.Conv2d(4, 4, 3, padding=1)
        self.skip = nn.Identity()

    def forward(self, x):
        self.unused(x)
        return torch.relu(self.used(x)) + torch.relu(self.skip(x))


class Chosen(nn.Module):
    """An InputChoice-like child taking a list, given one tensor twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.mix = Mix()

    def forward(self, x):
        x = self.stem(x)
        return self.mix([x, torch.sigmoid(x), x])


class Mix(nn.Module):
    def forward(self, inputs):
        return inputs[0] + inputs[2]


@pytest.mark.parametrize("module, shape", [
    (Twice(), (1, 4, 6, 6)), (DeadBranch(), (1, 4, 6, 6)), (Chosen(), (1, 3, 6, 6)),
    (plain_cnn({"depth": 3, "width": 8, "kernel": 5, "act": "hardswish", "dropout": 0.1}), (1, 3, 16, 16)),
    (_net({"width": 16, "kernel": 7, "depth": 2, "act": "relu", "pool": "max"}), (1, 3, 32, 32)),
], ids=["called-twice", "dead-branch-and-identity", "list-input", "plain-cnn", "contract-cnn"])
def test_networks_exercising_each_cross_module_pass_are_their_export(module, shape):
    assert_same_as_export(module, shape)


def test_a_second_network_reuses_the_first_ones_fragments_and_flags_are_given_back():
    cache = FragmentCache()
    first = CellNet(["conv3", "pool", "skip", "conv1", "none", "conv3"])
    module_graph(first, (1, 3, 8, 8), cache)
    pieces = len(cache.pieces)
    second = CellNet(["conv1", "conv3", "pool", "skip", "conv3", "none"])  # same modules, other wiring
    second.train()
    assert module_graph(second, (1, 3, 8, 8), cache).to_dict() == exported(second, (1, 3, 8, 8))
    assert len(cache.pieces) == pieces, "the cell skeleton and every op were exported for the first network"
    assert second.training and all(m.training for m in second.modules())
    assert all("forward" not in m.__dict__ for m in second.modules()), "stand-ins are removed"


class Hooked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.conv.register_forward_hook(lambda m, i, o: o * 2)

    def forward(self, x):
        return self.conv(x)


class ValueDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()

    def forward(self, x):
        return self.gate(x)


class Gate(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x - 1  # a Python branch on a value: a stand-in's zeros would change it


class WeightAsData(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.shift = Shift()

    def forward(self, x):
        return self.shift(self.conv(x))


class Shift(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 4, 1, 1))  # the exporter deduplicates equal weights by value

    def forward(self, x):
        return x + self.bias


class TransposeOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flip = Flip()
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.flip(x))  # the exporter fuses a Transpose into the Gemm that reads it


class Flip(nn.Module):
    def forward(self, x):
        return x.t()


class WritesShared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv(x)
        return self.act(y) + y  # the in-place ReLU changes what the sum reads


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 3, 1)
        self.a, self.b = conv, conv

    def forward(self, x):
        return self.b(self.a(x))


class GlueAndChildren(nn.Module):
    """The parent's own ReLU and its children's on one tensor: CSE makes them one node (not modelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.a, self.b = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.stem(x)
        return self.a(x) + self.b(x) + torch.relu(x)


class MergedThenRead(nn.Module):
    """Two identical children merged, and the parent's glue reading each one's output alike."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.a, self.b = nn.Hardswish(), nn.Hardswish()

    def forward(self, x):
        x = self.stem(x)
        return torch.sigmoid(self.a(x)) * torch.sigmoid(self.b(x))


class Keyword(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = Mix()

    def forward(self, x):
        return self.mix(inputs=[x, x, x])


class WritesUnusedThenRead(nn.Module):
    """An in-place ReLU whose result nothing uses, on a tensor read after it (the export keeps the write)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.cell = WriteCell()

    def forward(self, x):
        return self.cell(self.stem(x))


class WriteCell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(3, 1, 1)

    def forward(self, x):
        self.act(x)
        return self.pool(x)


class DropoutShared(nn.Module):
    """An eval-mode Dropout returns its input tensor itself: the tracer reads its later uses as the dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.drop = nn.Dropout(0.1)
        self.act = nn.Hardswish()

    def forward(self, x):
        x = self.stem(x)
        return self.drop(x) + self.act(x)


class WriteAfterOthers(nn.Module):
    """An in-place ReLU on a tensor made before other nodes: the exporter's in-place conversion reorders them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.act = nn.ReLU(inplace=True)
        self.side = nn.Sigmoid()

    def forward(self, x):
        y = self.conv(x)
        z = self.side(x)
        return self.act(y).sum() + z.sum()


@pytest.mark.parametrize("module, shape, says", [
    (Hooked(), (1, 3, 4, 4), "forward hooks"),
    (ValueDependent(), (1, 3, 4, 4), "Gate"),
    (WeightAsData(), (1, 3, 4, 4), "reads a weight as data"),
    (TransposeOut(), (6, 6), "Transpose output crosses"),
    (WritesShared(), (1, 3, 4, 4), "writes in place a tensor other modules read"),
    (Shared(), (1, 3, 4, 4), "registered twice"),
    (Keyword(), (1, 3, 4, 4), "keyword arguments"),
    (GlueAndChildren(), (1, 3, 4, 4), "open with the same aten::relu on one tensor"),
    (MergedThenRead(), (1, 3, 4, 4), "reads one tensor where its export saw several"),
    (WritesUnusedThenRead(), (1, 3, 4, 4), "a child that writes in place or returns its input tensor has a result nothing uses"),
    (DropoutShared(), (1, 3, 4, 4), "returns as its own output a tensor other modules read"),
    (WriteAfterOthers(), (1, 3, 4, 4), "writes in place a tensor not made right before it"),
])
def test_what_the_stitching_does_not_model_is_refused(module, shape, says):
    with pytest.raises(Unsupported, match=says):
        module_graph(module, shape, FragmentCache())
    exported(module, shape)  # each of them exports: refusing is the stitching's choice, not a broken network


def test_a_refused_piece_is_remembered_and_refused_again():
    cache = FragmentCache()
    for _ in range(2):
        with pytest.raises(Unsupported, match="reads a weight as data"):
            module_graph(WeightAsData(), (1, 3, 4, 4), cache)
    assert any(isinstance(p, Unsupported) for p in cache.pieces.values())


def test_same_graph_keys_on_many_samples_of_a_small_space():
    rng = np.random.default_rng(3)
    cache = FragmentCache()
    for _ in range(15):
        config = {"width": int(rng.choice([16, 24])), "kernel": int(rng.choice([3, 5, 7])),
                  "depth": int(rng.integers(1, 4)), "act": str(rng.choice(["relu", "hardswish"])),
                  "pool": str(rng.choice(["avg", "max"]))}
        net = _net(config)
        assert graph_key(module_graph(net, (1, 3, 32, 32), cache)) == graph_key(
            onnx_to_graph(export_onnx(net, (1, 3, 32, 32)))), config


def random_op(rng: np.random.Generator, c: int) -> nn.Module:
    kind = str(rng.choice(["conv1", "conv3", "dw", "bn", "relu", "relu_", "hardswish", "sigmoid", "identity",
                           "dropout", "avg", "max", "zero", "se", "sequential", "residual"]))
    simple = {"conv1": lambda: nn.Conv2d(c, c, 1), "conv3": lambda: nn.Conv2d(c, c, 3, padding=1, bias=False),
              "dw": lambda: nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), "bn": lambda: nn.BatchNorm2d(c),
              "relu": nn.ReLU, "relu_": lambda: nn.ReLU(inplace=True), "hardswish": nn.Hardswish,
              "sigmoid": nn.Sigmoid, "identity": nn.Identity, "dropout": lambda: nn.Dropout(0.1),
              "avg": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False), "max": lambda: nn.MaxPool2d(3, 1, 1),
              "zero": Zero, "se": lambda: Squeeze(c)}
    if kind in simple:
        return simple[kind]()
    if kind == "sequential":
        return nn.Sequential(*(random_op(rng, c) for _ in range(int(rng.integers(1, 4)))))
    return Residual(random_op(rng, c))


class Squeeze(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1), nn.Hardsigmoid())

    def forward(self, x):
        return x * self.gate(x)


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class RandomCell(nn.Module):
    """Nodes summing, stacking or concatenating random ops of earlier nodes; sometimes one op called on several
    edges, sometimes glue of its own on the output."""

    def __init__(self, rng: np.random.Generator, c: int) -> None:
        super().__init__()
        self.ops, self.edges, self.joins = nn.ModuleList(), [], []
        for node in range(1, int(rng.integers(2, 5))):
            for source in rng.choice(node, size=min(node, int(rng.integers(1, 3))), replace=False):
                self.ops.append(random_op(rng, c))
                self.edges.append((node, int(source)))
            self.joins.append(str(rng.choice(["sum", "stack", "cat"])))
        self.share = bool(rng.random() < 0.3)
        self.glue = str(rng.choice(["none", "relu", "gate"]))
        self.proj = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        nodes, edge = [x], 0
        for node, join in enumerate(self.joins, start=1):
            outs = []
            while edge < len(self.edges) and self.edges[edge][0] == node:
                op = self.ops[0] if self.share and edge % 2 else self.ops[edge]
                outs.append(op(nodes[self.edges[edge][1]]))
                edge += 1
            if len(outs) == 1 or join == "sum":
                nodes.append(outs[0] if len(outs) == 1 else outs[0] + outs[1])
            elif join == "stack":
                nodes.append(torch.sum(torch.stack(outs), 0))
            else:
                nodes.append(self.proj(torch.cat(outs, 1)))
        out = nodes[-1]
        return torch.relu(out) if self.glue == "relu" else out * torch.sigmoid(x) if self.glue == "gate" else out


class RandomNet(nn.Module):
    def __init__(self, seed: int, c: int = 4) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.cells = nn.ModuleList(RandomCell(rng, c) for _ in range(int(rng.integers(1, 4))))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 3))

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.head(x)


def test_random_cell_networks_are_stitched_as_exported_or_refused_never_different():
    """Random wiring of convs, norms, pools, in-place ops, eval-mode dropouts, shared ops and glue (a fuzzer of
    this kind found each rule of ``_Stitch``): each graph is the export's, or the network is refused (most
    refusals: in-place ops and dropouts on tensors other modules read)."""
    cache, stitched = FragmentCache(), 0
    for seed in range(60):
        torch.manual_seed(seed)
        net = RandomNet(seed).eval()
        try:
            graph = module_graph(net, (1, 3, 6, 6), cache)
        except Unsupported:
            continue
        assert graph_key(graph) == graph_key(onnx_to_graph(export_onnx(net, (1, 3, 6, 6)))), seed
        stitched += 1
    assert stitched >= 25, f"only {stitched} of 60 random networks stitched"
