"""export_onnx: a network the exporter cannot take is an ArchError naming the module that failed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_predictor.errors import ArchError
from nas_predictor.onnx.export import export_onnx


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)  # the wrong input size for what reaches it

    def forward(self, x):
        return self.fc(x.flatten(1))


class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.rfft2(x).abs()  # no ONNX form in opset 17


def test_an_error_in_a_forward_names_that_module_and_where_it_sits():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), Block()))
    with pytest.raises(ArchError, match=r"cannot export Sequential to ONNX: module Linear \(at '1.1.fc'\) failed: "
                                        r"mat1 and mat2 shapes cannot be multiplied"):
        export_onnx(net, (1, 3, 8, 8))


def test_an_operator_without_an_onnx_form_names_the_module_it_was_traced_in():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), Spectral()))
    with pytest.raises(ArchError, match=r"module Spectral \(at '1.1'\) failed: .*'aten::fft_rfft2'"):
        export_onnx(net, (1, 3, 8, 8))
    assert net.training, "the module's mode is restored"
