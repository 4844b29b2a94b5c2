"""What one candidate's graph costs in a whole-network search of an NNI model space: the export path and the
fast path, side by side on the same candidates.

Export path, the steps the search paid before the fast path (and still pays where the fast path refuses a
network): NNI freezes the sample into a network (``freeze``), the legacy TorchScript exporter writes it as
weight-free ONNX (``export``), nas_predictor.onnx reads the ArchGraph (``read``).

Fast path, what ``search_spaces.python_space.PythonSpace.to_graph`` does now: the network read from the model
space's own modules (``view``, strategies.nni_bridge.frozen_view; NNI's freeze where no view applies) and its
graph stitched from cached per-module fragments (``stitch``, nas_predictor.onnx.fragments).

Both then pay the online surrogate's tokenizer (``encode``) and the search's equivalence key (``key``). Spaces:
the hub's NasBench201 searched as an opaque network (``whole_network=True``) and a small mobile CNN of NNI
mutables, at 32x32 and 224x224. Medians over ``--candidates`` random samples after ``--warmup`` candidates,
one torch thread; the fast path is first warmed on ``--fast-warmup`` other candidates ("once warm": its
fragments cached), and every measured candidate's two graphs are compared (``same_graphs``). For reference,
our nasbench201 space writing its own network's ONNX (search_spaces/nb201_onnx.py, the cell path's network)
on the same cells.

    python benchmarks/nni_graph_speed.py --candidates 20 --note "load ~2"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

from nas_predictor.onnx import onnx_to_graph  # noqa: E402
from nas_predictor.onnx.export import export_onnx  # noqa: E402
from nas_predictor.onnx.fragments import DEFAULT_CACHE, Unsupported, module_graph  # noqa: E402
from nas_predictor.online import NETWORK_ENCODING  # noqa: E402
from search_spaces.python_space import graph_key  # noqa: E402

EXPORT_STEPS = ("freeze", "export", "read", "encode", "key")
FAST_STEPS = ("view", "stitch", "encode", "key")


def mobile_space():
    """Stem, four stages of inverted residual blocks (kernel 3/5/7, expansion 3/6, depth 1-3 and width
    per stage), a 1x1 head, a classifier: 3**4 * 2**4 * 3**4 * 2**4 = 1.7 M networks."""
    import nni
    from nni.nas.nn.pytorch import ModelSpace, MutableConv2d, ParametrizedModule, Repeat
    from torch import nn

    class InvertedResidual(ParametrizedModule):
        def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int) -> None:
            super().__init__()
            mid = cin * expand
            self.residual = stride == 1 and cin == cout
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileSpace(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
            stages, cin = [], 16
            for i, widths in enumerate([(16, 24), (32, 40), (64, 80), (96, 112)]):
                width = nni.choice(f"s{i}_width", list(widths))
                kernel, expand = nni.choice(f"s{i}_kernel", [3, 5, 7]), nni.choice(f"s{i}_expand", [3, 6])

                def block(j, cin=cin, width=width, kernel=kernel, expand=expand, stride=1 if i == 0 else 2):
                    return InvertedResidual(cin if j == 0 else width, width, kernel, expand, stride if j == 0 else 1)

                stages.append(Repeat(block, nni.choice(f"s{i}_depth", [1, 2, 3])))
                cin = width
            self.stages = nn.Sequential(*stages)
            self.head = nn.Sequential(MutableConv2d(cin, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))

        def forward(self, x):
            return self.head(self.stages(self.stem(x)))

    return MobileSpace()


def _medians(times: dict[str, list[float]], steps: tuple[str, ...]) -> dict:
    totals = [sum(times[s][i] for s in steps) for i in range(len(times[steps[0]]))]
    return {"median_ms": {s: round(statistics.median(times[s]), 1) for s in steps},
            "total_median_ms": round(statistics.median(totals), 1),
            "total_p90_ms": round(float(np.percentile(totals, 90)), 1)}


def _fast(space, arch: str) -> tuple[object, list[float]]:
    """The fast path's graph of ``arch`` and its step times (ms); None where the stitching refuses it."""
    t = [time.perf_counter()]
    network = space.graph_network(arch)
    t.append(time.perf_counter())
    try:
        graph = module_graph(network, space.network_input_shape(arch))
    except Unsupported:
        graph = None
    t.append(time.perf_counter())
    return graph, [1e3 * (b - a) for a, b in zip(t, t[1:])]


