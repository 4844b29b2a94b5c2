"""Real networks from torchvision and timm: exact graphs, exact MACs and honest batching (issue 26).

Two steps, run by two different Python environments:

    # 1. export (torchvision + timm; the project's CPU torch cannot import torchvision, so a separate
    #    export-only venv does this, see .ci/run):
    .export-venv/bin/python benchmarks/real_networks.py export --out ~/.cache/nas-predictor/real-networks
    # 2. check (the project venv): encode every exported file and compare with the references
    python benchmarks/real_networks.py check --onnx-dir ~/.cache/nas-predictor/real-networks

``export`` writes weight-free batch-1 ONNX files (never committed; cached outside the repo) and a
manifest.json with the recipe and, per network, a reference count of Conv/Linear/MatMul MACs made by
torch's FlopCounterMode on the module itself (independent of ONNX), plus torchvision's published
figure where there is one. It is resumable: networks already exported with the same recipe are skipped.

``check`` encodes each file with nas_predictor.onnx.onnx_to_graph at batch 1 and at batch 32 (both by
re-reading the file and by the batch-32 predictors' path, rebatch) and writes
benchmarks/results/real_networks.json. This module imports neither torchvision/timm at the top
(the project venv lacks them) nor nas_predictor (the export venv lacks it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

DEFAULT_DIR = Path(os.environ.get("NAS_PREDICTOR_REAL_NETWORKS_DIR",
                                  Path.home() / ".cache" / "nas-predictor" / "real-networks"))
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "real_networks.json"
OPSET = 17
# The ops whose multiply-adds are compared: what FlopCounterMode counts (convolution, mm/addmm/bmm/
# baddbmm, scaled_dot_product_attention) maps to exactly these ONNX ops in the legacy exporter.
MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# torch.einsum exports as Einsum (opset >= 12) and FlopCounterMode counts it (as bmm): the encoder's count
# must include it to match. The benchmark's own count cannot (the graph keeps no equation) and skips it.
ENCODER_MAC_OPS = (*MAC_OPS, "Einsum")
MAC_TOLERANCE = 0.01
BATCH = 32
BATCH_TOLERANCE = 1e-9


# (source, model name, family, resolution, constructor kwargs). Families follow issue 26's list, then
# the other designs people deploy. kwargs only where a model fixes its input size at construction.
NETWORKS: list[tuple[str, str, str, int, dict[str, Any]]] = [
    ("torchvision", "resnet18", "ResNet", 224, {}),
    ("torchvision", "resnet50", "ResNet", 224, {}),
    ("torchvision", "resnext50_32x4d", "ResNet", 224, {}),
    ("torchvision", "wide_resnet50_2", "ResNet", 224, {}),
    ("timm", "resnet50d", "ResNet", 224, {}),
    ("torchvision", "mobilenet_v2", "MobileNetV2", 224, {}),
    ("torchvision", "mobilenet_v3_small", "MobileNetV3", 224, {}),
    ("torchvision", "mobilenet_v3_large", "MobileNetV3", 224, {}),
    ("timm", "mobilenetv3_small_100", "MobileNetV3", 224, {}),
    ("timm", "mobilenetv3_large_100", "MobileNetV3", 224, {}),
    ("timm", "tf_mobilenetv3_small_100", "MobileNetV3 (TF same padding)", 224, {}),
    ("timm", "tf_mobilenetv3_large_100", "MobileNetV3 (TF same padding)", 224, {}),
    ("torchvision", "efficientnet_b0", "EfficientNet", 224, {}),
    ("torchvision", "efficientnet_v2_s", "EfficientNet", 224, {}),
    ("timm", "efficientnet_b0", "EfficientNet", 224, {}),
    ("timm", "tf_efficientnet_b0", "EfficientNet (TF same padding)", 224, {}),
    ("torchvision", "convnext_tiny", "ConvNeXt", 224, {}),
    ("timm", "convnext_atto", "ConvNeXt", 224, {}),
    ("timm", "convnextv2_atto", "ConvNeXt-V2", 224, {}),
    ("torchvision", "vit_b_16", "ViT", 224, {}),
    ("timm", "vit_base_patch16_224", "ViT", 224, {}),
    ("timm", "vit_tiny_patch16_224", "ViT", 224, {}),
    ("timm", "deit_tiny_patch16_224", "DeiT", 224, {}),
    ("timm", "deit_small_patch16_224", "DeiT", 224, {}),
    ("torchvision", "swin_t", "Swin", 224, {}),
    ("timm", "swin_tiny_patch4_window7_224", "Swin", 224, {}),
    ("timm", "levit_128s", "LeViT", 224, {}),
    ("timm", "levit_128", "LeViT", 224, {}),
    ("timm", "mobilevit_xxs", "MobileViT", 224, {}),
    ("timm", "mobilevit_s", "MobileViT", 224, {}),
    ("timm", "mobilevitv2_050", "MobileViT", 224, {}),
    ("timm", "resmlp_12_224", "ResMLP", 224, {}),
    ("timm", "edgenext_xx_small", "EdgeNeXt", 224, {}),
    ("timm", "edgenext_small", "EdgeNeXt", 224, {}),
    ("torchvision", "regnet_x_400mf", "RegNet", 224, {}),
    ("torchvision", "regnet_y_400mf", "RegNet", 224, {}),
    ("timm", "regnety_002", "RegNet", 224, {}),
    ("torchvision", "densenet121", "DenseNet", 224, {}),
    ("torchvision", "shufflenet_v2_x1_0", "ShuffleNetV2", 224, {}),
    ("torchvision", "mnasnet1_0", "MnasNet", 224, {}),
    ("timm", "ghostnet_100", "GhostNet", 224, {}),
    ("torchvision", "googlenet", "Inception", 224, {}),
    ("timm", "inception_v3", "Inception", 224, {}),
    ("torchvision", "vgg16", "VGG", 224, {}),
    ("torchvision", "squeezenet1_1", "SqueezeNet", 224, {}),
    ("torchvision", "alexnet", "AlexNet", 224, {}),
    ("timm", "poolformer_s12", "PoolFormer", 224, {}),
    ("timm", "mixer_b16_224", "MLP-Mixer", 224, {}),
    ("timm", "efficientformer_l1", "EfficientFormer", 224, {}),
    ("timm", "cait_xxs24_224", "CaiT", 224, {}),
    ("timm", "beit_base_patch16_224", "BEiT", 224, {}),
    ("timm", "rexnet_100", "ReXNet", 224, {}),
    ("timm", "lcnet_050", "LCNet", 224, {}),
    ("timm", "mixnet_s", "MixNet", 224, {}),
    ("timm", "repvgg_a0", "RepVGG", 224, {}),
    ("timm", "pvt_v2_b0", "PVT-v2", 224, {}),
    ("timm", "dla34", "DLA", 224, {}),
    ("timm", "coat_lite_tiny", "CoaT", 224, {}),
    ("torchvision", "maxvit_t", "MaxViT", 224, {}),
    # 160x160: the same designs at a resolution they were not built for (fixed-size models get img_size)
    ("torchvision", "resnet50", "ResNet", 160, {}),
    ("torchvision", "mobilenet_v3_large", "MobileNetV3", 160, {}),
    ("timm", "tf_mobilenetv3_small_100", "MobileNetV3 (TF same padding)", 160, {}),
    ("timm", "efficientnet_b0", "EfficientNet", 160, {}),
    ("timm", "convnext_atto", "ConvNeXt", 160, {}),
    ("timm", "mobilevit_xxs", "MobileViT", 160, {}),
    ("timm", "deit_tiny_patch16_224", "DeiT", 160, {"img_size": 160}),
    ("timm", "levit_128s", "LeViT", 160, {"img_size": 160}),
    ("timm", "resmlp_12_224", "ResMLP", 160, {"img_size": 160}),
    ("timm", "edgenext_xx_small", "EdgeNeXt", 160, {}),
]


# Real family -> the generated training family of the same design (search_spaces.cnn_families), or None
# for a design no generator covers: results split on it into "family seen in training" / "never seen".
GENERATOR_FAMILY: dict[str, str | None] = {
    "ResNet": "resnet18", "MobileNetV2": "mobilenetv2", "MobileNetV3": "mobilenetv3",
    "MobileNetV3 (TF same padding)": "mobilenetv3", "EfficientNet": "efficientb0",
    "EfficientNet (TF same padding)": "efficientb0", "ConvNeXt": "convnext", "ConvNeXt-V2": "convnext",
    "ViT": "vit", "DeiT": "vit", "Swin": "swin", "LeViT": None, "MobileViT": "mobilevit", "ResMLP": "mixer",
    "EdgeNeXt": None, "RegNet": "regnet", "DenseNet": "densenet", "ShuffleNetV2": "shufflenet",
    "MnasNet": "mnasnet", "GhostNet": "ghostnet", "Inception": "googlenet", "VGG": "vgg16",
    "SqueezeNet": "squeezenet", "AlexNet": "alexnet", "PoolFormer": "poolformer", "MLP-Mixer": "mixer",
    "EfficientFormer": None, "CaiT": None, "BEiT": None, "ReXNet": None, "LCNet": None, "MixNet": None,
    "RepVGG": None, "PVT-v2": None, "DLA": None, "CoaT": None, "MaxViT": None,
}


def network_id(source: str, name: str, resolution: int) -> str:
    return f"{source}:{name}@{resolution}"


def file_name(source: str, name: str, resolution: int) -> str:
    return f"{source}__{name}__{resolution}.onnx"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fail(message: str) -> None:
    """One line and exit status 2, like the project's CLI."""
    print(f"real_networks.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def strict_json(data: Any) -> str:
    """JSON that refuses NaN/inf: a non-finite number in results is a bug to surface, not to print."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(data: Any, path: Path) -> None:
    # Not nas_predictor.io.atomic_write_json: the export step runs in the export venv, which lacks
    # nas_predictor's dependencies.
    text = strict_json(data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """The manifest is shared by the benchmark and the test fixture, which may run at the same time."""
    # filelock itself, not nas_predictor.io.file_lock: the export venv has filelock (torch needs it) but
    # not nas_predictor's dependencies.
    from filelock import FileLock

    with FileLock(str(folder / ".manifest.lock")):
        yield


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        fail(f"{path}: not valid JSON ({err}); delete it to export again")
        raise  # unreachable: fail exits


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


def selected(only: list[str] | None) -> list[tuple]:
    if not only:
        return NETWORKS
    known = {network_id(s, n, r): (s, n, f, r, k) for s, n, f, r, k in NETWORKS}
    picked = []
    for item in only:
        matches = [spec for nid, spec in known.items() if item in (nid, spec[1], f"{spec[1]}@{spec[3]}")]
        if not matches:
            fail(f"--only {item!r} names no network (ids look like 'timm:levit_128s@224'; "
                 f"`real_networks.py list` prints them)")
        picked += [m for m in matches if m not in picked]
    return picked


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


# -- check (project venv) ------------------------------------------------------------------------------
def _numel(shape) -> int:
    return int(math.prod(shape))


def _known(shape) -> bool:
    return bool(shape) and all(d > 0 for d in shape)


def node_macs_from_shapes(op: str, attrs: dict, out: tuple, inputs: list[tuple]) -> int | None:
    """Multiply-adds of one Conv/ConvTranspose/Gemm/MatMul node from the graph's own shapes and attributes
    (None when a shape it needs is unresolved). The benchmark's count while the encoder has no per-node
    ``macs`` attribute; a cross-check once it has."""
    if not _known(out) or not inputs or not all(_known(s) for s in inputs):
        return None
    kernel = _numel(attrs.get("kernel", [1]))
    group = int(attrs.get("group", 1))
    if op == "Conv":
        kernel_dims = list(attrs.get("kernel", []))
        weights = [w for w in inputs if len(w) == len(out) and w[0] == out[1] and list(w[2:]) == kernel_dims]
        if len(inputs) == 2 and weights:  # a computed weight (weight standardisation) arrives as an edge
            return _numel(out) * _numel(weights[-1][1:])
        return _numel(out) * (inputs[0][1] // group) * kernel
    if op == "ConvTranspose":
        x = max(inputs, key=_numel)
        return _numel(x) * (out[1] // group) * kernel
    if op == "Gemm":
        trans_a = attrs.get("transA", 0)
        for a in inputs:
            if len(a) == 2 and (a[1] if trans_a else a[0]) == out[0]:
                return _numel(out) * (a[0] if trans_a else a[1])
        return None
    if op == "MatMul":
        if len(inputs) == 1:
            a = inputs[0]
            return _numel(out) * a[-1]
        for a in inputs:
            for b in inputs:
                if a is b:
                    continue
                k = a[-1]
                if len(b) >= 2 and b[-2] == k and b[-1] == out[-1]:
                    return _numel(out) * k
                if len(b) == 1 and b[0] == k:
                    return _numel(out) * k
        return None
    return None


def encoder_macs(graph) -> tuple[float | None, str]:
    """The encoder's own Conv/ConvTranspose/Gemm/MatMul MACs: a per-node ``macs`` attribute where it sets
    one, else nas_predictor.onnx.costs.graph_macs where that exists (None: the encoder has neither)."""
    attrs = graph.attrs or ()
    marked = [a for op, a in zip(graph.ops, attrs) if op in ENCODER_MAC_OPS and "macs" in a]
    if marked:
        return float(sum(a["macs"] for a in marked)), "encoder: per-node macs attribute"
    try:
        from nas_predictor.onnx.costs import graph_macs
    except ImportError:
        return None, "none"
    return graph_macs(graph, ENCODER_MAC_OPS), "encoder: nas_predictor.onnx.costs.graph_macs"


def graph_costs(graph) -> dict[str, Any]:
    """Our MACs (the encoder's own count where it has one, else the benchmark's count from the graph's
    shapes), the benchmark's count as a cross-check, and the nodes whose shapes are unresolved."""
    preds: dict[int, list[int]] = defaultdict(list)
    for s, d in graph.edges:
        preds[d].append(s)
    attrs = graph.attrs or [{}] * graph.num_nodes
    shapes = graph.shapes or [()] * graph.num_nodes
    from_shapes = 0
    unresolved_mac_nodes, mac_nodes = [], 0
    for i, op in enumerate(graph.ops):
        if op not in MAC_OPS:
            continue
        mac_nodes += 1
        macs = node_macs_from_shapes(op, attrs[i], shapes[i], [shapes[p] for p in sorted(preds[i])])
        if macs is None:
            unresolved_mac_nodes.append(i)
        else:
            from_shapes += macs
    zero_dims = [i for i, s in enumerate(shapes) if s and 0 in s]
    # a weight-free export lists its parameters as graph inputs; the image must be the only one taken as data
    data_inputs = [i for i, op in enumerate(graph.ops) if op == "Input" and attrs[i].get("batched")]
    ours, source = encoder_macs(graph)
    return {
        "macs": from_shapes if ours is None else ours,
        "macs_source": "benchmark: node_macs_from_shapes" if ours is None else source,
        "macs_from_shapes": from_shapes, "mac_nodes": mac_nodes,
        "unresolved_mac_nodes": len(unresolved_mac_nodes),
        "zero_dim_nodes": len(zero_dims),
        "batched_inputs": len(data_inputs),
        "batched_input_shapes": [list(shapes[i]) for i in data_inputs[:6]],
        "first_unresolved": None if not (unresolved_mac_nodes or zero_dims) else
        f"node {min(unresolved_mac_nodes + zero_dims)} ({graph.ops[min(unresolved_mac_nodes + zero_dims)]})",
    }


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _error(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:400]}"


