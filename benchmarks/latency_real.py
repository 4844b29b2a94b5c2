"""Latency on real networks, from generated families and operator micro-benchmarks (issue 27).

Every model is trained on the generated families measured on this machine (``configs/latency_cpu_ort.yaml``:
``benchmarks/latency_dataset/cpu_ort_1t``, in-domain split) and scored on the held-out real
torchvision/timm networks measured on the same machine (``benchmarks/latency_dataset/real_networks_cpu_1t``),
never used for training, early stopping or recipe choice. Models, all in the same run:

- ``grounded``: the graph model with each node's per-operator time (op-latency column) and the grounded
  readout (the combination);
- ``op_feature``: the graph model with each node's per-operator time as a token feature only (roofline
  readout, no grounded term);
- ``graph``: the same graph model without the per-operator times (roofline readout): the graph model alone;
- ``op_sum``: the sum of the per-operator predictions (nn-Meter's idea), as is; ``op_sum_fit`` the same
  times one factor fitted on the training networks; ``op_sum_offset`` the same less a fixed cost per
  node that isolated operators pay and networks do not, both fitted on the training networks
  (nas_predictor.op_offset); ``op_sum_groups`` one such scale per operator kind (dense and grouped
  convs, matmuls, activations, ...), ridge-pulled to their mean;
- ``nnlp_gnn``: NNLQP's GNN on the same tokens (softplus output, sum readout, as benchmarks/latency.py);
- ``gbdt``: gradient-boosted trees on the static cost features; ``flops_memory_line``: least squares on
  FLOPs and memory traffic.

Tables: the real networks on this machine (all, the families seen in training, the never-seen ones);
after calibrating with 5 timed networks (20 random draws, scored on the rest; the line is refitted on
the 5, the others get one factor, ``calibration.fit_log_scale``); and, with ``--lofo``, leave one
generated family out. Resumable: each finished (seed, model) is appended to the results JSON. A
leave-one-family-out run of only the models that train no network (the op sums, GBDT, the line) reads
the dataset and fits the operator model once per seed, not once per family (every family but the
held-out one is their training set).

    python benchmarks/latency_real.py --seeds 0 1 2 --save-dir runs/latency_cpu_ort
    python benchmarks/latency_real.py --lofo --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, append_locked, command_line, load_results, machine, update_locked  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from nas_predictor.baselines import CostGBDT, CostLinearRegression  # noqa: E402
from nas_predictor.calibration import fit_log_scale  # noqa: E402
from nas_predictor.config import LatencyExperimentConfig, load_config  # noqa: E402
from nas_predictor.latency_experiment import LatencyRecords, prepare_latency_data, run_latency_experiment  # noqa: E402
from nas_predictor.op_latency import fit_from_dataset  # noqa: E402
from nas_predictor.op_offset import fit_op_groups, fit_op_offset, node_groups  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "latency_cpu_ort.yaml"
REAL_LABELS = ROOT / "benchmarks" / "latency_dataset" / "real_networks_cpu_1t"
ONNX_DIR = Path(os.environ.get("NAS_PREDICTOR_REAL_NETWORKS_DIR", Path.home() / ".cache" / "nas-predictor" / "real-networks"))
NEURAL = ("grounded", "graph", "nnlp_gnn", "op_feature")
OP_SUMS = ("op_sum", "op_sum_fit", "op_sum_offset", "op_sum_groups")
MODELS = (*NEURAL, *OP_SUMS, "gbdt", "flops_memory_line")
SHOTS, DRAWS = 5, 20


def model_overrides(name: str) -> list[str]:
    """Config overrides that turn the shipped recipe into each neural model."""
    if name == "grounded":
        return []
    if name == "op_feature":
        return ["model.readout=roofline"]
    plain = ["encoding.op_latency=null", "model.op_latency_offset=0"]
    if name == "graph":
        return [*plain, "model.readout=roofline"]
    # NNLQP's GNN: softplus output and graph-level sum readout (benchmarks/latency.py says why)
    return [*plain, "model.architecture=nnlp_gnn", "model.output=softplus", "model.readout=sum", "model.op_dropout=0.0"]


# --- the real-network test set -------------------------------------------------------------------------
def load_real(labels_dir: Path, onnx_dir: Path) -> dict[str, Any]:
    from nas_predictor.onnx import onnx_to_graph

    rows = [json.loads(line) for line in (labels_dir / "labels.jsonl").read_text().splitlines() if line.strip()]
    retest = {}
    if (labels_dir / "retest.jsonl").is_file():
        retest_rows = map(json.loads, (labels_dir / "retest.jsonl").read_text().splitlines())
        retest = {r["id"]: r["label"]["label_ms"] for r in retest_rows}
    graphs, keep = [], []
    for r in rows:
        path = onnx_dir / r["label"]["model"]
        if not path.is_file():
            raise SystemExit(f"latency_real.py: error: {path} missing; export the real networks first "
                             f"(.export-venv/bin/python benchmarks/real_networks.py export)")
        graphs.append(onnx_to_graph(path))
        keep.append(r)
    return {"rows": keep, "graphs": graphs, "truth": np.array([r["label"]["label_ms"] for r in keep]),
            "ids": [r["id"] for r in keep], "seen": np.array([r["generator_family"] is not None for r in keep]),
            "retest": retest}


def _spearman(truth: np.ndarray, pred: np.ndarray) -> float | None:
    """Spearman's rho, or None where it is undefined (fewer than 3 networks, a constant prediction)."""
    if len(truth) < 3 or np.ptp(pred) == 0 or np.ptp(truth) == 0:
        return None
    return float(spearmanr(truth, pred).statistic)


def metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    err = np.abs(pred / truth - 1.0)
    return {"num": int(len(truth)), "mape": float(err.mean()), "acc_10pct": float(np.mean(err <= 0.10)),
            "spearman": _spearman(truth, pred),
            "max_error": float(err.max()), "over_50pct": int(np.sum(err > 0.5))}


def real_tables(real: dict[str, Any], pred: np.ndarray, line_fit=None) -> dict[str, Any]:
    """Same-machine metrics (all / seen / unseen families) and the 5-shot calibration table."""
    truth, seen = real["truth"], real["seen"]
    out = {"all": metrics(truth, pred), "seen": metrics(truth[seen], pred[seen]),
           "unseen": metrics(truth[~seen], pred[~seen]),
           "worst": sorted(((float(abs(p / t - 1)), i) for i, p, t in zip(real["ids"], pred, truth)), reverse=True)[:5]}
    rng = np.random.default_rng(2027)  # the same 20 draws for every model
    scores = []
    for _ in range(DRAWS):
        fit = rng.choice(len(truth), SHOTS, replace=False)
        rest = np.setdiff1d(np.arange(len(truth)), fit)
        if line_fit is not None:  # the line is refitted on the 5 timed networks
            p = line_fit(fit, rest)
        else:
            p = pred[rest] * fit_log_scale(pred[fit], truth[fit])
        scores.append(metrics(truth[rest], p))
    out["calibrated_5"] = {m: float(np.mean([s[m] for s in scores])) for m in ("mape", "acc_10pct", "max_error")}
    return out


