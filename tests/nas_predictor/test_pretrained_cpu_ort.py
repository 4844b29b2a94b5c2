"""The shipped CPU predictor (latency-cpu-ort, issue 27): what it says about itself, a real torchvision
ResNet-18 export predicted near its label measured on that machine, and `nas-predictor latency` using it
without --predictor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nas_predictor import list_pretrained, load_pretrained
from nas_predictor.cli import DEFAULT_LATENCY_PREDICTOR
from nas_predictor.onnx import onnx_to_graph

NAME = "latency-cpu-ort"
RESNET18 = "torchvision:resnet18@224"
REAL_LABELS = Path(__file__).resolve().parents[2] / "benchmarks" / "latency_dataset" / "real_networks_cpu_1t" / "labels.jsonl"


@pytest.fixture(scope="module")
def resnet18(export_real_networks):
    folder, rows = export_real_networks([RESNET18])
    return folder / rows[RESNET18]["file"]


def _measured_ms(network_id: str) -> float:
    for line in REAL_LABELS.read_text().splitlines():
        row = json.loads(line)
        if row["id"] == network_id:
            return row["label"]["label_ms"]
    raise AssertionError(f"{network_id} has no label in {REAL_LABELS}")


def test_it_is_the_default_and_says_where_it_was_measured():
    assert DEFAULT_LATENCY_PREDICTOR == NAME and NAME in list_pretrained()
    predictor = load_pretrained(NAME)
    meta = predictor.meta
    assert meta["task"] == "latency" and meta["unit"] == "ms"
    machine = meta["measured_on"]
    assert machine["provider"] == "cpu" and machine["threads"] == 1 and machine["cpu_model"]
    assert machine["reference_fast_ms"] > 0  # how fast the protocol's reference model ran there
    # chosen by validation MAPE among the grounded and graph-only runs of benchmarks/latency_real.py
    assert meta["model"]["readout"] in ("grounded", "roofline")
    if meta["model"]["readout"] == "grounded":
        assert meta["encoding"]["op_latency"]["info"]["operators"] >= 100
    assert "latency_domain" in meta


def test_a_torchvision_resnet18_export_is_predicted_near_its_measured_latency(resnet18):
    predictor = load_pretrained(NAME)
    [ms] = predictor.predict_latency([onnx_to_graph(resnet18)])
    measured = _measured_ms(RESNET18)
    # a sanity bound on one held-out real network (the benchmark reports the full test set)
    assert 0.7 * measured <= ms <= 1.3 * measured, (ms, measured)


def test_latency_command_uses_it_without_predictor(resnet18):
    out = subprocess.run([sys.executable, "-m", "nas_predictor.cli", "latency", str(resnet18), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["predictor"] == NAME
    [row] = result["results"]
    assert row["predicted_ms"] > 0 and row["in_distribution"] is True, row
