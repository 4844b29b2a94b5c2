"""The NAS-Bench-201 network written straight as ONNX reads exactly as the exporter's graph of the torch module."""

from __future__ import annotations

import numpy as np
import pytest

from nas_predictor.data.latency_graphs import network_graph
from nas_predictor.onnx import onnx_to_graph
from nas_predictor.onnx.export import export_onnx
from nas_predictor.spaces import get_space
from search_spaces.nb201_arch import OPS
from search_spaces.nb201_network import build_nb201_network
from search_spaces.nb201_onnx import nb201_onnx


def _arch(ops) -> str:
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def _exported(arch: str) -> dict:
    return onnx_to_graph(export_onnx(build_nb201_network(arch), (1, 3, 32, 32))).to_dict()


# every op on every edge (the uniform cells), and the shared-input cases the exporter merges: two conv edges
# reading one node (one ReLU), two pools of one node (one AveragePool), a sum computed twice (one Add), a
# skip that makes two nodes the same tensor, and x*0 twice
CASES = [_arch([op] * 6) for op in OPS] + [
    _arch(["skip_connect", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3"]),
    _arch(["avg_pool_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_3x3"]),
    _arch(["none", "none", "skip_connect", "none", "skip_connect", "none"]),
    _arch(["skip_connect", "skip_connect", "skip_connect", "skip_connect", "skip_connect", "none"]),
]


@pytest.mark.parametrize("arch", CASES + [_arch(np.random.default_rng(s).choice(OPS, 6)) for s in range(8)])
def test_the_written_network_is_the_exported_one(arch):
    assert onnx_to_graph(nb201_onnx(arch)).to_dict() == _exported(arch)


def test_the_space_uses_it_for_whole_network_graphs():
    space = get_space("nasbench201")
    arch = CASES[-1]
    assert network_graph(space, arch).to_dict() == onnx_to_graph(space.network_onnx(arch)).to_dict()