def time_space(space, candidates: int, warmup: int, fast_warmup: int, seed: int) -> dict:
    """Median milliseconds per step of both paths over ``candidates`` random samples of an NNISpace."""
    tokenizer = NETWORK_ENCODING.tokenizer()
    rng = np.random.default_rng(seed)
    for _ in range(fast_warmup):  # other candidates than the measured ones: the fragments of the space's modules
        _fast(space, space.sample(rng))
    pieces = len(DEFAULT_CACHE.pieces)
    exported = {step: [] for step in EXPORT_STEPS}
    fast = {step: [] for step in FAST_STEPS}
    nodes, same, refused = [], 0, 0
    for i in range(warmup + candidates):
        arch = space.sample(rng)
        t = [time.perf_counter()]
        network = space.build_network(arch)
        t.append(time.perf_counter())
        onnx_bytes = export_onnx(network, space.network_input_shape(arch))
        t.append(time.perf_counter())
        graph = onnx_to_graph(onnx_bytes)
        t.append(time.perf_counter())
        tokenizer.node_features(graph), tokenizer.static_features(graph), tokenizer.runtime_graph(graph)
        t.append(time.perf_counter())
        key = graph_key(graph)
        t.append(time.perf_counter())
        stitched, fast_steps = _fast(space, arch)
        if stitched is None:  # refused: this candidate is exported
            refused += i >= warmup
            fast_steps[1] += sum(1e3 * (b - a) for a, b in zip(t[0:3], t[1:4]))  # freeze, export, read
            stitched = graph
        u = [time.perf_counter()]
        tokenizer.node_features(stitched), tokenizer.static_features(stitched), tokenizer.runtime_graph(stitched)
        u.append(time.perf_counter())
        fast_key = graph_key(stitched)
        u.append(time.perf_counter())
        if i >= warmup:
            for step, start, end in zip(EXPORT_STEPS, t, t[1:]):
                exported[step].append(1e3 * (end - start))
            for step, ms in zip(FAST_STEPS, fast_steps + [1e3 * (b - a) for a, b in zip(u, u[1:])]):
                fast[step].append(ms)
            nodes.append(len(graph.ops))
            same += fast_key == key
    return {"export_path": _medians(exported, EXPORT_STEPS),
            "fast_path": {**_medians(fast, FAST_STEPS), "refused": refused,
                          "pieces_exported_while_measured": len(DEFAULT_CACHE.pieces) - pieces},
            "same_graphs": f"{same}/{candidates}", "median_nodes": int(statistics.median(nodes)),
            "candidates": candidates, "fast_warmup": fast_warmup}


def time_nb201_written(cells: list[str]) -> dict:
    """Our nasbench201 network written straight as ONNX, read and encoded (the same steps, no freeze or export)."""
    from nas_predictor.spaces import get_space

    space, tokenizer = get_space("nasbench201"), NETWORK_ENCODING.tokenizer()
    totals = []
    for cell in cells:
        t0 = time.perf_counter()
        graph = onnx_to_graph(space.network_onnx(cell))
        tokenizer.node_features(graph), tokenizer.static_features(graph), tokenizer.runtime_graph(graph)
        graph_key(graph)
        totals.append(1e3 * (time.perf_counter() - t0))
    return {"total_median_ms": round(statistics.median(totals), 1), "candidates": len(cells)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--fast-warmup", type=int, default=30,
                        help="candidates the fast path reads before the measured ones (its fragments cached)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "nni_graph_speed.json"))
    parser.add_argument("--note", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # NNI's warnings about torch classes it does not know
    torch.set_num_threads(1)

    from nni.nas.hub.pytorch import NasBench201

    from strategies.nni_bridge.mapping import nb201_sample_to_arch
    from strategies.nni_bridge.space import nni_space

    spaces = {"nb201_hub_opaque_32": nni_space(NasBench201(), (1, 3, 32, 32), "bench-nni-nb201"),
              "mobile_cnn_32": nni_space(mobile_space(), (1, 3, 32, 32), "bench-nni-mobile-32"),
              "mobile_cnn_224": nni_space(mobile_space(), (1, 3, 224, 224), "bench-nni-mobile-224")}
    results = {}
    for name, space in spaces.items():
        results[name] = time_space(space, args.candidates, args.warmup, args.fast_warmup, args.seed)
        print(name, results[name], flush=True)
    hub = spaces["nb201_hub_opaque_32"]
    rng = np.random.default_rng(args.seed)
    cells = [nb201_sample_to_arch(hub.to_sample(hub.sample(rng))) for _ in range(args.warmup + args.candidates)]
    results["nb201_ours_written_32"] = time_nb201_written(cells)
    print("nb201_ours_written_32", results["nb201_ours_written_32"], flush=True)
    save_results(Path(args.out), {"benchmark": "nni_graph_speed", "command": command_line(), "machine": machine(),
                                  "torch_threads": 1, "note": args.note, "results": results})


if __name__ == "__main__":
    main()
