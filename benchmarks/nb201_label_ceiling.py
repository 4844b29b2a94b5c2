"""How well do the benchmark's own labels rank each other? (A ceiling for predictors trained on one
label and evaluated on another.)

    python benchmarks/nb201_label_ceiling.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.data import load_nb201_table  # noqa: E402
from nas_predictor.metrics import kendall_tau  # noqa: E402

COLUMNS = ["c10valid_valid_200ep", "c10valid_test_200ep", "c10_test_200ep", "c10_test_200ep_natsv1"]


def main() -> None:
    table = load_nb201_table()
    pairs = {
        f"{a} vs {b}": kendall_tau(table.column(a), table.column(b)) for a, b in itertools.combinations(COLUMNS, 2)
    }
    save_results(RESULTS / "nb201_label_ceiling.json",
                 {"benchmark": "nb201_label_ceiling", "command": command_line(), "machine": machine(),
                  "num_archs": len(table), "kendall_tau": pairs})
    for name, tau in pairs.items():
        print(f"{tau:.4f}  {name}")


if __name__ == "__main__":
    main()
