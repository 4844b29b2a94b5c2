"""Starting an NNI experiment that needs NNI's manager (a training service such as ``local``) on a busy
machine.

NNI 3.0's launcher starts the manager (a Node.js process) and gives it three one-second tries to answer
before it gives up with a connection error (``nni.experiment.launcher._check_rest_server``). On a loaded
machine (two cores running trials, a CI runner) the manager can take longer than that to listen, so the
experiment fails before its first trial. :func:`patient_launcher` lets it wait longer; nothing else of
NNI changes.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

#: seconds NNI's launcher waits for its manager under :func:`patient_launcher`
MANAGER_WAIT_SECONDS = 60


@contextlib.contextmanager
def patient_launcher(seconds: int = MANAGER_WAIT_SECONDS) -> Iterator[None]:
    """Within the block, NNI's launcher tries ``seconds`` times, a second apart, to reach its manager."""
    from nni.experiment import launcher

    original = launcher._check_rest_server

    def patient(port: int, retry: int = 3, url_prefix: str | None = None) -> None:
        return original(port, max(retry, seconds), url_prefix)

    launcher._check_rest_server = patient
    try:
        yield
    finally:
        launcher._check_rest_server = original
