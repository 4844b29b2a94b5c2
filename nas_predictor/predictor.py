"""Predictor = tokenizer + one or more NAR-Former V2 models (an ensemble averages them) + save/load."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nas_predictor.calibration import apply_calibration
from nas_predictor.encoding import CellTokenizer, GraphBatch, size_batches
from nas_predictor.equivalence import class_mean
from nas_predictor.errors import CheckpointError, ConfigError, NasPredictorError
from nas_predictor.graph import ArchGraph
# atomic_write_bytes / atomic_write_json are re-exported: their home is nas_predictor.io now.
from nas_predictor.io import atomic_write_bytes, atomic_write_json  # noqa: F401
from nas_predictor.architectures import build_model
from nas_predictor.model import ModelConfig, NARFormerV2
from nas_predictor.network_encoding import NetworkTokenizer
from nas_predictor import pretrained_cards

CHECKPOINT_FORMAT = "nas-predictor/checkpoint"
CHECKPOINT_VERSION = 1
PRETRAINED_DIR = pretrained_cards.PRETRAINED_DIR  # kept here for callers that import it from this module
# Cells per forward pass. On CPU small chunks keep the 4x-wide FFN activations in cache and were
# faster than large ones (128: ~8 s, 1024: ~12 s, 2048: ~15 s for all NB201 cells on 2 cores).
DEFAULT_BATCH_SIZE = {"cpu": 128, "cuda": 4096}
def tokenizer_from_config(config: dict[str, Any]) -> CellTokenizer | NetworkTokenizer:
    """The tokenizer a checkpoint was trained with: cell tokens, or whole-network (ONNX) tokens."""
    config = dict(config)
    if config.pop("kind", "cell") == "network":
        return NetworkTokenizer(**config)
    return CellTokenizer(**config)


class PredictionError(NasPredictorError, ValueError):
    """A prediction came out NaN or infinite: never printed, never returned."""


def _check_finite(values: np.ndarray, count: int, what: str, names: Sequence[str] | None = None) -> np.ndarray:
    """``values`` (one row per input) when all are finite, else a PredictionError naming the first bad input."""
    values = np.asarray(values)
    rows = values.reshape(count, -1) if count else values.reshape(0, 1)
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if bad.size:
        name = repr(names[bad[0]]) if names is not None else f"input {bad[0]}"
        raise PredictionError(f"{what} is not finite for {bad.size} of {count} input(s), first {name} "
                              f"({rows[bad[0]].tolist()}): it lies outside what this predictor can score "
                              "(check its FLOPs, parameters and shapes)")
    return values


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA GPU (use --device cpu)")
    return torch.device(device)


class Predictor:
    """Predicts a target (e.g. CIFAR-10 accuracy in percent) for ArchGraphs or arch strings."""

    def __init__(self, meta: dict[str, Any], models: Sequence[NARFormerV2], device: str = "cpu") -> None:
        if not models:
            raise ValueError("a Predictor needs at least one model")
        self.meta = meta
        self.tokenizer = tokenizer_from_config(meta["encoding"])
        self.device = resolve_device(device)
        self.models = [m.to(self.device).eval() for m in models]

    # -- prediction -------------------------------------------------------------------------------
    @property
    def space(self) -> str:
        return self.meta["space"]

    @property
    def label_scale(self) -> float:
        return float(self.meta.get("label_scale", 1.0))

    def to(self, device: str) -> "Predictor":
        self.device = resolve_device(device)
        self.models = [m.to(self.device) for m in self.models]
        return self

    @torch.inference_mode()
    def predict_batch(self, batch: GraphBatch) -> np.ndarray:
        """Raw model outputs (fractions for accuracy), ensemble mean, for an encoded batch."""
        batch = batch.to(self.device)
        out = torch.stack([m(batch) for m in self.models]).mean(dim=0)
        return out.float().cpu().numpy()

    def predict_graphs(self, graphs: Sequence[ArchGraph], batch_size: int | None = None,
                       names: Sequence[str] | None = None) -> np.ndarray:
        """Predictions in label units (e.g. accuracy in percent), calibrated when the predictor has one.
        A NaN or infinite prediction is a PredictionError naming the graph, never a returned number."""
        raw = self.predict_graphs_raw(graphs, batch_size, names)
        return _check_finite(apply_calibration(raw, self.meta.get("calibration")), len(graphs),
                             "the calibrated prediction", names)

    def predict_graphs_raw(self, graphs: Sequence[ArchGraph], batch_size: int | None = None,
                           names: Sequence[str] | None = None) -> np.ndarray:
        """Model outputs divided by the label scale, before calibration."""
        batch_size = batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 1024)
        if not len(graphs):
            return np.zeros(0)
        # batches of similar sizes: a batch is padded to its largest graph, and attention costs grow with
        # the square of the nodes (real networks of 50 and 800 nodes side by side waste most of a batch)
        sizes = np.array([g.num_nodes for g in graphs])
        order = np.argsort(sizes, kind="stable")
        outs = [self.predict_batch(self.tokenizer.encode([graphs[j] for j in part]))
                for part in size_batches(order, sizes, batch_size, self.device.type)]
        raw = np.empty_like(np.concatenate(outs))
        raw[order] = np.concatenate(outs)
        return _check_finite(raw / self.label_scale, len(graphs), "the prediction", names)

    @property
    def settings(self) -> list[str]:
        """The device settings a latency predictor predicts, one output each (empty for accuracy)."""
        if self.meta.get("settings"):
            return list(self.meta["settings"])
        return [self.meta["setting"]] if self.meta.get("setting") else []

    @property
    def default_setting(self) -> str | None:
        """The setting predicted when none is named: a shipped name's own (``latency-2080ti_1`` is a
        view of a multi-device file), else the first."""
        settings = self.settings
        return self.meta.get("default_setting") or (settings[0] if settings else None)

    def predict_latency(self, graphs: Sequence[ArchGraph], setting: str | None = None) -> np.ndarray:
        """Predicted latency in ms of each whole-network graph on one setting (default: the first)."""
        settings = self.settings
        if self.meta.get("task") != "latency" or not settings:
            raise ConfigError(f"this is not a latency predictor (it predicts {self.meta.get('task')!r})")
        if setting is None:
            setting = self.default_setting
        if setting not in settings:
            raise ConfigError(f"this predictor has no setting {setting!r}; it predicts {', '.join(settings)}")
        if not len(graphs):
            return np.zeros(0)
        pred = self.predict_graphs(graphs)
        return pred.reshape(len(graphs), -1)[:, settings.index(setting)]

    @property
    def average_equivalent(self) -> bool:
        """Whether arch strings are scored as the mean over their space's equivalence class."""
        return bool(self.meta.get("average_equivalent", False))

    def predict(
        self, archs: Sequence[str] | Sequence[ArchGraph], batch_size: int | None = None,
        average_equivalent: bool | None = None,
    ) -> np.ndarray:
        """Predict for arch strings of this predictor's search space, or for ArchGraphs.

        With ``average_equivalent`` (default: the predictor's own setting) each arch string gets the mean
        prediction over the architectures of its space that compute the same function; ArchGraphs are
        always scored as given.
        """
        average = self.average_equivalent if average_equivalent is None else average_equivalent
        if average and archs and all(isinstance(a, str) for a in archs):
            space = self._space()
            return class_mean(space, list(archs), lambda todo: self.predict(todo, batch_size, False))
        graphs = self._graphs(archs)
        names = [a if isinstance(a, str) else f"graph {i}" for i, a in enumerate(archs)]
        return self.predict_graphs(graphs, batch_size, names)

    def _graphs(self, archs: Sequence[str] | Sequence[ArchGraph]) -> list[ArchGraph]:
        """The graphs of arch strings (ArchGraphs as given); a predictor that reads zero-cost proxies gets
        them attached from its space's proxy cache, computed where the cache has none yet."""
        graphs = [a if isinstance(a, ArchGraph) else self._space().to_graph(a) for a in archs]
        proxies = getattr(self.tokenizer, "proxies", None)
        strings = [i for i, a in enumerate(archs) if isinstance(a, str)]
        if proxies is None or not strings:
            return graphs
        from nas_predictor.zero_cost_store import attach_proxies

        attached = attach_proxies(self._space(), [archs[i] for i in strings], [graphs[i] for i in strings],
                                  seed=proxies.seed, batch_size=proxies.batch_size, progress=len(strings) > 100)
        for i, graph in zip(strings, attached):
            graphs[i] = graph
        return graphs

    def predict_with_plain(
        self, archs: Sequence[str], graphs: Sequence[ArchGraph] | None = None, batch_size: int | None = None,
        average_equivalent: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predictions as ``predict`` makes them, each cell scored alone) from one pass over ``archs``.

        ``graphs`` (the archs' graphs, if already built) saves rebuilding them.
        """
        average = self.average_equivalent if average_equivalent is None else average_equivalent
        if graphs is None:
            graphs = self._graphs(archs)
        plain = self.predict_graphs(graphs, batch_size, list(archs))
        if not average:
            return plain, plain
        averaged = class_mean(self._space(), list(archs), lambda todo: self.predict(todo, batch_size, False),
                              known=dict(zip(archs, plain)))
        return averaged, plain

    def _space(self) -> Any:
        from nas_predictor.spaces import get_space  # entry-point lookup, so no import of search_spaces

        if self.space is None:  # a latency predictor reads whole networks, never a space's arch strings
            raise ConfigError(f"this {self.meta.get('task', 'accuracy')} predictor has no search space: it reads "
                              "ArchGraphs of whole networks (predict_graphs, or ONNX files with `nas-predictor "
                              "latency`), not architecture strings")
        return get_space(self.space)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path, half: bool = False, weights: str | None = None) -> Path:
        """Write weights + JSON config atomically (temp file in the same folder, then rename).

        ``weights``: "float32" (default), "float16" (same as ``half=True``) or "int8" (matrices stored
        as int8 with one float16 scale per last-dimension vector, about a quarter of float32; restored to
        float32 on load, so only storage shrinks).
        """
        weights = weights or ("float16" if half else "float32")
        if weights not in STORAGE_DTYPES:
            raise ValueError(f"weights must be one of {STORAGE_DTYPES}, got {weights!r}")
        path = Path(path)
        members = []
        for model in self.models:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            members.append({k: _pack(v, weights) for k, v in state.items()})
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": json.dumps(self.meta, sort_keys=True),
            "members": members,
        }
        atomic_torch_save(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Predictor":
        path = Path(path)
        if path.is_dir():
            raise CheckpointError(f"checkpoint {str(path)!r} is a folder, not a checkpoint file")
        if not path.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for truncated/corrupt/unsafe files
            detail = (str(err).strip().splitlines() or ["no message"])[0][:200]  # an empty file's error is ''
            empty = " (the file is empty)" if path.stat().st_size == 0 else ""
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r}{empty}: it is truncated, corrupt, or not a nas-predictor "
                f"checkpoint ({type(err).__name__}: {detail})"
            ) from None
        return cls.from_payload(payload, str(path), device)

    @classmethod
    def from_payload(cls, payload: Any, source: str, device: str = "cpu") -> "Predictor":
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{source} is not a nas-predictor checkpoint (missing format tag)")
        if payload.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{source}: unsupported checkpoint version {payload.get('version')!r}")
        try:
            meta = json.loads(payload["config"])
            model_cfg = ModelConfig.model_validate(meta["model"])
        except Exception as err:
            raise CheckpointError(f"{source}: bad embedded config ({err})") from None
        models = []
        for i, state in enumerate(payload.get("members") or []):
            model = build_model(model_cfg)
            try:
                tensors = {k: _unpack(v) for k, v in state.items()}
                model.load_state_dict(tensors)
            except Exception as err:
                raise CheckpointError(f"{source}: member {i} does not match its config ({err})") from None
            # NaN weights predict NaN for every input: refuse the file rather than print its numbers
            for name, tensor in tensors.items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    count = int((~torch.isfinite(tensor)).sum())
                    raise CheckpointError(f"{source}: member {i} weight {name!r} holds {count} NaN or infinite "
                                          f"value(s) of {tensor.numel()}; the checkpoint is damaged (retrain it)")
            models.append(model)
        if not models:
            raise CheckpointError(f"{source}: checkpoint holds no model weights")
        return cls(meta, models, device)


STORAGE_DTYPES = ("float32", "float16", "int8")


def _pack(tensor: torch.Tensor, weights: str) -> Any:
    if not tensor.is_floating_point() or weights == "float32":
        return tensor
    if weights == "float16" or tensor.dim() < 2 or tensor.numel() < 4096:  # biases, gates: keep fp16
        return tensor.half()
    # One scale per vector along the last dimension (a Linear's row, a grouped weight's group row).
    rows = tensor.reshape(-1, tensor.shape[-1]).float()
    scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    quantized = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return {"int8": quantized.reshape(tensor.shape), "scale": scale.half()}


def _unpack(value: Any) -> torch.Tensor:
    if isinstance(value, dict):  # int8 rows with per-row scales
        try:
            q, scale = value["int8"], value["scale"]
            rows = q.reshape(-1, q.shape[-1]).float() * scale.float()[:, None]
            return rows.reshape(q.shape)
        except (KeyError, RuntimeError, AttributeError) as err:
            raise CheckpointError(f"malformed int8 weight entry ({err})") from None
    return value.float() if value.is_floating_point() else value


def atomic_torch_save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


# -- pretrained registry (the cards live in nas_predictor.pretrained_cards) --------------------------------
def list_pretrained() -> list[str]:
    """Names accepted by :func:`load_pretrained` and by the CLI in place of a checkpoint path."""
    return pretrained_cards.names()


def pretrained_info(name: str) -> dict[str, Any]:
    """The manifest entry of a shipped predictor (a CheckpointError listing what ships when there is none)."""
    return dict(pretrained_cards.card(name).info)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_pretrained(name: str, device: str = "cpu") -> Predictor:
    """Load a shipped predictor after checking its sha256 against the manifest."""
    card = pretrained_cards.card(name)
    path = card.file
    if not path.is_file():
        raise CheckpointError(f"pretrained file {path} listed in the manifest is missing")
    actual = sha256_file(path)
    if actual != card.sha256:
        raise CheckpointError(f"pretrained file {path} is damaged: sha256 {actual} != manifest {card.sha256}")
    predictor = Predictor.load(path, device)
    if card.setting:  # one device setting of a multi-device latency predictor
        predictor.meta["default_setting"] = card.setting
    return predictor


def load_predictor(name_or_path: str | Path, device: str = "cpu") -> Predictor:
    """A checkpoint path, or the name of a shipped predictor."""
    if str(name_or_path) in pretrained_cards.names():
        return load_pretrained(str(name_or_path), device)
    path = Path(name_or_path)
    if not path.exists():
        raise CheckpointError(
            f"{str(name_or_path)!r} is neither a checkpoint file nor a pretrained name "
            f"({', '.join(list_pretrained()) or 'none shipped'})"
        )
    return Predictor.load(path, device)
