"""Check that the NAS-Bench-201 network written straight as ONNX (search_spaces/nb201_onnx.py) reads exactly
as the exporter's graph of the torch module, on the whole space or a sample of it.

The test suite checks the cases that matter (every op, the inputs the exporter merges) in seconds; this
tool is the exhaustive check to run after changing either builder, or the exporter's torch version:

    python tools/check_nb201_onnx.py --all --workers 2      # 15,625 networks, about 50 min of one core
    python tools/check_nb201_onnx.py --sample 500           # a seeded sample

Exits 1 naming the first architectures whose graphs differ.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402


def same(arch: str) -> tuple[str, bool]:
    import torch

    from nas_predictor.onnx import onnx_to_graph
    from nas_predictor.onnx.export import export_onnx
    from search_spaces.nb201_network import build_nb201_network
    from search_spaces.nb201_onnx import nb201_onnx

    torch.set_num_threads(1)
    exported = onnx_to_graph(export_onnx(build_nb201_network(arch), (1, 3, 32, 32)))
    return arch, onnx_to_graph(nb201_onnx(arch)).to_dict() == exported.to_dict()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every architecture of the space")
    which.add_argument("--sample", type=int, metavar="N", help="N architectures drawn with --seed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="processes (each exports with one thread)")
    args = ap.parse_args(argv)
    from nas_predictor.spaces import get_space

    archs = list(get_space("nasbench201"))
    if args.sample is not None:
        archs = list(np.random.default_rng(args.seed).choice(archs, min(args.sample, len(archs)), replace=False))
    differ = []
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for arch, ok in tqdm(pool.map(same, archs, chunksize=16), total=len(archs), desc="comparing", unit="net"):
            if not ok:
                differ.append(arch)
    print(f"{len(archs) - len(differ)} of {len(archs)} networks read the same from both builders")
    for arch in differ[:10]:
        print(f"differs: {arch}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