def encode(path: Path, batch_size: int | None = None):
    """onnx_to_graph with its warnings collected (a warning is not an answer: it is recorded)."""
    from nas_predictor.onnx import onnx_to_graph

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = onnx_to_graph(path, batch_size=batch_size) if batch_size else onnx_to_graph(path)
    return graph, [str(w.message)[:300] for w in caught]


def batch_verdict(make, flops_1: float) -> dict[str, Any]:
    """exact: FLOPs are B x batch-1 FLOPs; refused: a NasPredictorError (a clear error); crashed: any
    other exception; wrong: a result that is not B x (a silent wrong answer)."""
    from nas_predictor.errors import NasPredictorError

    try:
        graph = make()
    except NasPredictorError as err:
        return {"verdict": "refused", "error": _error(err)}
    except Exception as err:  # noqa: BLE001 - a traceback for the user: recorded as such
        return {"verdict": "crashed", "error": _error(err)}
    flops = float(graph.scalars.get("flops", float("nan")))
    want = BATCH * flops_1
    ratio = flops / flops_1 if flops_1 else None
    exact = math.isfinite(flops) and abs(flops - want) <= BATCH_TOLERANCE * abs(want)
    return {"verdict": "exact" if exact else "wrong", "gflops": _finite(flops / 1e9),
            "ratio": _finite(ratio) if ratio is not None else None}


