"""Averaging predictions over architectures that compute the same function.

A search space may know that several of its architectures are the same network (NAS-Bench-201: dead
ops, ``none`` edges, identity skips; see ``SearchSpace.equivalence_key``). Their benchmark labels then
differ only by training noise, so the best estimate for each is the mean prediction over its class.
On NAS-Bench-201 this makes the predictor exactly invariant to such rewrites and raised Kendall tau by
0.003-0.015 for the same trained weights (benchmarks/results/nb201_accuracy_*.json).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np


def class_mean(
    space: Any, archs: Sequence[str], score: Callable[[list[str]], np.ndarray] | None,
    known: Mapping[str, float] | None = None, partial: bool = False,
) -> np.ndarray:
    """For each arch, the mean of ``score`` over its equivalence class.

    ``score`` is called once, on the class members not already in ``known`` (arch -> score), so
    averaging the predictions for a whole space costs nothing extra. With ``partial`` nothing is
    scored: each class is averaged over its members in ``known`` (the arch itself must be there).
    """
    keys = [space.equivalence_key(a) for a in archs]
    members: dict[str, list[str]] = {}
    for arch, key in zip(archs, keys):
        if key not in members:
            members[key] = space.equivalent_archs(arch)
    known = dict(known or {})
    if partial:
        members = {key: [m for m in group if m in known] for key, group in members.items()}
    todo = [a for a in dict.fromkeys(m for group in members.values() for m in group) if a not in known]
    if todo:
        if score is None:
            raise ValueError(f"{len(todo)} architectures need scores but no score function was given")
        known.update(zip(todo, np.asarray(score(todo), dtype=np.float64).tolist()))
    means = {key: float(np.mean([known[m] for m in group])) for key, group in members.items()}
    return np.array([means[k] for k in keys], dtype=np.float64)
