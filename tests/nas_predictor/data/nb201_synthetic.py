"""Build tiny NAS-Bench-201 benchmark files with the same structure as the official ``.pth`` files.

Everything is plain data (dicts, lists, tuples, str, int, float, optionally numpy scalars), never
the API's classes, so the file can be read with ``torch.load(..., weights_only=True)`` exactly like
the real one. The layout mirrors what ``NASBench201API.__init__`` and
``ArchResults/ResultsCount.create_from_state_dict`` consume (see the module docstring of
``nas_predictor.data.nb201_official``).

The 200-epoch ('full') numbers asked for are stored at the last epoch only; every other epoch and
the 12-epoch ('less') schedule get different values, so a reader that picks the wrong epoch or
schedule produces wrong numbers instead of passing by accident.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

# Evaluation sets the official training runs recorded for each dataset (v1_1 layout).
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("ori-test", "x-valid", "x-test"),
    "ImageNet16-120": ("ori-test", "x-valid", "x-test"),
}
CLASS_NUM = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}

Ragged = Sequence[Sequence[float]]

# How numpy 1.x (and so the 2020 benchmark files) names the scalar constructor in a pickle.
NUMPY1_SCALAR_GLOBAL = b"numpy.core.multiarray\nscalar\n"


def _test_split(x_test: float) -> dict[str, float]:
    # x-valid and x-test are the two halves of ori-test; distinct values make mix-ups visible.
    return {"x-test": x_test, "x-valid": x_test + 1.0, "ori-test": x_test + 0.5}


def _results_count(
    dataset: str,
    seed: int,
    arch_str: str,
    epochs: int,
    final_acc: dict[str, float],
    params: float,
    numpy_scalars: bool,
) -> dict:
    """State dict of one ``ResultsCount`` (one training run of one arch on one dataset)."""

    def curve(final: float) -> dict[str, float]:
        # Only the last epoch carries the requested value; earlier epochs are lower.
        return {e: final * (e + 1) / epochs for e in range(epochs)}

    eval_acc1es, eval_losses, eval_times = {}, {}, {}
    for set_name in EVAL_SETS[dataset]:
        for e, acc in curve(final_acc.get(set_name, 50.0)).items():
            key = f"{set_name}@{e}"
            eval_acc1es[key] = acc
            eval_losses[key] = 1.0 / (1.0 + e)
            eval_times[key] = 0.5
    train = curve(final_acc.get("train", 99.0))
    return {
        "name": dataset,
        "net_state_dict": None,  # the public files ship without weights
        "train_acc1es": train,
        "train_acc5es": dict(train),
        "train_losses": {e: 1.0 / (1.0 + e) for e in range(epochs)},
        "train_times": {e: 10.0 for e in range(epochs)},
        "arch_config": {
            "channel": 16, "num_cells": 5, "arch_str": arch_str, "class_num": CLASS_NUM[dataset],
        },
        # AutoDL's count_parameters_in_MB returns numpy.float64; the real files carry that type.
        "params": np.float64(params) if numpy_scalars else float(params),
        "flop": 10.0 * params,
        "seed": seed,
        "epochs": epochs,
        "latency": [np.float64(0.01)] if numpy_scalars else [0.01],
        "eval_names": list(EVAL_SETS[dataset]),
        "eval_acc1es": eval_acc1es,
        "eval_times": eval_times,
        "eval_losses": eval_losses,
    }


def _arch_results(index: int, arch_str: str, epochs: int, per_run: dict, numpy_scalars: bool) -> dict:
    """State dict of one ``ArchResults``; per_run maps (dataset, seed) -> ({set: acc}, params)."""
    all_results, dataset_seed = {}, {}
    for (dataset, seed), (accs, params) in per_run.items():
        all_results[(dataset, seed)] = _results_count(
            dataset, seed, arch_str, epochs, accs, params, numpy_scalars
        )
        dataset_seed.setdefault(dataset, []).append(seed)
    return {
        "arch_index": index,
        "arch_str": arch_str,
        "all_results": all_results,
        "dataset_seed": {k: sorted(v) for k, v in dataset_seed.items()},
        "clear_net_done": True,
    }


def write_tiny_nb201_pth(
    path: str | os.PathLike,
    arch_strs: Sequence[str],
    valid_acc: Ragged,
    test_acc: Ragged,
    *,
    c10_test_acc: Ragged | None = None,
    c100_test_acc: Ragged | None = None,
    in16_test_acc: Ragged | None = None,
    params_mb: Sequence[float] | None = None,
    seeds: Sequence[int] | Sequence[Sequence[int]] = (777, 888),
    unevaluated: Sequence[int] = (),
    legacy_format: bool = False,
    numpy_scalars: bool = False,
) -> dict[str, np.ndarray]:
    """Write a NAS-Bench-201-format file and return the expected per-arch means (percent / MB).

    ``valid_acc[i][k]`` / ``test_acc[i][k]``: cifar10-valid x-valid / ori-test accuracy of arch i
    with its k-th seed at the end of the 200-epoch schedule. The cifar10 / cifar100 /
    ImageNet16-120 test accuracies default to ``test_acc`` shifted by +0.5 / -20 / -45.
    ``seeds`` is one seed list for all archs or one list per arch (archs may differ in the number
    of runs, as in the real file). Archs listed in ``unevaluated`` appear in ``meta_archs`` but have
    no results (their expected means are NaN). ``legacy_format`` writes the pre-1.6 (non-zip) torch
    format, as torch did when the official files were made in early 2020. ``numpy_scalars`` stores
    params and latencies as numpy.float64, as the official files do; in the legacy format the
    scalar constructor is then renamed to its numpy 1.x spelling (``numpy.core.multiarray.scalar``).
    """
    n = len(arch_strs)
    if seeds and isinstance(seeds[0], (int, np.integer)):
        seeds_per_arch = [list(seeds)] * n
    else:
        seeds_per_arch = [list(s) for s in seeds]
    shift = lambda rows, d: [[a + d for a in row] for row in rows]  # noqa: E731
    c10 = c10_test_acc if c10_test_acc is not None else shift(test_acc, 0.5)
    c100 = c100_test_acc if c100_test_acc is not None else shift(test_acc, -20.0)
    in16 = in16_test_acc if in16_test_acc is not None else shift(test_acc, -45.0)
    params = list(params_mb) if params_mb is not None else [0.1 * (i + 1) for i in range(n)]
    table = {"valid_acc": valid_acc, "test_acc": test_acc, "c10": c10, "c100": c100, "in16": in16}
    for name, rows in table.items():
        if len(rows) != n or any(len(r) != len(s) for r, s in zip(rows, seeds_per_arch)):
            raise ValueError(f"{name} must have one value per (arch, seed)")

    arch2infos = {}
    for i, arch in enumerate(arch_strs):
        if i in unevaluated:
            continue
        full, less = {}, {}
        for k, seed in enumerate(seeds_per_arch[i]):
            runs = {
                "cifar10-valid": {"x-valid": valid_acc[i][k], "ori-test": test_acc[i][k]},
                "cifar10": {"ori-test": c10[i][k]},
                "cifar100": _test_split(c100[i][k]),
                "ImageNet16-120": _test_split(in16[i][k]),
            }
            for dataset, accs in runs.items():
                full[(dataset, seed)] = (accs, params[i])
                less[(dataset, seed)] = ({s: a - 30.0 for s, a in accs.items()}, params[i])
        arch2infos[i] = {
            "full": _arch_results(i, arch, 200, full, numpy_scalars),
            "less": _arch_results(i, arch, 12, less, numpy_scalars),
        }

    blob = {
        "meta_archs": list(arch_strs),
        "total_archs": n,
        "arch2infos": arch2infos,
        "evaluated_indexes": sorted(arch2infos),
    }
    torch.save(blob, path, _use_new_zipfile_serialization=not legacy_format)
    if legacy_format and numpy_scalars:
        # Legacy files are a plain sequence of protocol-2 pickles with newline-terminated GLOBAL
        # names and no length prefixes, so renaming the module in place keeps the file valid.
        with open(path, "rb") as fh:
            data = fh.read()
        with open(path, "wb") as fh:
            fh.write(data.replace(b"numpy._core.multiarray\nscalar\n", NUMPY1_SCALAR_GLOBAL))

    def means(rows: Ragged) -> np.ndarray:
        return np.array(
            [np.nan if i in unevaluated else float(np.mean(rows[i])) for i in range(n)], dtype=np.float64
        )

    return {
        "c10valid_valid_200ep": means(valid_acc),
        "c10valid_test_200ep": means(test_acc),
        "c10_test_200ep": means(c10),
        "c100_test_200ep": means(c100),
        "in16_test_200ep": means(in16),
        "params_M": np.array([np.nan if i in unevaluated else params[i] for i in range(n)]),
    }