def check_one(row: dict[str, Any], folder: Path, repeats: int) -> dict[str, Any]:
    from nas_predictor.onnx.rebatch import rebatch

    out = {k: row.get(k) for k in ("id", "source", "name", "family", "resolution", "sha256", "reference_macs",
                                   "reference_macs_by_op", "published_gmacs", "published_resolution", "export_s")}
    out["onnx_nodes"] = row.get("nodes")
    path = folder / row["file"]
    if not path.is_file():
        return {**out, "encoded": False, "error": f"{path}: missing (export again)"}
    if sha256(path) != row["sha256"]:
        return {**out, "encoded": False, "error": f"{path}: sha256 differs from the manifest (export again)"}
    try:
        start = time.perf_counter()
        graph, caught = encode(path)
        cold = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - every failure is a row of the to-do list
        return {**out, "encoded": False, "error": _error(err)}
    times = []
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            encode(path)
            times.append(time.perf_counter() - start)
    costs = graph_costs(graph)
    ref = row["reference_macs"]
    rel = (costs["macs"] - ref) / ref if ref else None
    flops_1 = float(graph.scalars["flops"])
    out.update(
        encoded=True, nodes=graph.num_nodes, encode_ms=round(min(times) * 1e3, 3),
        encode_cold_ms=round(cold * 1e3, 3), warnings=caught,
        gflops=_finite(flops_1 / 1e9), macs=costs["macs"], macs_source=costs["macs_source"],
        macs_from_shapes=costs["macs_from_shapes"], macs_rel_diff=_finite(rel),
        macs_vs_benchmark_count_rel=_finite((costs["macs"] - costs["macs_from_shapes"]) / costs["macs_from_shapes"])
        if costs["macs_from_shapes"] else None,
        macs_within_1pct=rel is not None and abs(rel) <= MAC_TOLERANCE,
        unresolved_shapes=bool(costs["unresolved_mac_nodes"] or costs["zero_dim_nodes"]
                               or any("shape" in w for w in caught)),
        unresolved_mac_nodes=costs["unresolved_mac_nodes"], zero_dim_nodes=costs["zero_dim_nodes"],
        first_unresolved=costs["first_unresolved"],
        batched_inputs=costs["batched_inputs"], batched_input_shapes=costs["batched_input_shapes"],
    )
    if row.get("published_gmacs") and row.get("published_resolution") == row["resolution"]:
        published = row["published_gmacs"] * 1e9
        out["reference_vs_published_rel"] = _finite((ref - published) / published)
        out["macs_vs_published_rel"] = _finite((costs["macs"] - published) / published)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["batch32_reexport_free"] = batch_verdict(lambda: encode(path, BATCH)[0], flops_1)
        out["batch32_rebatch"] = batch_verdict(lambda: rebatch(graph, BATCH), flops_1)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    exported = [r for r in rows if r.get("reference_macs") is not None]
    encoded = [r for r in exported if r.get("encoded")]
    times = sorted(r["encode_ms"] for r in encoded)
    cold = sorted(r["encode_cold_ms"] for r in encoded)
    by_id = {r["id"]: r for r in encoded}

    def verdicts(key: str) -> dict[str, int]:
        counts = {"exact": 0, "refused": 0, "crashed": 0, "wrong": 0}
        for r in encoded:
            counts[r[key]["verdict"]] += 1
        return counts

    def ms(nid: str, key: str = "encode_ms") -> float | None:
        return by_id[nid][key] if nid in by_id else None

    return {
        "networks": len(rows), "exported": len(exported), "encoded": len(encoded),
        "macs_within_1pct": sum(1 for r in encoded if r["macs_within_1pct"]),
        "unresolved_shapes": sum(1 for r in encoded if r["unresolved_shapes"]),
        # where the encoder counts Einsum (which the benchmark's count skips) the two may differ
        "encoder_macs_differ_from_benchmark_count": sum(
            1 for r in encoded
            if r["macs_vs_benchmark_count_rel"] is None or abs(r["macs_vs_benchmark_count_rel"]) > 1e-9),
        "parameters_taken_as_data": sum(1 for r in encoded if r["batched_inputs"] != 1),
        "families": len({r["family"] for r in exported}),
        "at_224": sum(1 for r in exported if r["resolution"] == 224),
        "at_160": sum(1 for r in exported if r["resolution"] == 160),
        "batch32_reexport_free": verdicts("batch32_reexport_free"),
        "batch32_rebatch": verdicts("batch32_rebatch"),
        "encode_ms": {"median": statistics.median(times), "max": times[-1], "min": times[0],
                      "total": round(sum(times), 3)} if times else None,
        "encode_cold_ms": {"median": statistics.median(cold), "max": cold[-1], "min": cold[0],
                           "total": round(sum(cold), 3)} if cold else None,
        "resnet50_encode_ms": ms("torchvision:resnet50@224"),
        "resnet50_encode_cold_ms": ms("torchvision:resnet50@224", "encode_cold_ms"),
        "swin_t_encode_ms": ms("timm:swin_tiny_patch4_window7_224@224"),
        "swin_t_encode_cold_ms": ms("timm:swin_tiny_patch4_window7_224@224", "encode_cold_ms"),
        "swin_t_torchvision_encode_ms": ms("torchvision:swin_t@224"),
        "swin_t_torchvision_encode_cold_ms": ms("torchvision:swin_t@224", "encode_cold_ms"),
        "swin_t_nodes": by_id.get("timm:swin_tiny_patch4_window7_224@224", {}).get("nodes"),
        "speed_targets": {"resnet50_ms": "about 13 or less (keep)", "swin_t_ms": "< 300"},
    }


