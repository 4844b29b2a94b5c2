"""How well do the benchmark's own labels rank each other? (A ceiling for predictors trained on one
label and evaluated on another.) Also with the first label averaged over functionally equivalent cells,
the same averaging our predictors apply: it shows how much of the gap is per-cell training noise.

    python benchmarks/nb201_label_ceiling.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.data import load_nb201_table  # noqa: E402
from nas_predictor.equivalence import class_mean  # noqa: E402
from nas_predictor.metrics import kendall_tau  # noqa: E402
from search_spaces.nasbench201 import NASBench201  # noqa: E402

COLUMNS = ["c10valid_valid_200ep", "c10valid_test_200ep", "c10_test_200ep", "c10_test_200ep_natsv1"]


def main() -> None:
    table = load_nb201_table()
    pairs = {
        f"{a} vs {b}": kendall_tau(table.column(a), table.column(b)) for a, b in itertools.combinations(COLUMNS, 2)
    }
    space = NASBench201()
    averaged = {}
    for a, b in itertools.combinations(COLUMNS, 2):
        known = dict(zip(table.arch_strs, table.column(a)))
        mean_a = class_mean(space, table.arch_strs, None, known=known, partial=True)
        averaged[f"class-mean {a} vs {b}"] = kendall_tau(mean_a, table.column(b))
    pairs.update(averaged)
    save_results(RESULTS / "nb201_label_ceiling.json",
                 {"benchmark": "nb201_label_ceiling", "command": command_line(), "machine": machine(),
                  "num_archs": len(table), "kendall_tau": pairs})
    for name, tau in pairs.items():
        print(f"{tau:.4f}  {name}")


if __name__ == "__main__":
    main()
