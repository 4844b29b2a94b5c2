"""The export step of benchmarks/real_networks.py (export venv): weight-free ONNX files and reference MACs."""

from __future__ import annotations

# stdlib only at the top: this module runs in the export venv, which lacks nas_predictor's dependencies
import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from real_networks_catalog import OPSET, fail, file_name, locked, network_id, read_manifest, selected, sha256, write_json_atomic


# -- export (export venv) -----------------------------------------------------------------------------
def recipe() -> dict[str, Any]:
    import onnx
    import timm
    import torch
    import torchvision

    return {
        "torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
        "onnx": onnx.__version__, "python": sys.version.split()[0],
        "exporter": "torch.onnx.export(model.eval(), torch.randn(1, 3, R, R), path, dynamo=False, "
                    f"opset_version={OPSET}, export_params=False, do_constant_folding=True, "
                    "input_names=['input'], output_names=['output'])",
        "opset": OPSET, "dynamo": False, "export_params": False, "do_constant_folding": True, "batch_size": 1,
        "mode": "eval", "weights": "none (torchvision weights=None, timm pretrained=False); torch.manual_seed(0)",
        "reference": "torch.utils.flop_counter.FlopCounterMode on a copy of the module, batch 1, no_grad, "
                     "parameters requires_grad False; MACs = FLOPs / 2 (convolution, mm, addmm, bmm, baddbmm, "
                     "scaled_dot_product_attention, plus aten._scaled_dot_product_flash_attention_for_cpu by "
                     "torch's own sdpa_flop_count, which the registry lacks); nn.MultiheadAttention fast path "
                     "off (torch.backends.mha.set_fastpath_enabled(False)) so its fused op is counted as its ops",
        "published": "torchvision: get_model_weights(name).DEFAULT.meta['_ops'] (GFLOPS as torchvision defines "
                     "them = GMACs) at the weights' crop size; timm: none offline (its results tables are not "
                     "in the wheel)",
    }


def recipe_key(r: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]


def build_model(source: str, name: str, kwargs: dict[str, Any]):
    import torch

    torch.manual_seed(0)
    if source == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kwargs).eval()
    import timm

    return timm.create_model(name, pretrained=False, **kwargs).eval()


def published_gmacs(source: str, name: str) -> tuple[float | None, int | None]:
    """torchvision's figure and the resolution it was measured at (the weights' crop size)."""
    if source != "torchvision":
        return None, None
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    ops = weights.meta.get("_ops")
    crop = getattr(weights.transforms(), "crop_size", None)
    return (float(ops) if ops is not None else None), (int(crop[0]) if crop else None)


def reference_macs(model, resolution: int) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's count with two blind spots closed: on CPU, scaled_dot_product_attention runs
    as aten._scaled_dot_product_flash_attention_for_cpu, which its registry lacks (timm's attention
    would lose its two matmuls), and nn.MultiheadAttention's eval fast path is one fused op it does not
    count at all (torchvision's ViT would lose its projections); the slow path is the same maths in
    counted ops. It counts a copy whose parameters do not require grad (its module tracker fails on some
    models otherwise, CaiT); the export must see the model untouched (without grad, nn.MultiheadAttention
    takes its fused fast path even while tracing, which the exporter cannot export)."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query.shape, key.shape, value.shape)

    cpu_sdpa._get_raw = True  # FlopCounterMode passes tensors to functions marked raw
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    model = copy.deepcopy(model).requires_grad_(False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(torch.randn(1, 3, resolution, resolution))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    by_op = {str(op): int(flops) // 2 for op, flops in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()) // 2, by_op


def export_one(spec: tuple, folder: Path, key: str) -> dict[str, Any]:
    import onnx
    import torch

    source, name, family, resolution, kwargs = spec
    row: dict[str, Any] = {"id": network_id(source, name, resolution), "source": source, "name": name,
                           "family": family, "resolution": resolution, "kwargs": kwargs, "recipe_key": key,
                           "file": file_name(source, name, resolution)}
    try:
        model = build_model(source, name, kwargs)
        row["reference_macs"], row["reference_macs_by_op"] = reference_macs(model, resolution)
        gmacs, at = published_gmacs(source, name)
        row["published_gmacs"], row["published_resolution"] = gmacs, at
        path = folder / row["file"]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's tracer warnings are about dynamic control flow
            torch.onnx.export(model, torch.randn(1, 3, resolution, resolution), str(tmp), dynamo=False,
                              opset_version=OPSET, export_params=False, do_constant_folding=True,
                              input_names=["input"], output_names=["output"])
        row["export_s"] = round(time.perf_counter() - start, 3)
        os.replace(tmp, path)
        row["nodes"] = len(onnx.load(str(path), load_external_data=False).graph.node)
        row["onnx_bytes"] = path.stat().st_size
        row["sha256"] = sha256(path)
        row["ok"] = True
    except Exception as err:  # an exporter or model limitation: recorded, the run goes on
        row.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}")
    return row



def cmd_export(args: argparse.Namespace) -> None:
    try:
        import timm  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as err:
        fail(f"export needs torchvision and timm ({err}); run it with the export venv's python "
             "(see .ci/run for how it is built)")
    folder = Path(args.out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    rec = recipe()
    key = recipe_key(rec)
    for spec in selected(args.only):
        nid = network_id(spec[0], spec[1], spec[3])
        with locked(folder):
            row = read_manifest(folder).get("networks", {}).get(nid)
        if row and row.get("recipe_key") == key:
            done = row.get("ok") and (folder / row["file"]).is_file() and sha256(folder / row["file"]) == row["sha256"]
            if done or (not row.get("ok") and not args.retry_failed):
                print(f"{nid}: cached ({'ok' if row.get('ok') else 'export failed'})", flush=True)
                continue
        row = export_one(spec, folder, key)
        with locked(folder):
            manifest = read_manifest(folder)
            manifest["recipe"], manifest["recipe_key"] = rec, key
            manifest.setdefault("networks", {})[nid] = row
            write_json_atomic(manifest, folder / "manifest.json")
        status = (f"{row['nodes']} nodes, {row['reference_macs'] / 1e9:.3f} GMACs, export {row['export_s']} s"
                  if row["ok"] else row["error"])
        print(f"{nid}: {status}", flush=True)