def cmd_check(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import command_line, machine

    folder = Path(args.onnx_dir).expanduser()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        fail(f"{manifest_path}: no manifest; run `real_networks.py export --out {folder}` with the export venv first")
    manifest = read_manifest(folder)
    networks = manifest.get("networks", {})
    wanted = {network_id(s, n, r) for s, n, _, r, _ in selected(args.only)}
    torch.set_num_threads(1)
    # The encoder caches onnxruntime shape runs by file hash: a fresh cache makes the first encode of each
    # file cold (encode_cold_ms) and keeps this run from reusing, or leaving, entries elsewhere.
    cache = tempfile.TemporaryDirectory(prefix="real-networks-shapes-")
    os.environ["NAS_PREDICTOR_CACHE"] = cache.name
    rows = []
    for nid, row in networks.items():
        if nid not in wanted:
            continue
        if row.get("recipe_key") != manifest.get("recipe_key"):
            print(f"{nid}: exported with another recipe; skipped (export again)", file=sys.stderr)
            continue
        if not row.get("ok"):
            rows.append({"id": nid, "source": row["source"], "name": row["name"], "family": row["family"],
                         "resolution": row["resolution"], "exported": False, "export_error": row.get("error")})
            continue
        result = check_one(row, folder, args.repeats)
        result["exported"] = True
        rows.append(result)
        if result.get("encoded"):
            print(f"{nid}: {result['nodes']} nodes {result['encode_ms']:.1f} ms, MACs "
                  f"{(result['macs_rel_diff'] or 0) * 100:+.2f} % vs reference"
                  f"{' UNRESOLVED' if result['unresolved_shapes'] else ''}, b32 "
                  f"{result['batch32_reexport_free']['verdict']}/{result['batch32_rebatch']['verdict']}", flush=True)
        else:
            print(f"{nid}: ERROR {result['error']}", flush=True)
    missing = sorted(wanted - set(networks))
    results = {
        "command": command_line(), "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": manifest.get("recipe"), "onnx_dir": str(folder),
        "not_exported_yet": missing,
        "criteria": {"macs": "Conv/ConvTranspose/Gemm/MatMul (and Einsum, where the encoder counts it) MACs within "
                             f"{MAC_TOLERANCE:.0%} of the FlopCounterMode "
                             "reference", "batch": f"batch {BATCH}: FLOPs == {BATCH} x batch-1 (relative "
                             f"{BATCH_TOLERANCE}) or a NasPredictorError",
                     "encode_ms": f"best of {args.repeats} after the first, one torch thread, onnx_to_graph(path) at "
                                  "batch 1; encode_cold_ms: the first, with an empty shape cache"},
        "rows": rows, "summary": summarize(rows),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, out)
    print(json.dumps(results["summary"], indent=2))


# -- latency labels (project venv) ----------------------------------------------------------------
LABELS_DIR = Path(__file__).resolve().parent / "latency_dataset" / "real_networks_cpu_1t"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            # a run killed mid-write leaves at most one torn last line; anything else is corruption
            if i != len(path.read_text().splitlines()):
                fail(f"{path}:{i}: not valid JSON; the labels file is corrupt")
    return rows


def cmd_measure(args: argparse.Namespace) -> None:
    """Latency labels of the exported networks with the project's CPU protocol (one thread, reference-gated
    for short models, min-of-pass for long ones), appended one line per network to labels.jsonl, or to
    retest.jsonl with --retest (a second, later measurement of every labelled network). Resumable: a
    network already in the file is skipped; the file records the machine of every label."""
    from nas_predictor.latency import Measurer

    folder = Path(args.onnx_dir).expanduser()
    manifest = read_manifest(folder)
    networks = manifest.get("networks", {})
    if not networks:
        fail(f"{folder}: no exported networks; run `real_networks.py export --out {folder}` with the export venv")
    out = Path(args.labels_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / ("retest.jsonl" if args.retest else "labels.jsonl")
    done = {r["id"] for r in _read_jsonl(target)}
    wanted = {network_id(s, n, r) for s, n, _, r, _ in selected(args.only)}
    if args.retest:  # only what has a first label
        wanted &= {r["id"] for r in _read_jsonl(out / "labels.jsonl")}
    todo = [row for nid, row in networks.items()
            if nid in wanted and nid not in done and row.get("ok") and row.get("recipe_key") == manifest.get("recipe_key")]
    _write_labels_manifest(out, manifest)
    print(f"{len(todo)} networks to measure into {target} ({len(done)} there already)", flush=True)
    if not todo:
        return
    measurer = Measurer("cpu", core=args.measure_core)
    start = time.perf_counter()
    sources = [str(folder / row["file"]) for row in todo]
    with target.open("a") as handle:
        for k, outcome in enumerate(measurer.measure_many(sources, window=args.window), 1):
            row = todo[outcome.index]
            record = {"id": row["id"], "source": row["source"], "name": row["name"], "family": row["family"],
                      "resolution": row["resolution"], "sha256": row["sha256"],
                      "generator_family": GENERATOR_FAMILY.get(row["family"])}
            if outcome.error is not None:
                print(f"[{k}/{len(todo)}] {row['id']}: FAILED {outcome.error}", flush=True)
                continue
            label = outcome.label.to_dict()
            label["model"] = row["file"]
            record["label"] = label
            handle.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
            handle.flush()
            print(f"[{k}/{len(todo)}] {row['id']}: {label['label_ms']:.3f} ms ({label['estimator']}"
                  f"{', FALLBACK' if label['fallback'] else ''}) {time.perf_counter() - start:.0f} s", flush=True)
    if (out / "retest.jsonl").is_file():  # a re-measured label changes the agreement too
        write_retest_summary(out)


def write_retest_summary(out: Path) -> dict[str, Any]:
    """Test-retest agreement of the real-network labels (|retest / label - 1|), into retest_summary.json."""
    first = {r["id"]: r["label"] for r in _read_jsonl(out / "labels.jsonl")}
    pairs = [(first[r["id"]], r["label"]) for r in _read_jsonl(out / "retest.jsonl") if r["id"] in first]
    diff = sorted(abs(b["label_ms"] / a["label_ms"] - 1.0) for a, b in pairs)
    if not diff:
        return {}
    summary = {"networks": len(diff), "mean_diff": statistics.mean(diff), "median_diff": statistics.median(diff),
               "p90_diff": diff[min(len(diff) - 1, int(round(0.9 * (len(diff) - 1))))], "max_diff": diff[-1],
               "within_5pct": sum(d <= 0.05 for d in diff) / len(diff),
               "within_10pct": sum(d <= 0.10 for d in diff) / len(diff),
               "first": min(b["timestamp"] for _, b in pairs), "last": max(b["timestamp"] for _, b in pairs)}
    write_json_atomic(summary, out / "retest_summary.json")
    print(json.dumps(summary, indent=1))
    return summary


def _write_labels_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """What a reader needs beside the labels: the export recipe, the network list and the family map."""
    info = {"recipe": manifest.get("recipe"), "recipe_key": manifest.get("recipe_key"),
            "export_command": ".export-venv/bin/python benchmarks/real_networks.py export",
            "measure_command": "python benchmarks/real_networks.py measure [--retest]",
            "networks": [{"id": network_id(s, n, r), "source": s, "name": n, "family": f, "resolution": r,
                          "kwargs": kw, "generator_family": GENERATOR_FAMILY.get(f)} for s, n, f, r, kw in NETWORKS],
            "generator_family": GENERATOR_FAMILY,
            "note": "a held-out test set: never used for training, early stopping, model or recipe selection. "
                    "generator_family names the training family of the same design (None: a family never seen "
                    "in training)."}
    write_json_atomic(info, out / "manifest.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export the networks (run with the export venv's python)")
    exp.add_argument("--out", default=str(DEFAULT_DIR), help=f"cache folder (default {DEFAULT_DIR})")
    exp.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    exp.add_argument("--retry-failed", action="store_true", help="export again the networks that failed before")
    chk = sub.add_parser("check", help="encode the exported networks (run with the project venv)")
    chk.add_argument("--onnx-dir", default=str(DEFAULT_DIR))
    chk.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    chk.add_argument("--repeats", type=int, default=3, help="encode timings per network; the best is kept")
    chk.add_argument("--out", default=str(RESULTS_FILE))
    sub.add_parser("list", help="print the network ids")
    mea = sub.add_parser("measure", help="latency labels with the CPU protocol (project venv; resumable)")
    mea.add_argument("--onnx-dir", default=str(DEFAULT_DIR))
    mea.add_argument("--only", nargs="+", help="network ids or model names (default: all)")
    mea.add_argument("--labels-dir", default=str(LABELS_DIR))
    mea.add_argument("--retest", action="store_true", help="measure every labelled network again into retest.jsonl")
    mea.add_argument("--measure-core", type=int, default=None)
    mea.add_argument("--window", type=int, default=4, help="models in flight at once (their passes interleave)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for s, n, f, r, _ in NETWORKS:
            print(f"{network_id(s, n, r)}\t{f}")
    elif args.command == "export":
        cmd_export(args)
    elif args.command == "measure":
        cmd_measure(args)
    else:
        if args.repeats < 1:
            fail(f"--repeats must be >= 1, got {args.repeats}")
        cmd_check(args)


if __name__ == "__main__":
    main()
