"""Real torchvision/timm networks for the ONNX and shipped-predictor tests, exported by benchmarks/real_networks.py.

The project's CPU torch cannot import torchvision, so the files are exported by a separate export-only
venv (its python from $NAS_PREDICTOR_EXPORT_PYTHON, else the clone's .export-venv).
Exports are cached (benchmarks/real_networks.py's folder, $NAS_PREDICTOR_REAL_NETWORKS_DIR) and reused
while the recipe is unchanged. Without an export python the tests skip, but under CI=true they fail.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "real_networks.py"
BUILD_HINT = ("build it with: python3 -m venv .export-venv && .export-venv/bin/pip install torch==2.14.1 "
              "torchvision==0.29.1 && .export-venv/bin/pip install timm==1.0.31 onnx==1.23.2 onnxscript "
              "(then export NAS_PREDICTOR_EXPORT_PYTHON=$PWD/.export-venv/bin/python), as .ci/run does")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def export_python() -> Path | None:
    named = os.environ.get("NAS_PREDICTOR_EXPORT_PYTHON")
    if named:
        return Path(named)
    for candidate in (REPO / ".export-venv" / "bin" / "python",):
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def real_networks_module():
    """benchmarks/real_networks.py as a module: the tests use its MAC count and batch verdicts, so the
    benchmark table and the tests judge a network the same way."""
    spec = importlib.util.spec_from_file_location("real_networks_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="session")
def export_real_networks(real_networks_module):
    """``export_real_networks(ids)``: exports those networks once per session (and across sessions, in the
    benchmark's cache) and returns (folder, {network id: manifest row})."""
    python = export_python()
    if python is None or not python.is_file():
        where = f"{python} does not exist" if python else "no export python found"
        message = f"real-network tests need the export venv (torchvision + timm): {where}; {BUILD_HINT}"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    folder = real_networks_module.DEFAULT_DIR
    done: dict[tuple[str, ...], tuple] = {}

    def export(ids: list[str]):
        key = tuple(ids)
        if key in done:
            return done[key]
        result = subprocess.run([str(python), str(SCRIPT), "export", "--out", str(folder), "--only", *ids],
                                capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            pytest.fail(f"exporting {ids} with {python} failed (exit {result.returncode}): "
                        f"{result.stderr.strip()[-2000:]}; {BUILD_HINT}")
        rows = real_networks_module.read_manifest(folder).get("networks", {})
        failed = {nid: rows.get(nid, {}).get("error", "not in the manifest") for nid in ids
                  if not rows.get(nid, {}).get("ok")}
        if failed:
            pytest.fail(f"the export venv could not export {failed}")
        done[key] = (folder, {nid: rows[nid] for nid in ids})
        return done[key]

    return export
