"""The names ``nas-predictor search`` offers (spaces, strategies) and its folder lock, in a module that imports
nothing heavy, so ``nas-predictor --help`` never imports torch or optuna to list them."""

from __future__ import annotations

#: short names accepted for spaces
SPACE_ALIASES = {"nb201": "nasbench201", "nasbench201": "nasbench201", "nb101": "nasbench101",
                 "nasbench101": "nasbench101", "fbnet": "fbnet", "ofa": "ofa_mbv3", "ofa_mbv3": "ofa_mbv3"}
#: strategies by CLI name (strategies.runner.make_strategy builds them)
STRATEGIES = ("random", "evolution", "tpe", "predictor")
#: the lock file one search holds in its output folder
LOCK_NAME = ".search.lock"
#: the setting of a measured latency bound (``--latency-source measured``): onnxruntime on this machine's CPU,
#: one thread, batch 1; the shipped ``latency-cpu-ort`` predicts the same setting for the machine it was
#: measured on
MEASURED_SETTING = "cpu_ort_1t"
