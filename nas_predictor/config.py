"""Experiment configuration: YAML validated into typed objects; a bad key or value is an error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from nas_predictor.config_common import TrainConfig, _Strict
from nas_predictor.encoding import PE_VARIANTS
from nas_predictor.errors import ConfigError
from nas_predictor.proxy_features import expand_proxy_names
# re-exported: `from nas_predictor.config import X` keeps working for the latency classes that moved
from nas_predictor.latency_config import LatencyDataConfig as LatencyDataConfig
from nas_predictor.latency_config import LatencyExperimentConfig
from nas_predictor.latency_config import NetworkEncodingConfig as NetworkEncodingConfig
from nas_predictor.model_config import ModelConfig


#: the metric names each benchmark's tables have (data.train_target / data.eval_target)
NB101_TARGETS = ("valid_acc", "test_acc")


class DataConfig(_Strict):
    # nb201: the shared NAS-Bench-201 CSV (or an official .pth as table_file); nb101: the shared NASLib
    # 500-cell subset (validation accuracy only), or the official nasbench_only108.tfrecord as table_file
    benchmark: Literal["nb201", "nb101"] = "nb201"
    # An official benchmark file to read labels from instead of the shared data (optional).
    table_file: str | None = None
    train_target: str = "c10valid_valid_200ep"
    eval_target: str = "c10_test_200ep"
    # Accuracy tables are in percent; the model is trained on fractions as in the reference.
    label_scale: float = Field(0.01, gt=0)
    split: Literal["paper", "random"] = "paper"
    n_train: int = Field(781, ge=1)
    # 0: no validation cells, and the last epoch's weights are kept (a protocol whose only labels are the
    # n_train training cells, as TNASP's and PINAT's random splits)
    n_valid: int = Field(200, ge=0)
    split_seed: int = Field(0, ge=0)  # numpy seeds are non-negative
    # "all": test on every cell, training and validation ones included (the paper's protocol);
    # "rest": only on the cells neither split holds (a held-out test set, for small tables)
    test_on: Literal["all", "rest"] = "all"


class EncodingConfig(_Strict):
    num_freqs: int = Field(32, ge=1, le=64)
    variant: str = "nerf"
    # Zero-cost proxies the model reads besides the cell (issue 31): proxy names (synflow, jacov, naswot,
    # snip, grad_norm, params, flops), family names (size, saliency, activation) or "all"; none by default.
    # They are computed (or read from the proxy cache, `nas-predictor proxies`) for every cell.
    proxies: list[str] = []
    # images per proxy batch (jacov and naswot compare a batch's images with each other); smaller for
    # large inputs. Part of the proxy cache's key, and kept in the checkpoint for prediction.
    proxy_batch_size: int = Field(64, ge=2)

    @model_validator(mode="after")
    def _known_variant(self) -> "EncodingConfig":
        if self.variant not in PE_VARIANTS:
            raise ValueError(f"variant must be one of {PE_VARIANTS}, got {self.variant!r}")
        self.proxies = expand_proxy_names(self.proxies)
        return self


class PredictConfig(_Strict):
    # Score an arch string as the mean prediction over the cells of its search space that compute the
    # same function (NAS-Bench-201: dead ops, none edges, identity skips). Stored in the checkpoint.
    average_equivalent: bool = False


class ExperimentConfig(_Strict):
    name: str = "experiment"
    space: str = "nasbench201"
    data: DataConfig = DataConfig()
    encoding: EncodingConfig = EncodingConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    predict: PredictConfig = PredictConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        if self.encoding.proxies and not self.model.proxy_dim:
            self.model = self.model.model_copy(update={"proxy_dim": len(self.encoding.proxies)})
        if self.model.proxy_dim != len(self.encoding.proxies):
            raise ValueError(f"model.proxy_dim ({self.model.proxy_dim}) must equal the number of encoding.proxies "
                             f"({len(self.encoding.proxies)}); leave it out and it is filled in")
        if self.model.input_dim != 4 * self.encoding.num_freqs:
            raise ValueError(
                f"model.input_dim ({self.model.input_dim}) must equal 4 * encoding.num_freqs "
                f"({4 * self.encoding.num_freqs}) for cell tokens"
            )
        if (self.data.benchmark == "nb101") != (self.space == "nasbench101"):
            raise ValueError(f"data.benchmark {self.data.benchmark!r} does not go with space {self.space!r} "
                             "(nb101 <-> nasbench101, nb201 <-> nasbench201)")
        if self.data.benchmark == "nb101":
            for key in ("train_target", "eval_target"):
                if getattr(self.data, key) not in NB101_TARGETS:
                    raise ValueError(f"data.{key} {getattr(self.data, key)!r} is not a NAS-Bench-101 metric; "
                                     f"choose from {', '.join(NB101_TARGETS)}")
        if self.model.num_outputs != 1:
            raise ValueError("model.num_outputs > 1 is for multi-device latency models only")
        if self.train.equivalence_augment and self.train.lambda_ac > 0:
            raise ValueError(
                "train.equivalence_augment and train.lambda_ac > 0 cannot be combined: the AC loss pairs each "
                "cell with a relabelled copy of itself, not of its drawn class member; set one of them off"
            )
        return self


def is_latency_tree(tree: dict[str, Any]) -> bool:
    model = tree.get("model")
    return isinstance(model, dict) and model.get("task") == "latency"


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key!r}")
        else:
            lines.append(f"config key {key!r}: {item['msg']} (got {item.get('input')!r})")
    return f"{source}: " + "; ".join(lines)


def _apply_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: the key must be dotted names such as train.epochs")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: the value {raw!r} is not valid YAML ({_yaml_problem(err, line=False)}); "
                          f"quote a text value, e.g. --set \"{key}='{raw}'\"") from None


def _yaml_problem(err: yaml.YAMLError, line: bool = True) -> str:
    """The parser's problem and where, on one line (its own message spans lines and quotes the input)."""
    problem = getattr(err, "problem", None) or " ".join(str(err).split())[:200]
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if line else \
        f"{problem} at column {mark.column + 1}"


def validate_config(tree: dict[str, Any], source: str = "config") -> ExperimentConfig | LatencyExperimentConfig:
    """An accuracy experiment, or a latency one when ``model.task`` is ``latency``."""
    kind = LatencyExperimentConfig if is_latency_tree(tree) else ExperimentConfig
    return validate_model(kind, tree, source)


def read_yaml_tree(path: str | Path | None, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """(the mapping of a YAML file, or {} when path is None, with key=value overrides applied, its source)."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {source!r} not found") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {source!r} is a folder, not a YAML file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {source!r} ({getattr(err, 'strerror', None) or err})") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML ({_yaml_problem(err)})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: top level must be a mapping, got {type(loaded).__name__}")
        tree = loaded or {}
    for assignment in overrides:
        _apply_override(tree, assignment)
    return tree, source


def validate_model(kind: type[BaseModel], tree: dict[str, Any], source: str) -> Any:
    """``kind.model_validate(tree)``, or a ConfigError naming each bad key."""
    try:
        return kind.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(
    path: str | Path | None, overrides: Sequence[str] = ()
) -> ExperimentConfig | LatencyExperimentConfig:
    """Read a YAML config (or start from defaults when path is None) and apply key=value overrides."""
    tree, source = read_yaml_tree(path, overrides)
    return validate_config(tree, source)
