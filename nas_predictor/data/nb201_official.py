"""Read the official NAS-Bench-201 benchmark file into an :class:`NB201Table`.

Supported files: ``NAS-Bench-201-v1_0-e61699.pth`` and ``NAS-Bench-201-v1_1-096897.pth``
(the numbers are read through ``nas_201_api.NASBench201API``, install ``nas-predictor[nb201]``).

Format
------
The file is a ``torch.save``-d plain dict (both were written in early 2020, before torch 1.6 made
the zip container the default; either container is read)::

    meta_archs         list[str]    arch string of index i, i = 0 .. 15624
    total_archs        int
    evaluated_indexes  list | set   indices that have results
    arch2infos         {index: {"full": ArchResults state, "less": ArchResults state}}

``"full"`` is the 200-epoch schedule (API ``hp="200"``), ``"less"`` the 12-epoch one (``hp="12"``;
only CIFAR-10-valid in v1_0). An ArchResults state is ``{"arch_index", "arch_str",
"dataset_seed": {dataset: [seed, ...]}, "all_results": {(dataset, seed): ResultsCount state},
"clear_net_done"}`` and a ResultsCount state is the ``__dict__`` of one training run: ``epochs``,
``params`` (MB), ``flop``, ``latency``, ``train_acc1es`` ``{epoch: acc}``, ``eval_acc1es``
``{"<set>@<epoch>": acc}`` (e.g. ``"x-valid@199"``, ``"ori-test@199"``), losses, times and a
``net_state_dict`` that is ``None`` in the public files. Accuracies are percentages. Datasets are
``cifar10-valid`` (sets x-valid, ori-test), ``cifar10`` (ori-test), ``cifar100`` and
``ImageNet16-120`` (x-valid, x-test, ori-test = x-valid + x-test). Archs have 1 to 3 seeds.

Safety
------
``nas_201_api`` itself reads the file with a bare ``torch.load``, i.e. full unpickling, which runs
whatever code a crafted file names. We never do that: the file is read with
``torch.load(weights_only=True)`` and the resulting dict is handed to the API. Besides plain
containers and numbers, the genuine files hold ``numpy.float64`` scalars (AutoDL's
``count_parameters_in_MB`` returns one for ``params``; the v1_1 latencies are numpy means), which
weights-only loading rejects by default, so exactly the globals that rebuild numeric numpy
scalars (``numpy.dtype``, numeric dtype classes, ``numpy.core.multiarray.scalar``) are allowlisted
for the duration of the load. Any other object makes the load fail with a :class:`DataError`;
there is deliberately no fallback to ``weights_only=False``.

Cost: the weights-only unpickler is pure Python, about 6x slower than full unpickling (roughly
6 MB/s, i.e. ~6 min for v1_0 and ~13 min for v1_1), and the unpickled objects take about 5x the
file size in RAM (measured on synthetic files of the same shape).
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_predictor.data.nb201 import NB201Table
from nas_predictor.data.safe_load import numpy_scalar_globals, refusal_detail
from nas_predictor.errors import DataError
from nas_predictor.periodic import periodically

INSTALL_HINT = "pip install nas-bench-201 (or the extra: pip install 'nas-predictor[nb201]')"

# column -> (dataset, evaluation set), 200-epoch schedule, averaged over seeds.
ACCURACY_COLUMNS: dict[str, tuple[str, str]] = {
    "c10valid_valid_200ep": ("cifar10-valid", "x-valid"),
    "c10valid_test_200ep": ("cifar10-valid", "ori-test"),
    "c10_test_200ep": ("cifar10", "ori-test"),
    "c100_test_200ep": ("cifar100", "x-test"),
    "in16_test_200ep": ("ImageNet16-120", "x-test"),
}
PARAMS_COLUMN = "params_M"
PARAMS_DATASET = "cifar10-valid"
HP_200_EPOCHS = "200"
FULL_EPOCHS = 200

# Below this the load takes well under a second; the real files are 2-5 GB.
_PROGRESS_MIN_BYTES = 64 * 2**20

_REQUIRED_KEYS = ("meta_archs", "arch2infos", "evaluated_indexes")


@contextlib.contextmanager
def _read_progress(handle: BinaryIO, total: int, enabled: bool) -> Iterator[None]:
    """Show that torch.load is progressing (loading the real file takes many minutes).

    A polling thread reads the descriptor's offset, so the unpickler's millions of tiny reads
    pay nothing, unlike wrapping ``read``. Legacy-format files (the official ones) are unpickled
    straight from the file, so the offset tracks progress. Zip-format files are read into memory
    first and then unpickled, so there only the elapsed time is shown.
    """
    if not enabled:
        yield
        return
    is_zip = handle.read(4) == b"PK\x03\x04"
    handle.seek(0)
    name = Path(handle.name).name
    if is_zip:
        bar = tqdm(total=None, desc=f"Reading {name} (zip format: no byte progress)",
                   bar_format="{desc}: {elapsed}", leave=False, dynamic_ncols=True)
    else:
        bar = tqdm(total=total, desc=f"Reading {name}", unit="B", unit_scale=True, leave=False,
                   dynamic_ncols=True)
    def poll() -> bool | None:
        if is_zip:
            bar.refresh()
            return None
        try:
            pos = os.lseek(handle.fileno(), 0, os.SEEK_CUR)
        except OSError:
            return False
        bar.update(max(0, min(pos, total) - bar.n))
        return None

    try:
        with periodically(poll, 0.5, "nb201-read-progress"):
            yield
    finally:
        bar.close()


def _load_plain_dict(path: Path, progress: bool) -> dict:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            show = progress and size >= _PROGRESS_MIN_BYTES
            allow_numpy_scalars = torch.serialization.safe_globals(numpy_scalar_globals())
            with _read_progress(handle, size, show), allow_numpy_scalars:
                blob = torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch raises UnpicklingError for every object the weights-only unpickler refuses
        # (truncation surfaces as EOFError/RuntimeError instead).
        raise DataError(
            f"{path}: refusing to load: the file contains Python objects that safe loading "
            f"(torch.load weights_only=True) does not allow ({refusal_detail(str(exc))}). "
            "Unpickling them could execute arbitrary code, so there is no fallback; the official "
            "NAS-Bench-201 v1_0/v1_1 files contain plain data only"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # zip / pickle / storage / OS errors come in many types
        first_line = (str(exc).strip().splitlines() or [""])[0].split(". ", 1)[0][:200]
        raise DataError(
            f"{path}: cannot read NAS-Bench-201 file, it is truncated or corrupt "
            f"({type(exc).__name__}: {first_line or 'unexpected end of data'})"
        ) from exc
    if not isinstance(blob, dict) or any(key not in blob for key in _REQUIRED_KEYS):
        found = sorted(map(str, blob)) if isinstance(blob, dict) else type(blob).__name__
        raise DataError(
            f"{path}: not a NAS-Bench-201 benchmark file (expected a dict with keys "
            f"{', '.join(_REQUIRED_KEYS)}; found {found})"
        )
    return blob


class _NoCopyDict(dict):
    """A dict that deep-copies to itself.

    ``NASBench201API(dict)`` deep-copies its argument, which for the real file (tens of GB of
    Python objects once unpickled) would double peak memory; the dict is ours and discarded
    afterwards, so sharing it is safe.
    """

    def __deepcopy__(self, memo: dict) -> _NoCopyDict:
        return self


def _final_value(runs: list[Any], set_name: str) -> float:
    """Mean over seeds of the last-epoch accuracy on set_name; NaN if no seed recorded it."""
    values = []
    for run in runs:
        value = run.eval_acc1es.get(f"{set_name}@{run.epochs - 1}")
        if value is not None:
            values.append(float(value))
    return float(np.mean(values)) if values else math.nan


def load_nb201_pth(path: str | os.PathLike, *, progress: bool = True) -> NB201Table:
    """Load an official NAS-Bench-201 ``.pth`` file as an :class:`NB201Table`.

    Rows follow the API's index order 0..N-1 (N = len(meta_archs); 15,625 for the real files)
    with the API's arch strings. Columns, float64, NaN where the file has no such result:
    the 200-epoch accuracies of ``ACCURACY_COLUMNS`` in percent, averaged over the seeds that
    have them, and ``params_M``, the CIFAR-10-valid network's parameters in MB (millions).
    Expect the real files to take many minutes and RAM of about 5x the file size (see the module
    docstring). ``progress`` shows tqdm bars for large files.

    Raises DataError if nas_201_api is not installed, or the file is missing, truncated, corrupt,
    not a NAS-Bench-201 file, or holds objects that safe loading refuses.
    """
    try:
        from nas_201_api import NASBench201API
    except ImportError as exc:
        raise DataError(
            f"reading NAS-Bench-201 .pth files needs the nas_201_api package: {INSTALL_HINT} ({exc})"
        ) from None

    path = Path(path)
    if not path.is_file():
        raise DataError(f"NAS-Bench-201 benchmark file not found: {path}")
    blob = _load_plain_dict(path, progress)
    try:
        api = NASBench201API(_NoCopyDict(blob), verbose=False)
    except Exception as exc:  # the API validates with asserts and plain indexing
        raise DataError(
            f"{path}: malformed NAS-Bench-201 data ({type(exc).__name__}: {exc})"
        ) from None
    del blob

    n = len(api)
    arch_strs = [api[i] for i in range(n)]
    if not all(isinstance(a, str) for a in arch_strs):
        raise DataError(f"{path}: 'meta_archs' must be a list of arch strings")
    # Results under any other key would be silently dropped by the index loop below.
    stray = [k for k in api.arch2infos_dict if not (isinstance(k, int) and 0 <= k < n)]
    if stray:
        raise DataError(
            f"{path}: 'arch2infos' has keys that are not arch indices 0..{n - 1}: {stray[:5]}"
        )

    columns = {name: np.full(n, math.nan) for name in (*ACCURACY_COLUMNS, PARAMS_COLUMN)}
    bar = tqdm(range(n), desc="NAS-Bench-201 archs", unit="arch", disable=not progress or n < 2000,
               leave=False, dynamic_ncols=True)
    for i in bar:
        if i not in api.arch2infos_dict:  # never evaluated: the row stays NaN
            continue
        try:
            results = api.arch2infos_dict[i][HP_200_EPOCHS]
            # Reading the runs' recorded numbers directly gives the same seed means as
            # ArchResults.get_metrics / get_compute_costs, ~20x faster: those also sum 200 epochs
            # of timings on every call (~30 s over the full file).
            runs_by_dataset = {
                dataset: [results.all_results[(dataset, seed)] for seed in seeds]
                for dataset, seeds in results.dataset_seed.items()
            }
            for runs in runs_by_dataset.values():
                for run in runs:
                    if run.epochs != FULL_EPOCHS:
                        raise DataError(
                            f"{path}: arch {i}: the 200-epoch ('full') results of {run.name} have "
                            f"{run.epochs} epochs"
                        )
            for name, (dataset, set_name) in ACCURACY_COLUMNS.items():
                columns[name][i] = _final_value(runs_by_dataset.get(dataset, []), set_name)
            param_runs = runs_by_dataset.get(PARAMS_DATASET, [])
            if param_runs:
                columns[PARAMS_COLUMN][i] = float(np.mean([float(run.params) for run in param_runs]))
        except DataError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{path}: malformed results for arch {i} ({type(exc).__name__}: {exc})"
            ) from None
    return NB201Table(arch_strs=arch_strs, columns=columns, source=str(path))