def speed(predictor, real: dict[str, Any], n: int = 1000) -> dict[str, Any]:
    """Seconds to predict ``n`` real networks from their graphs, and from their ONNX files (encoding included)."""
    from nas_predictor.onnx import onnx_to_graph

    graphs = (real["graphs"] * (n // len(real["graphs"]) + 1))[:n]
    predictor.predict_graphs(graphs[:8])
    t0 = time.perf_counter()
    predictor.predict_graphs(graphs)
    from_graphs = time.perf_counter() - t0
    if "onnx_encode_mean_s" not in real:  # reading the ONNX files does not depend on the model: timed once per run
        paths = [ONNX_DIR / r["label"]["model"] for r in real["rows"]]
        t0 = time.perf_counter()
        for p in paths:
            onnx_to_graph(p)
        real["onnx_encode_mean_s"] = (time.perf_counter() - t0) / len(paths)
    encode_each = real["onnx_encode_mean_s"]
    return {"networks": n, "predict_from_graphs_s": from_graphs, "onnx_encode_mean_s": encode_each,
            "predict_from_onnx_s": from_graphs + n * encode_each, "torch_threads": torch.get_num_threads()}


# --- one seed ----------------------------------------------------------------------------------------------
def runtime_graphs(args, overrides: list[str], records: LatencyRecords | None, idx, graph=None):
    """Records' graphs as the runtime runs them (Conv+BN folded when the config folds), each made once
    per run; or one ``graph`` so converted."""
    memo = args.__dict__.setdefault("_memo", {})
    if "runtime" not in memo:
        memo["runtime"] = load_config(args.config, overrides).encoding.tokenizer().runtime_graph
    if graph is not None:
        return memo["runtime"](graph)
    made = memo.setdefault("runtime_graphs", {})  # by arch id (unique across families)
    for i in idx:
        if records.archs[i] not in made:
            made[records.archs[i]] = memo["runtime"](records.graphs[i])
    return [made[records.archs[i]] for i in idx]


def op_times(args, overrides: list[str], seed: int):
    """The operator model of ``seed`` (fitted on the micro-benchmarks, once per run and seed) and a
    function ``(runtime graphs, their arch ids or None) -> per-node times``, remembered per arch."""
    memo = args.__dict__.setdefault("_memo", {})
    if ("op_model", seed) not in memo:
        cfg = load_config(args.config, overrides)
        memo[("op_model", seed)] = fit_from_dataset(cfg.encoding.op_latency, progress=not args.quiet, seed=seed)
        memo[("node_ms", seed)] = {}
    op_model, known = memo[("op_model", seed)], memo[("node_ms", seed)]

    def node_times(gs: list, keys=None) -> list[np.ndarray]:
        if keys is None:
            return op_model.nodes_ms(gs)
        todo = [k for k, key in enumerate(keys) if key not in known]
        for k, times in zip(todo, op_model.nodes_ms([gs[k] for k in todo]) if todo else []):
            known[keys[k]] = times
        return [known[key] for key in keys]

    return op_model, node_times


def cost_model(name: str, graphs: list, labels: np.ndarray, seed: int):
    model = CostGBDT(seed=seed) if name == "gbdt" else CostLinearRegression(("flops", "memory_access"))
    return model.fit(graphs, labels)


def run_seed(name: str, seed: int, records: LatencyRecords, real: dict[str, Any] | None, test_index: np.ndarray,
             args, overrides: list[str]) -> dict[str, Any]:
    fit_idx = np.concatenate([records.train, records.valid])
    # every model reads the runtime graphs (Conv+BN folded when the config folds; folding again is a no-op)
    # through ``predict(graphs, arch ids or None)``: the ids let the operator sums reuse per-node times
    graphs = lambda idx: runtime_graphs(args, overrides, records, idx)  # noqa: E731
    arch_ids = lambda idx: [records.archs[i] for i in idx]  # noqa: E731
    real_graphs = [runtime_graphs(args, overrides, None, None, g) for g in real["graphs"]] if real is not None else []
    labels = records.labels(fit_idx)
    entry: dict[str, Any] = {"model": name, "seed": seed}
    t0 = time.perf_counter()
    line_fit = None
    if name in NEURAL:
        cfg = load_config(args.config, [*overrides, *model_overrides(name)])
        out = Path(args.save_dir) / f"seed{seed}" / name if args.save_dir else None
        result = run_latency_experiment(cfg, out_dir=out, progress=not args.quiet, prepared=records)
        predictor = result["predictor"]
        predict = lambda gs, keys=None: np.asarray(predictor.predict_graphs(gs), dtype=np.float64).reshape(-1)  # noqa: E731
        entry.update({"members": result["members"], "train_seconds": result["train_seconds"]})
        op_model = getattr(getattr(predictor, "tokenizer", None), "op_model", None)
        if op_model is not None:  # which operator set the per-node times came from (a set can grow between runs)
            entry["op_model"] = {k: v for k, v in op_model.info.items() if k != "kinds"}
        if out is not None:
            entry["checkpoint"] = str(out / "predictor.pt")
        if real is not None:
            entry["predict_speed"] = speed(predictor, real)
    elif name in OP_SUMS:
        op_model, node_times = op_times(args, overrides, seed)
        fit_times = node_times(graphs(fit_idx), arch_ids(fit_idx))
        entry["op_model"] = {k: v for k, v in op_model.info.items() if k != "kinds"}
        if name == "op_sum_offset":
            fitted = fit_op_offset(fit_times, labels, np.asarray(records.family)[fit_idx])
            predict = lambda gs, keys=None: fitted.predict_ms(node_times(gs, keys))  # noqa: E731
            entry.update({"offset_ms": fitted.offset_ms, "scale": fitted.scale})
        elif name == "op_sum_groups":
            fit_kinds = [node_groups(g) for g in graphs(fit_idx)]
            grouped = fit_op_groups(fit_times, fit_kinds, labels, np.asarray(records.family)[fit_idx])
            predict = lambda gs, keys=None: grouped.predict_ms(node_times(gs, keys), [node_groups(g) for g in gs])  # noqa: E731
            entry.update(grouped.as_dict())
        else:
            scale = fit_log_scale(np.array([t.sum() for t in fit_times]), labels) if name == "op_sum_fit" else 1.0
            predict = lambda gs, keys=None: np.array([t.sum() for t in node_times(gs, keys)]) * scale  # noqa: E731
            entry["scale"] = scale
    else:
        model = cost_model(name, graphs(fit_idx), labels, seed)
        predict = lambda gs, keys=None: np.asarray(model.predict(gs), dtype=np.float64)  # noqa: E731
        if name == "flops_memory_line" and real is not None:
            def line_fit(fit, rest):
                five = cost_model(name, [real_graphs[i] for i in fit], real["truth"][fit], seed)
                return np.maximum(np.asarray(five.predict([real_graphs[i] for i in rest])), 1e-6)
    entry["fit_seconds"] = time.perf_counter() - t0
    if len(test_index):
        truth = records.labels(test_index)
        pred = predict(graphs(test_index), arch_ids(test_index))
        entry["generated_test"] = metrics(truth, np.maximum(pred, 1e-6))
        fam = np.asarray(records.family)[test_index]
        entry["generated_test"]["per_family_mape"] = {f: float(np.mean(np.abs(pred[fam == f] / truth[fam == f] - 1)))
                                                      for f in dict.fromkeys(fam)}
        if getattr(args, "lofo", False):  # per network, so a held-out family's error splits into a scale bias and scatter
            ratio = np.log(np.maximum(pred, 1e-6) / truth)
            entry["generated_test"]["log_ratio"] = {"median": float(np.median(ratio)), "std": float(ratio.std())}
            entry["test_predictions_ms"] = [[records.archs[i], float(t), float(q)]
                                            for i, t, q in zip(test_index, truth, pred)]
    if real is not None:
        pred = np.maximum(predict(real_graphs), 1e-6)  # a line can go negative on tiny networks
        entry["real"] = real_tables(real, pred, line_fit)
        entry["real_predictions_ms"] = dict(zip(real["ids"], map(float, pred)))
    return entry


def fold_records(args, overrides: list[str], seed: int, family: str | None, models: list[str]) -> LatencyRecords:
    """The records of one run: prepared for it, or, for a leave-one-family-out fold of models that
    train no network, one preparation per seed split by family (train: every other family)."""
    if not (family and all(m not in NEURAL for m in models)):
        return prepare_latency_data(load_config(args.config, overrides), progress=not args.quiet)
    memo = args.__dict__.setdefault("_memo", {})
    if ("records", seed) not in memo:
        base = [o for o in overrides if not o.startswith(("data.split=", "data.test_family="))]
        memo[("records", seed)] = prepare_latency_data(load_config(args.config, [*base, "data.split=in_domain"]),
                                                       progress=not args.quiet)
    full = memo[("records", seed)]
    held = np.asarray(full.family) == family
    if not held.any():
        raise SystemExit(f"latency_real.py: error: no generated family {family!r} in {args.config}")
    return replace(full, train=np.flatnonzero(~held), valid=np.array([], dtype=np.int64), test=np.flatnonzero(held))


HIGHER_IS_BETTER = ("acc_10pct", "spearman")


def stats(values: list[float], higher_is_better: bool = False) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "worst": min(values) if higher_is_better else max(values), "n": len(values)}


def summarize(runs: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_model: dict[str, list[dict]] = {}
    for r in runs:
        by_model.setdefault(r["model"] + (f"@{r['test_family']}" if r.get("test_family") else ""), []).append(r)
    for key, items in by_model.items():
        row: dict[str, Any] = {"seeds": [r["seed"] for r in items]}
        if all("real" in r for r in items):
            for part in ("all", "seen", "unseen", "calibrated_5"):
                row[part] = {m: stats([r["real"][part][m] for r in items], m in HIGHER_IS_BETTER)
                             for m in ("mape", "acc_10pct", "spearman", "max_error")
                             if items[0]["real"][part].get(m) is not None}
        if all("generated_test" in r for r in items):
            row["generated_test"] = {m: stats([r["generated_test"][m] for r in items], m in HIGHER_IS_BETTER)
                                     for m in ("mape", "acc_10pct")}
        out[key] = row
    lofo = [k for k in out if "@" in k]
    if lofo:
        avg: dict[str, Any] = {}
        for model in dict.fromkeys(k.split("@")[0] for k in lofo):
            per_seed: dict[int, list[float]] = {}
            for r in runs:
                if r["model"] == model and r.get("test_family"):
                    per_seed.setdefault(r["seed"], []).append(r["generated_test"]["mape"])
            families = {len(v) for v in per_seed.values()}
            avg[model] = {"families": sorted(families),
                          "mape_mean_over_families": stats([float(np.mean(v)) for v in per_seed.values()])}
        out["lofo_average"] = avg
    return out


def time_predictor(args, out_path: Path, cores: int) -> int:
    """``--speed``: the predictor's time for 1,000 real networks with one thread and with every core, kept
    in the results JSON under ``speed`` (the figure of the issue's "1,000 real networks in < 10 s")."""
    from nas_predictor.predictor import load_predictor

    real = load_real(Path(args.labels_dir), Path(args.onnx_dir))
    predictor = load_predictor(args.speed)
    timings = {}
    for threads in dict.fromkeys((1, cores)):
        torch.set_num_threads(threads)
        timings[str(threads)] = speed(predictor, real)
        print(f"{threads} thread(s): {timings[str(threads)]['predict_from_graphs_s']:.2f} s for 1,000 networks "
              f"from graphs, {timings[str(threads)]['predict_from_onnx_s']:.1f} s from ONNX files", flush=True)
    record = {"predictor": args.speed, "machine": machine(), "command": command_line(), "threads": timings}
    update_locked(out_path, lambda results: {**results, "speed": record})  # a run may be appending meanwhile
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (all models)")
    ap.add_argument("--lofo", action="store_true", help="leave one generated family out instead of the real networks")
    ap.add_argument("--families", nargs="+", help="--lofo: the held-out families (default: all)")
    ap.add_argument("--labels-dir", default=str(REAL_LABELS))
    ap.add_argument("--onnx-dir", default=str(ONNX_DIR))
    ap.add_argument("--out", help="results JSON (default benchmarks/results/latency_real[_lofo].json)")
    ap.add_argument("--save-dir", help="keep each trained predictor here (seed<k>/<model>/predictor.pt)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--speed", metavar="PREDICTOR", help="only time PREDICTOR (a shipped name or a checkpoint) "
                    "on 1,000 real networks, with 1 thread and with all cores (run it on a quiet machine)")
    args = ap.parse_args(argv)
    cores = torch.get_num_threads()
    torch.set_num_threads(1)
    out_path = Path(args.out) if args.out else RESULTS / ("latency_real_lofo.json" if args.lofo else "latency_real.json")
    results = load_results(out_path)
    if args.speed:
        return time_predictor(args, out_path, cores)
    base = load_config(args.config, args.set)
    if not isinstance(base, LatencyExperimentConfig):
        ap.error(f"{args.config} is not a latency config")
    results.update({"benchmark": "latency_real", "config": base.model_dump(), "machine": machine(),
                    "protocol": "real networks: held-out test set, labels of this machine (reference-gated CPU "
                                "protocol, one thread); calibrated_5: 20 draws of 5 timed networks, scored on the rest"})
    results.setdefault("commands", [])
    if command_line() not in results["commands"]:
        results["commands"].append(command_line())
    done = {(r["seed"], r["model"], r.get("test_family")) for r in results.setdefault("runs", [])}
    real = None if args.lofo else load_real(Path(args.labels_dir), Path(args.onnx_dir))
    if real is not None:
        pairs = [(real["truth"][i], real["retest"][k]) for i, k in enumerate(real["ids"]) if k in real["retest"]]
        if pairs:
            diff = [abs(b / a - 1) for a, b in pairs]
            results["real_retest"] = {"networks": len(pairs), "mean_diff": float(np.mean(diff)),
                                      "median_diff": float(np.median(diff)), "max_diff": float(np.max(diff))}
    held_out = args.families or base.data.families if args.lofo else [None]
    for seed in args.seeds:
        for family in held_out:
            todo = [m for m in args.models if (seed, m, family) not in done]
            if not todo:
                continue
            overrides = [*args.set, f"data.split_seed={seed}", f"train.seed={seed}"]
            if family:
                overrides += ["data.split=unseen", f"data.test_family={family}"]
            records = fold_records(args, overrides, seed, family, todo)
            for name in todo:
                print(f"[seed {seed}{' held out ' + family if family else ''}] {name} ...", flush=True)
                entry = run_seed(name, seed, records, real, records.test, args, overrides)
                entry["test_family"] = family
                entry.update({"num_train": int(len(records.train)), "num_valid": int(len(records.valid)),
                              "num_test": int(len(records.test))})
                results = append_locked(out_path, results, entry, summarize=summarize,
                                        key=lambda r: (r["seed"], r["model"], r.get("test_family")))
                shown = entry.get("real", {}).get("all") or entry.get("generated_test", {})
                print(f"[seed {seed}] {name}: MAPE {shown.get('mape', float('nan')):.4f} "
                      f"Acc10 {shown.get('acc_10pct', float('nan')):.3f}"
                      + (f" calibrated-5 MAPE {entry['real']['calibrated_5']['mape']:.4f}" if "real" in entry else ""),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
