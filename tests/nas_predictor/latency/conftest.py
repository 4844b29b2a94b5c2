"""Fixtures of the latency tests: a quick protocol (tests take well under 5 s each) and tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_predictor.latency import CpuProtocol, Measurer
from search_spaces.onnx_export import export_onnx

# The documented protocol with small budgets: a pass stops after 3 pairs through the gate or 0.25 s
# of measured time, one retry, no gap. On a noisy machine the label may be a flagged fallback.
QUICK = CpuProtocol(min_pairs=3, min_seconds=0.0, max_pass_seconds=0.25, max_retries=1, retry_gap_s=0.0,
                    reference_warmup_runs=8, warmup_runs=2, long_passes=2)


class TinyNet(torch.nn.Module):
    """Conv-BN-ReLU, a residual add, global pooling and a Linear: microseconds per run."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = y + self.conv2(y)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


@pytest.fixture(scope="session")
def tiny_weight_free() -> bytes:
    return export_onnx(TinyNet(), (1, 3, 16, 16))


@pytest.fixture(scope="session")
def tiny_weighted() -> bytes:
    return export_onnx(TinyNet(), (1, 3, 16, 16), export_params=True)


@pytest.fixture(scope="session")
def measurer() -> Measurer:
    """One CPU measurer for the module's tests: the reference is exported and warmed up once."""
    return Measurer("cpu", protocol=QUICK)


@pytest.fixture
def quick_default_protocol(monkeypatch):
    """Make QUICK the default protocol, for code paths (the CLI) that build their own Measurer."""
    monkeypatch.setattr("nas_predictor.latency.measurer.DEFAULT_PROTOCOL", QUICK)


class ContextHost:
    """Stands in for the timing loop: each source (by its position) has a target time and the
    reference's time right after that target (its context); 1 % noise; the pass stops the protocol's
    way. ``fixed`` sources return their given (targets, references) passes in turn instead."""

    def __init__(self, models, fixed=None):
        self.models, self.fixed = models, fixed or {}
        self.rng = np.random.default_rng(0)
        self.calls = {}

    def paired_runs(self, target, reference, clock, *, warmup, stop):
        if target.index in self.fixed:
            passes = self.fixed[target.index]
            n = self.calls[target.index] = self.calls.get(target.index, -1) + 1
            return [list(x) for x in passes[n % len(passes)]]
        target_ms, reference_ms = self.models[target.index]
        targets, references = [], []
        while not (targets and stop(targets, references)):
            targets.append(target_ms * self.rng.lognormal(0, 0.01))
            references.append(reference_ms * self.rng.lognormal(0, 0.01))
        return targets, references


@pytest.fixture
def injected(monkeypatch):
    """A Measurer whose reference never runs: its tracker holds 1,900 runs that followed other models,
    at ``tracker_ms``; pairs come from a ContextHost."""
    from nas_predictor.latency import measurer as module

    def start(tracker_ms, host):
        def fake_reference(self):
            self._reference_run = lambda: None
            self.tracker.add(tracker_ms * np.random.default_rng(1).lognormal(0, 0.01, 1900))

        original = Measurer._prepare

        def tagged(self, index, *args):
            job = original(self, index, *args)
            job.run.index = index  # which model ContextHost is timing
            return job

        monkeypatch.setattr(Measurer, "_start_reference", fake_reference)
        monkeypatch.setattr(Measurer, "_prepare", tagged)
        monkeypatch.setattr(module, "paired_runs", host.paired_runs)
        return Measurer("cpu", core=-1, protocol=CpuProtocol(retry_gap_s=0.0))

    return start
