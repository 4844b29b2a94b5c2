"""Without NNI: ``strategies`` (and the bridge's pure mapping) import fine; the NNI pieces raise an
ImportError that names the extra. NNI's absence is simulated, so this runs with or without it."""

from __future__ import annotations

import subprocess
import sys

import pytest

BRIDGE_MODULES = ("strategies.nni_bridge.strategy", "strategies.nni_bridge.latency_filter",
                  "strategies.nni_bridge.evaluators")


@pytest.fixture
def no_nni(monkeypatch):
    """``import nni`` fails (a None entry in sys.modules), and no bridge module is cached."""
    for name in [m for m in sys.modules if m == "nni" or m.startswith("nni.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nni", None)
    for name in BRIDGE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize("name", ["PredictorGuidedStrategy", "LatencyFilter", "latency_filter_middleware",
                                  "NB201TableBenchmark", "NB101PredictorBenchmark"])
def test_nni_pieces_name_the_extra(no_nni, name):
    import strategies.nni_bridge as bridge

    with pytest.raises(ImportError, match=r'pip install "nas-predictor\[nni\]"'):
        getattr(bridge, name)


def test_submodules_name_the_extra_too(no_nni):
    import importlib

    for module in BRIDGE_MODULES:
        with pytest.raises(ImportError, match=r"nas-predictor\[nni\]"):
            importlib.import_module(module)


def test_mapping_needs_no_nni(no_nni):
    from strategies.nni_bridge import nb201_arch_to_sample, nb201_sample_to_arch

    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    assert nb201_sample_to_arch(nb201_arch_to_sample(arch, "cell/")) == arch


def test_importing_strategies_does_not_import_nni():
    code = "import sys, strategies, strategies.nni_bridge; print('nni' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
