"""NAS-Bench-101: cells of up to 7 vertices and 9 edges, 3 middle ops, 423,624 unique cells.

Arch string (the stable id): ``"<rows>|<ops>"``, the adjacency rows as '0'/'1' strings joined by '.' and
the op names of all vertices (input and output included) joined by ','; for example::

    0110000.0001000.0000100.0000010.0000001.0000001.0000000|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,output

Any valid spec is accepted (unpruned ones too); the canonical string is that of the pruned spec, the
equivalence key the official md5 graph hash (the ``hash_iterator`` keys of the benchmark), shared by
isomorphic cells. ``spec_to_arch`` / ``arch_to_spec`` convert from and to the official (matrix, ops)
form. Cell logic: ``nas_predictor.nb101_cell``; moves: ``search_spaces.nb101_moves``.

Mutation: :meth:`NASBench101.mutate` makes exactly one change (an edge flip, an op change, or a vertex
insertion, see ``nb101_moves``), drawn with the official routine's edge/op proportions, so its child is
always one of :meth:`NASBench101.neighbours` (the SearchSpace contract). The official ``mutate_spec``
flips several edges and ops at once (3 flips and 1 op change expected at rate 1) and may return an
equivalent cell: it is :meth:`NASBench101.mutate_official`, for reproducing the paper's regularized
evolution.

The space is too large to enumerate here, so ``len()`` and ``iter()`` raise TypeError (base class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nas_predictor.graph import ArchGraph
from nas_predictor.nb101_cell import (
    MAX_VERTICES,
    MIDDLE_OPS,
    Cell,
    arch_to_spec,
    canonical_arch,
    canonical_cell,
    cell_hash,
    format_arch,
    is_valid,
    parse_arch,
    spec_to_arch,
)
from search_spaces import nb101_moves
from nas_predictor.spaces import SearchSpace

if TYPE_CHECKING:
    import torch

__all__ = ["NASBench101", "arch_to_spec", "spec_to_arch"]

INSTALL_HINT = 'pip install "nas-predictor[nb101]"'


class NASBench101(SearchSpace):
    name = "nasbench101"
    # spec 1.2 label order
    op_vocab = ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")

    def canonical(self, arch: str) -> str:
        return canonical_arch(arch)

    def equivalence_key(self, arch: str) -> str:
        return cell_hash(parse_arch(arch))

    def equivalent_archs(self, arch: str) -> list[str]:
        """The canonical strings of the relabellings of ``arch``'s pruned cell that keep the adjacency upper
        triangular (the other topological orders of the same graph), the canonical ``arch`` first. Every
        cell with the key is one of these up to pruning; unpruned specs are not listed."""
        return [format_arch(c) for c in nb101_moves.relabellings(parse_arch(arch))]

    def to_graph(self, arch: str) -> ArchGraph:
        """The pruned cell, its vertices in stored (topological) order."""
        cell = canonical_cell(parse_arch(arch))
        return ArchGraph(ops=cell.ops, edges=tuple(cell.edges))

    def sample(self, rng: np.random.Generator) -> str:
        """The official ``random_spec``: every upper-triangular entry of a 7x7 matrix 0 or 1 with equal
        probability and random middle ops, drawn again until valid; returned pruned. This is uniform over
        7-vertex specs, not over the 423,624 unique cells (those with many equivalent specs come more often)."""
        while True:
            matrix = np.triu(rng.integers(0, 2, size=(MAX_VERTICES, MAX_VERTICES)), 1)
            middle = [MIDDLE_OPS[int(i)] for i in rng.integers(0, len(MIDDLE_OPS), size=MAX_VERTICES - 2)]
            cell = Cell(matrix, ("input", *middle, "output"))
            if is_valid(cell):
                return format_arch(canonical_cell(cell))

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        return format_arch(nb101_moves.mutate_one_step(parse_arch(arch), rng))

    def mutate_official(self, arch: str, rng: np.random.Generator, mutation_rate: float = 1.0) -> str:
        """The official multi-change ``mutate_spec``; returns the *unpruned* 7-vertex spec (its dangling
        vertices matter to the next call, as ``original_matrix`` does); ``canonical()`` gives the id."""
        return format_arch(nb101_moves.mutate_official(parse_arch(arch), rng, mutation_rate))

    def neighbours(self, arch: str) -> list[str]:
        return [format_arch(c) for c in nb101_moves.neighbours(parse_arch(arch))]

    # -- categorical view ----------------------------------------------------------------------------
    def choices(self) -> list[tuple[str, tuple]]:
        """21 edge bits ``e{i}_{j}`` of the 7-vertex matrix, then 5 middle ops ``op{v}``. Many combinations
        are not cells (no input-output path, more than 9 edges after pruning): ``from_choices`` rejects
        them with ArchError."""
        edges = [(f"e{i}_{j}", (0, 1)) for i, j in nb101_moves.EDGE_SLOTS]
        return edges + [(f"op{v}", MIDDLE_OPS) for v in range(1, MAX_VERTICES - 1)]

    def from_choices(self, values: dict) -> str:
        return format_arch(canonical_cell(nb101_moves.cell_from_choices(values)))

    def to_choices(self, arch: str) -> dict:
        """The pruned cell on the 7 vertex slots: its middle vertices on the first slots in order, its
        output on the last; the slots left over get the first middle op and no edges, so pruning drops
        them again and ``from_choices`` gives back the canonical cell."""
        cell = canonical_cell(parse_arch(arch))
        n = cell.num_vertices
        slot = [*range(n - 1), MAX_VERTICES - 1]  # slot of each vertex of the pruned cell
        edges = {(slot[i], slot[j]) for i, j in cell.edges}
        values: dict = {f"e{i}_{j}": (1 if (i, j) in edges else 0) for i, j in nb101_moves.EDGE_SLOTS}
        ops = {slot[v]: cell.ops[v] for v in range(1, n - 1)}
        for v in range(1, MAX_VERTICES - 1):
            values[f"op{v}"] = MIDDLE_OPS[MIDDLE_OPS.index(ops.get(v, MIDDLE_OPS[0]))]
        return values

    # -- whole networks ------------------------------------------------------------------------------
    def build_network(self, arch: str) -> "torch.nn.Module":
        """The CIFAR-10 network of the benchmark (stem 128 channels, 3 stacks of 3 cells, 10 classes),
        built by ``nasbench-pytorch``. Its trainable parameter count equals the benchmark's
        ``trainable_parameters``."""
        try:
            from nasbench_pytorch.model import Network
            from nasbench_pytorch.model.model import Placeholder
        except ImportError:
            raise ImportError(f"building NAS-Bench-101 networks needs nasbench-pytorch: {INSTALL_HINT}") from None
        matrix, ops = arch_to_spec(self.canonical(arch))
        network = Network((matrix, ops), num_labels=10)
        for module in network.modules():
            if isinstance(module, Placeholder):
                # nasbench-pytorch gives each no-op placeholder an unused scalar parameter; frozen, so
                # trainable counts match the benchmark (they are not used in the forward pass either)
                module.requires_grad_(False)
        return network

    def network_input_shape(self, arch: str, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, 32, 32)
