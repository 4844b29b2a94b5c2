"""Ship a trained latency predictor as package data: pick the best of several runs by VALIDATION MAPE
(never test), store it in the smallest dtype that leaves its test MAPE unchanged to 4 decimals, and
write manifest entries: one for the file and one per device setting (``latency-titan_rtx_1`` is the
multi-device file with that setting as its default).

    python tools/ship_latency.py --name latency-help-b1 runs/lat/*/seed*/narformer_v2/predictor.pt

Every shipped file carries its training-domain summary (``nas_predictor.latency_domain``: op types,
size ranges, the FLOPs/memory fallback line per setting), computed from its TRAINING split exactly as
its run built it. ``--add-domain`` adds it to already shipped files without touching their weights
(the tensors are re-saved bit for bit; only the embedded config and so the sha256 change):

    python tools/ship_latency.py --add-domain latency-help-b1 latency-help-b32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nas_predictor.latency_experiment as latency_experiment  # noqa: E402
from nas_predictor.config import LatencyExperimentConfig  # noqa: E402
from nas_predictor.data.latency_graphs import cached_network_graphs, network_graphs  # noqa: E402
from nas_predictor.data.latency_tables import parse_setting  # noqa: E402
from nas_predictor.graph import ArchGraph  # noqa: E402
from nas_predictor.latency_domain import DOMAIN_KEY  # noqa: E402
from nas_predictor.latency_experiment import LatencyRecords, evaluate_latency, prepare_latency_data  # noqa: E402
from nas_predictor.latency_experiment import training_domain as experiment_training_domain  # noqa: E402
from nas_predictor.predictor import Predictor, atomic_torch_save, sha256_file  # noqa: E402
from nas_predictor.pretrained_cards import PRETRAINED_DIR, read_manifest, write_manifest  # noqa: E402


def validation_mape(checkpoint: Path) -> float:
    """Validation MAPE of the run's predictor (from the run's results.json): of the whole predictor where
    the run scored it (an ensemble's mean prediction), else the mean of its members' at their kept epochs."""
    results = json.loads((checkpoint.parent / "results.json").read_text())
    if results.get("valid"):
        per_setting = [m["overall"]["mape"] for m in results["valid"].values()]
        return sum(per_setting) / len(per_setting)
    members = results["members"]
    return sum(m["best_valid_mape"] for m in members) / len(members)


def training_domain(cfg: LatencyExperimentConfig, records: LatencyRecords) -> dict:
    """The domain summary of the predictor trained by ``cfg`` on ``records`` (its training split; with
    ``--cached-only`` the part of it whose graphs exist)."""
    train = [int(i) for i in records.train if records.graphs[i] is not PLACEHOLDER]
    return experiment_training_domain(cfg, records, train)


PLACEHOLDER = ArchGraph(("Input",), ())  # a network whose graph was not built


def training_records(cfg: LatencyExperimentConfig, data_dir: str | None, cached_only: bool = False) -> LatencyRecords:
    """``prepare_latency_data``'s records of ``cfg`` with graphs built for the training split only.

    The split is prepare_latency_data's own (the same code, seeds and subset draws); only the export
    of validation and test networks, which a domain summary does not need, is skipped by asking it
    for placeholder graphs first (exports take ~1 s per network: 1,140 fewer for the HELP runs). A
    measured dataset (``data.dataset_dir``) is prepared in full. ``cached_only``: only the training
    networks already in the graph cache get a graph (the others keep ``PLACEHOLDER``; the summary's
    source then counts them), for a machine where exporting them all takes too long."""
    if cfg.data.dataset_dir is not None:
        return prepare_latency_data(cfg, data_dir, progress=True)
    original = latency_experiment.network_graphs
    latency_experiment.network_graphs = lambda space, archs, *a, **k: [PLACEHOLDER] * len(archs)
    try:
        records = prepare_latency_data(cfg, data_dir, progress=False)
    finally:
        latency_experiment.network_graphs = original
    batch = parse_setting(cfg.data.settings[0])[1]  # the settings of one model share a batch (config check)
    family = np.asarray(records.family)
    for space in cfg.data.families:
        index = [int(i) for i in records.train if family[i] == space]
        if cached_only:
            cached = cached_network_graphs(space, cfg.data.cache_dir)
            index = [i for i in index if records.archs[i] in cached]
        built = network_graphs(space, [records.archs[i] for i in index], batch, cfg.data.cache_dir,
                               cfg.data.export_workers, True)
        for i, graph in zip(index, built):
            records.graphs[i] = graph
    return records


def add_domain(names: list[str], data_dir: str | None, cached_only: bool = False) -> None:
    """Store the training-domain summary in shipped files whose weights stay bit-identical."""
    manifest = read_manifest()
    for name in names:
        path = PRETRAINED_DIR / manifest[name]["file"]
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(payload["config"])
        cfg = LatencyExperimentConfig.model_validate(meta["experiment"])
        records = training_records(cfg, data_dir, cached_only)
        meta[DOMAIN_KEY] = training_domain(cfg, records)
        before = [{k: v.clone() if torch.is_tensor(v) else v for k, v in m.items()} for m in payload["members"]]
        payload["config"] = json.dumps(meta, sort_keys=True)
        atomic_torch_save(payload, path)
        after = torch.load(path, map_location="cpu", weights_only=True)["members"]
        for old, new in zip(before, after, strict=True):
            for key in old:
                if not (old[key].dtype == new[key].dtype and torch.equal(old[key], new[key])):
                    raise SystemExit(f"{path}: weight {key} changed on re-saving")
        digest = sha256_file(path)
        for entry in manifest.values():
            if entry.get("file") == path.name:
                entry["sha256"] = digest
        write_manifest(manifest)
        print(f"{path.name}: domain of {meta[DOMAIN_KEY]['source']}; sha256 {digest}")
        print(json.dumps({s: {k: v for k, v in e.items() if k != "op_types"}
                          for s, e in meta[DOMAIN_KEY]["settings"].items()}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--name", help="file / manifest name, e.g. latency-help-b1")
    parser.add_argument("--description", default="")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--add-domain", nargs="+", metavar="NAME", default=None,
                        help="only add the training-domain summary to these shipped predictors")
    parser.add_argument("--cached-only", action="store_true",
                        help="with --add-domain: use only the training networks already in the graph cache")
    args = parser.parse_args()
    if args.add_domain:
        add_domain(args.add_domain, args.data_dir, args.cached_only)
        return
    if not args.checkpoints or not args.name:
        parser.error("give --name and the run checkpoints to choose from (or --add-domain NAME ...)")

    scores = {path: validation_mape(path) for path in args.checkpoints}
    for path, score in scores.items():
        print(f"validation MAPE {score:.4f}  {path}")
    best = min(args.checkpoints, key=lambda p: scores[p])
    predictor = Predictor.load(best)
    cfg = LatencyExperimentConfig.model_validate(predictor.meta["experiment"])
    records = prepare_latency_data(cfg, args.data_dir, progress=True)
    full = evaluate_latency(predictor, records, records.test)
    dtype, chosen = "float32", full
    with tempfile.TemporaryDirectory() as tmp:
        path = predictor.save(Path(tmp) / "float16.pt", weights="float16")
        half = evaluate_latency(Predictor.load(path), records, records.test)
        same = all(round(half[s]["overall"]["mape"], 4) == round(full[s]["overall"]["mape"], 4) for s in full)
        print(f"float16: {'unchanged' if same else 'changed'} test MAPE")
        if same:
            dtype, chosen = "float16", half
    predictor.meta[DOMAIN_KEY] = training_domain(cfg, records)
    target = PRETRAINED_DIR / f"{args.name}.pt"
    predictor.save(target, weights=dtype)
    digest = sha256_file(target)
    manifest = read_manifest()
    for key in [k for k, v in manifest.items() if v.get("file") == target.name]:
        del manifest[key]  # re-shipping replaces the file's old entries
    settings = predictor.settings
    common = {"file": target.name, "sha256": digest, "task": "latency", "unit": "ms", "dtype": dtype,
              "source_checkpoint": str(best), "validation_mape": scores[best], "families": cfg.data.families,
              "split": cfg.data.split, "num_test": int(len(records.test))}
    manifest[args.name] = {**common, "settings": settings, "description": args.description or
                           f"NAR-Former V2 latency predictor (ms), {len(settings)} device settings: "
                           f"{', '.join(settings)}",
                           "test": {s: chosen[s]["overall"] for s in chosen}}
    for setting in settings:
        manifest[f"latency-{setting}"] = {
            **common, "setting": setting, "test": chosen[setting]["overall"] if setting in chosen else None,
            "description": f"latency (ms) on {setting}: the {setting} output of {args.name}",
        }
    write_manifest(manifest)
    print(json.dumps(manifest[args.name], indent=2))


if __name__ == "__main__":
    main()
