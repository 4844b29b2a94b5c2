"""The real networks of benchmarks/real_networks.py, their ids and the manifest they are exported into."""

from __future__ import annotations

# stdlib only at the top: this module runs in the export venv, which lacks nas_predictor's dependencies
import contextlib
import hashlib
import json
import os
import sys
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


