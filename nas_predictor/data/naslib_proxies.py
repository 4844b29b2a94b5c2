"""The published zero-cost proxy scores of NASLib's subsets (``naslib_zc_subsets``, shared data): what our
own proxies (nas_predictor/zero_cost.py) are validated against (benchmarks/zero_cost_validation.py).

NAS-Bench-201 (``zc_nasbench201.json``, 725 CIFAR-10 cells): a key is NASLib's 6-tuple of op indices over
the edges (1,2), (1,3), (1,4), (2,3), (2,4), (3,4) with NASLib's op order; every proxy is ``{"score",
"time"}``. NAS-Bench-101 (``zc_nasbench101.json``, 500 cells): a key is the 7x7 adjacency and 7 op codes
(:func:`nas_predictor.data.nb101._naslib_cell`); every proxy is a plain number. NASLib calls NASWOT
``nwot``; here it is ``naswot``, as in nas_predictor.zero_cost.
"""

from __future__ import annotations

import ast
import json
import os

from nas_predictor.data.paths import resolve_data_dir
from nas_predictor.errors import DataError

NB201_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")  # NASLib's order
NAMES = {"nwot": "naswot"}
PROXY_KEYS = ("synflow", "jacov", "nwot", "snip", "grad_norm", "params", "flops", "grasp", "fisher", "epe_nas",
              "l2_norm", "plain")


def _nb201_arch(key: str) -> str:
    t = ast.literal_eval(key)
    o = [NB201_OPS[i] for i in t]
    return f"|{o[0]}~0|+|{o[1]}~0|{o[3]}~1|+|{o[2]}~0|{o[4]}~1|{o[5]}~2|"


def load_naslib_proxies(space: str, data_dir: str | os.PathLike | None = None) -> dict[str, dict[str, float]]:
    """{arch string: {proxy: published score}} for ``space`` "nasbench201" (CIFAR-10) or "nasbench101"."""
    from nas_predictor.data.nb101 import _naslib_cell
    from nas_predictor.nb101_cell import format_arch

    files = {"nasbench201": "zc_nasbench201.json", "nasbench101": "zc_nasbench101.json"}
    if space not in files:
        raise DataError(f"NASLib publishes zero-cost scores for {', '.join(files)}, not {space!r}")
    path = resolve_data_dir(data_dir) / "naslib_zc_subsets" / files[space]
    if not path.is_file():
        raise DataError(f"NASLib zero-cost scores not found at {path}")
    data = json.loads(path.read_text())
    cells = data["cifar10"] if space == "nasbench201" else data["nasbench101"]["cifar10"]
    out: dict[str, dict[str, float]] = {}
    for key, entry in cells.items():
        arch = _nb201_arch(key) if space == "nasbench201" else format_arch(_naslib_cell(key, path))
        scores = {}
        for name in PROXY_KEYS:
            if name in entry:
                value = entry[name]["score"] if isinstance(entry[name], dict) else entry[name]
                scores[NAMES.get(name, name)] = float(value)
        out.setdefault(arch, scores)  # NB101: isomorphic cells share a canonical string; the first is kept
    return out
