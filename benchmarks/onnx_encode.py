"""ONNX -> ArchGraph -> tokens: speed and robustness on a zoo of real network designs.

Every zoo model is exported at several opsets, with and without weights and with and without the
exporter's constant folding (BN fused or not), and read by nas_predictor.onnx. Records per graph:
success, node count, encode time (median of repeats, one torch thread), and any warning.

    python benchmarks/onnx_encode.py --repeats 20
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402
from model_zoo import ZOO  # noqa: E402

from nas_predictor.network_encoding import NetworkTokenizer  # noqa: E402
from nas_predictor.onnx import onnx_to_graph  # noqa: E402


def export(model: torch.nn.Module, shape, opset: int, params: bool, fold: bool) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(*shape), buf, opset_version=opset, dynamo=False,
                          export_params=params, do_constant_folding=fold)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--opsets", type=int, nargs="+", default=[11, 13, 17])
    parser.add_argument("--out", default=str(RESULTS / "onnx_encode.json"))
    parser.add_argument("--note", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = NetworkTokenizer()
    rows = []
    for name, (build, shape) in ZOO.items():
        torch.manual_seed(0)
        model = build()
        for opset in args.opsets:
            for params, fold in ((False, False), (True, True)):
                variant = f"{name}@opset{opset}{'' if params else ' weight-free'}{' folded' if fold else ''}"
                row = {"graph": variant, "model": name, "opset": opset, "weights": params, "constant_folding": fold}
                try:
                    data = export(model, shape, opset, params, fold)
                except Exception as err:  # an exporter limitation, not ours: recorded, not counted against us
                    row.update(exported=False, export_error=f"{type(err).__name__}: {str(err)[:200]}")
                    rows.append(row)
                    continue
                row["exported"] = True
                row["onnx_bytes"] = len(data)
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        graph = onnx_to_graph(data)
                        tokenizer.encode([graph])
                    times, encode_times = [], []
                    for _ in range(args.repeats):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            t = time.perf_counter()
                            g = onnx_to_graph(data)
                            times.append(time.perf_counter() - t)
                            t = time.perf_counter()
                            tokenizer.encode([g])
                            encode_times.append(time.perf_counter() - t)
                    row.update(ok=True, nodes=graph.num_nodes, gflops=graph.scalars["flops"] / 1e9,
                               params_m=graph.scalars["params"] / 1e6,
                               onnx_to_graph_ms=1000 * statistics.median(times),
                               tokens_ms=1000 * statistics.median(encode_times),
                               warnings=sorted({str(w.message)[:160] for w in caught}))
                except Exception as err:  # a failure of ours
                    row.update(ok=False, error=f"{type(err).__name__}: {str(err)[:300]}")
                rows.append(row)
                print(f"{variant:45s} " + (f"{row['nodes']:4d} nodes {row['onnx_to_graph_ms']:7.2f} ms + tokens "
                      f"{row['tokens_ms']:6.2f} ms" if row.get("ok") else row.get("error", row.get("export_error", ""))),
                      flush=True)
    exported = [r for r in rows if r["exported"]]
    summary = {"graphs_exported": len(exported), "graphs_encoded": sum(r.get("ok", False) for r in exported),
               "failures": [r["graph"] for r in exported if not r.get("ok")]}
    for name in ("resnet50", "mobilenet_v2"):
        ms = [r["onnx_to_graph_ms"] + r["tokens_ms"] for r in exported if r["model"] == name and r.get("ok")]
        if ms:
            summary[f"{name}_ms_median_over_variants"] = statistics.median(ms)
    save_results(Path(args.out), {"benchmark": "onnx_encode", "command": command_line(), "machine": machine(),
                                  "repeats": args.repeats, "note": args.note, "summary": summary, "graphs": rows})
    print(summary)


if __name__ == "__main__":
    main()
