"""The CIFAR NAS-Bench-201 macro network written straight as ONNX, without torch (the fast path of
``NasBench201Space.network_onnx``).

Exporting ``search_spaces.nb201_network`` through the TorchScript exporter takes 0.2-0.3 s per network,
which dominated a cold predictor-in-the-loop search (about 270 networks: 55 of its 79 s). This builder
writes the same operators in the order the exporter emits them (the tracer's order: a cell's edges in
arch-string order, each node summed left to right, the reduction block's shortcut first), as
weight-free ONNX with the weights as graph inputs, in about 5 ms. Only what ``onnx_to_graph`` reads
has to agree with the export, and it must agree exactly: ``tests/search_spaces/test_nb201_onnx.py``
compares the two graphs on every op at every edge, and ``tools/check_nb201_onnx.py`` on the whole
space. The torch module stays the definition (it is what was measured, trained and exported).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from search_spaces.nb201_arch import EDGE_SOURCES, EDGE_TARGETS, parse_arch

OPSET = 17  # nas_predictor.onnx.export.DEFAULT_OPSET: the exporter's graphs are read at this opset
_BN = {"epsilon": 9.999999747378752e-06, "momentum": 0.8999999761581421, "training_mode": 0}


class _Builder:
    """Nodes, weight inputs and a running count for unique names, appended in execution order."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._seen: dict[tuple, str] = {}

    def _name(self, op: str) -> str:
        self._count += 1
        return f"{op}_{self._count}"

    def weight(self, shape: tuple[int, ...]) -> str:
        name = f"w{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        # the exporter's common-subexpression pass computes an op once per (op, inputs, attributes): two conv
        # edges reading one node share its ReLU, two pooling edges one AveragePool, a repeated sum one Add.
        # Weighted ops never repeat (each has its own weights), so they pass through unchanged.
        key = (op, tuple(inputs), tuple(sorted((k, repr(v)) for k, v in attrs.items())))
        if key in self._seen:
            return self._seen[key]
        name = self._name(op)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self._seen[key] = name
        return name

    def conv(self, x: str, c_in: int, c_out: int, kernel: int, stride: int) -> str:
        pad = kernel // 2
        return self.node("Conv", [x, self.weight((c_out, c_in, kernel, kernel))], dilations=[1, 1], group=1,
                         kernel_shape=[kernel, kernel], pads=[pad] * 4, strides=[stride, stride])

    def bn(self, x: str, channels: int) -> str:
        return self.node("BatchNormalization", [x, *(self.weight((channels,)) for _ in range(4))], **_BN)

    def relu_conv_bn(self, x: str, c_in: int, c_out: int, kernel: int, stride: int) -> str:
        return self.bn(self.conv(self.node("Relu", [x]), c_in, c_out, kernel, stride), c_out)

    def edge(self, op: str, x: str, channels: int) -> str:
        if op == "nor_conv_3x3":
            return self.relu_conv_bn(x, channels, channels, 3, 1)
        if op == "nor_conv_1x1":
            return self.relu_conv_bn(x, channels, channels, 1, 1)
        if op == "avg_pool_3x3":
            return self.node("AveragePool", [x], ceil_mode=0, count_include_pad=0, kernel_shape=[3, 3],
                             pads=[1, 1, 1, 1], strides=[1, 1])
        if op == "skip_connect":
            return x  # nn.Identity leaves no node in the trace
        # "none": x.mul(0.0), a scalar Constant then a Mul; the same x times 0.0 twice is one Mul
        key = ("none", (x,), ())
        if key not in self._seen:
            zero = self._name("Constant")
            self.nodes.append(helper.make_node("Constant", [], [zero], name=zero,
                                               value=helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])))
            self._seen[key] = self.node("Mul", [x, zero])
        return self._seen[key]

    def cell(self, ops: tuple[str, ...], x: str, channels: int) -> str:
        nodes = [x]
        for target in (1, 2, 3):
            total: str | None = None
            for op, src, dst in zip(ops, EDGE_SOURCES, EDGE_TARGETS):
                if dst == target:
                    term = self.edge(op, nodes[src], channels)
                    total = term if total is None else self.node("Add", [total, term])
            assert total is not None  # every node has incoming edges
            nodes.append(total)
        return nodes[3]

    def reduction(self, x: str, c_in: int, c_out: int) -> str:
        shortcut = self.node("AveragePool", [x], ceil_mode=0, count_include_pad=1, kernel_shape=[2, 2],
                             pads=[0, 0, 0, 0], strides=[2, 2])
        shortcut = self.conv(shortcut, c_in, c_out, 1, 1)
        main = self.relu_conv_bn(self.relu_conv_bn(x, c_in, c_out, 3, 2), c_out, c_out, 3, 1)
        return self.node("Add", [shortcut, main])


def nb201_onnx(arch: str, batch: int = 1, num_classes: int = 10, C: int = 16, N: int = 5) -> onnx.ModelProto:
    """The weight-free ONNX model of ``arch``'s CIFAR network (input ``batch`` x 3 x 32 x 32), as
    ``export_onnx(build_nb201_network(arch), ...)`` would give it, read the same by ``onnx_to_graph``."""
    ops = parse_arch(arch)
    b = _Builder()
    x = b.bn(b.conv("input", 3, C, 3, 1), C)
    channels = C
    for stage in range(3):
        if stage:
            x = b.reduction(x, channels, 2 * channels)
            channels *= 2
        for _ in range(N):
            x = b.cell(ops, x, channels)
    x = b.node("Relu", [b.bn(x, channels)])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    logits = helper.make_node("Gemm", [x, b.weight((num_classes, channels)), b.weight((num_classes,))], ["logits"],
                              name="Gemm_logits", alpha=1.0, beta=1.0, transB=1)
    graph = helper.make_graph(
        [*b.nodes, logits], "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 32, 32]), *b.inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, num_classes])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
