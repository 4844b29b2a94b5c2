"""Constants, the budget and the log line shared by the stages of benchmarks/gpu_latency.py."""

from __future__ import annotations

import time
from pathlib import Path

from common import RESULTS

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "benchmarks" / "latency_dataset"
CONFIG = ROOT / "configs" / "latency_cpu_ort.yaml"
RESULTS_FILE = RESULTS / "latency_gpu.json"
SAVE_DIR = ROOT / "runs" / "latency_gpu"
SETTING = "gpu_torch_b1"
FOLDERS = {"networks": "gpu_torch_b1", "operators": "gpu_torch_b1_ops",
           "ort_networks": "gpu_ort_cuda_b1", "ort_operators": "gpu_ort_cuda_b1_ops"}
SHIP_NAME = "latency-gpu-torch"
PER_FAMILY, PER_KIND = 200, 150  # the CPU recipe's targets; a session stops at its share long before
# Budget shares of the labelling stages; what they leave (and an unavailable stage's share) trains.
SHARES = {"networks": 0.50, "operators": 0.10, "ort_networks": 0.08, "ort_operators": 0.04}
RESERVE_S = 20.0  # kept for writing the results
SHIP_S = 60.0  # ship_latency.py re-prepares the data and evaluates two dtypes
MIN_OPS = 10  # nas_predictor.op_latency fits no per-operator model on fewer
MIN_EPOCHS = 5
SEEDS = (0, 1, 2)
MODEL_ORDER = ("grounded", "op_sum", "op_sum_fit", "flops_memory_line", "gbdt", "graph", "nnlp_gnn")
NEURAL = ("grounded", "graph", "nnlp_gnn")
NEEDS_OPS = ("grounded", "op_sum", "op_sum_fit")
LOFO_MODELS = ("grounded", "op_sum_fit", "flops_memory_line")
# --dry-run: the fastest families to export and run on a CPU; 3 seeds each so the split has a test
# network per family; 5 seeds of 2 kinds = the op model's minimum of 10
DRY = {"families": ("nasbench201", "convnext", "shufflenet"), "per_family": 3, "kinds": ("conv", "softmax"),
       "per_kind": 5, "epochs": 1, "op_model_epochs": 50, "lofo_families": 1,
       "models": ("grounded", "op_sum_fit", "flops_memory_line"), "seeds": (0,),
       # 3 networks per family: 1 train, 1 valid, 1 test
       "overrides": ("data.train_fraction=0.67", "data.valid_fraction=0.5", "train.threads=1")}


class UsageError(Exception):
    """Bad input: one line, exit status 2."""


def log(start: float, message: str) -> None:
    print(f"[gpu_latency {time.monotonic() - start:6.1f} s] {message}", flush=True)


class Budget:
    def __init__(self, minutes: float) -> None:
        self.start = time.monotonic()
        self.total_s = 60.0 * minutes

    def left(self) -> float:
        return self.total_s - (time.monotonic() - self.start)


