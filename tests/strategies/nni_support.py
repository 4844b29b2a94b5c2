"""What the NNI tests share: NNI itself, or a skip (a failure under CI=true, where the [nni] extra is
installed and the integration must be tested)."""

from __future__ import annotations

import pytest

from tests.conftest import _in_ci


def import_nni():
    """The nni module; skips the calling test module without it (fails it under CI=true)."""
    from strategies.nni_bridge import require_nni

    try:
        return require_nni()
    except ImportError as exc:
        if _in_ci():
            pytest.fail(f"NNI is required in CI (install the [nni] extra): {exc}", pytrace=False)
        pytest.skip(f"NNI not installed: {exc}", allow_module_level=True)
