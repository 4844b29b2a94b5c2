"""Experiment configuration: YAML validated into typed objects; a bad key or value is an error naming it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nas_predictor.encoding import PE_VARIANTS
from nas_predictor.errors import ConfigError
from nas_predictor.model_config import ModelConfig

if TYPE_CHECKING:
    from nas_predictor.network_encoding import NetworkTokenizer


class _Strict(BaseModel):
    # a NaN or an infinity is never a setting (.nan and .inf are YAML floats): refuse them by name
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    n_valid: int = Field(200, ge=1)
    split_seed: int = Field(0, ge=0)  # numpy seeds are non-negative
    # "all": test on every cell, training and validation ones included (the paper's protocol);
    # "rest": only on the cells neither split holds (a held-out test set, for small tables)
    test_on: Literal["all", "rest"] = "all"


class EncodingConfig(_Strict):
    num_freqs: int = Field(32, ge=1, le=64)
    variant: str = "nerf"

    @model_validator(mode="after")
    def _known_variant(self) -> "EncodingConfig":
        if self.variant not in PE_VARIANTS:
            raise ValueError(f"variant must be one of {PE_VARIANTS}, got {self.variant!r}")
        return self


class TrainConfig(_Strict):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    lambda_sr: float = Field(0.1, ge=0)
    lambda_ac: float = Field(0.5, ge=0)
    # "permutation": the reference's SR loss (one random pairing per batch); "all_pairs": every pair.
    sr_mode: Literal["permutation", "all_pairs"] = "permutation"
    # The value term: the reference's mean((pred/y - 1)^2), or mean(|pred/y - 1|), which is the MAPE
    # that latency predictors are judged on.
    # relative_squared: the reference's; relative_absolute: the MAPE itself; log_absolute: |log pred -
    # log label|, for labels spanning orders of magnitude (the output starts at their geometric mean)
    value_loss: Literal["relative_squared", "relative_absolute", "log_absolute"] = "relative_squared"
    # > 0 switches Adam to AdamW (decoupled decay); the reference uses plain Adam without decay.
    weight_decay: float = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = Field(128, ge=1)
    # Train this many members with seeds seed, seed+1000, seed+2000, ... and average them (1 = one model).
    ensemble: int = Field(1, ge=1)
    # Train up to this many members at once, each in its own process with threads/workers torch threads
    # (CPU only; on CUDA members train one after another).
    workers: int = Field(1, ge=1)
    threads: int = Field(0, ge=0)  # 0 = leave torch's default
    # Set the output bias so the untrained model predicts the mean training label (not in the reference).
    init_output_bias: bool = False
    # Fit a positive linear map from predictions to training labels after training (keeps rankings).
    calibrate: bool = False
    # Each step, feed every training cell as a random member of its equivalence class (cells of the
    # space that compute the same function, SearchSpace.equivalent_archs), with the cell's own label.
    # Teaches the invariance that predict.average_equivalent imposes at inference; no extra compute.
    equivalence_augment: bool = False
    # Model selection: keep the latest epoch whose validation tau is within this much of the best one
    # (0 = the best epoch). Late epochs of the annealed schedule differ on 200 validation cells by
    # less than tau's sampling noise there; the tolerance keeps such ties from picking an earlier,
    # less trained model.
    select_tolerance: float = Field(0.0, ge=0, lt=1)
    # Validate, select and keep an exponential moving average of the weights (this decay per step;
    # 0 = off, the reference). Test tau of the raw weights swings by ~0.005 between late epochs; the
    # average smooths that noise away at the cost of one parameter copy (not in the reference).
    ema_decay: float = Field(0.0, ge=0, lt=1)
    # Ramp the average's decay up as min(ema_decay, (1 + n) / (10 + n)) after n updates (TensorFlow's
    # num_updates rule). Without it the first weights linger: 0.998 over 1,440 steps (40 epochs of
    # 1,150 networks) still holds 6 % of the step-1 weights, and validation MAPE lagged the raw
    # weights' by ~4 points at the last epoch (issue 27).
    ema_warmup: bool = False
    # Validation metric for model selection: Kendall tau (accuracy ranking) or MAPE (latency values).
    select_metric: Literal["kendall_tau", "mape"] = "kendall_tau"
    # Batch graphs of similar size together (shuffled within chunks of 64 batches, batch order
    # shuffled): whole networks range from ~150 to ~450 nodes, and padding every batch to its largest
    # graph wasted about a third of the compute. Cells all have the same size, so it changes nothing there.
    bucket_by_size: bool = False

    @model_validator(mode="before")
    @classmethod
    def _retired_curve_every(cls, tree: Any) -> Any:
        """``curve_every`` (time-to-tau curves) left the config for benchmarks/nb201_accuracy.py
        --curve-every. Checkpoints and results files still store it, so it is dropped, not refused;
        a value that asked for curves says where they went."""
        if isinstance(tree, dict) and "curve_every" in tree:
            tree = dict(tree)
            if tree.pop("curve_every") not in (0, None):
                warnings.warn("train.curve_every is no longer a config key and is ignored: record time-to-tau "
                              "curves with benchmarks/nb201_accuracy.py --curve-every N", UserWarning, stacklevel=2)
        return tree


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


class LatencyDataConfig(_Strict):
    """Measured latencies of whole networks: HELP's NB201 / FBNet / OFA files on one or more device
    settings, or a dataset measured on this machine (``dataset_dir``, built by ``nas-predictor dataset build``)."""

    # A folder written by `nas-predictor dataset build`: its families (the NNLQP ones) and labels are
    # used instead of HELP's; `setting` then only names the label column (one setting: the folder's).
    dataset_dir: str | None = None
    # search spaces whose networks (and latencies) are used; each has a HELP latency table, or, with
    # dataset_dir, families of that dataset (default: all of them)
    families: list[str] | None = None
    # HELP file stem: <device>_<batch> or a bare device name (batch 1). A list of settings (one batch
    # size) trains one multi-device model, one output per setting; a family never measured on one of
    # them simply has no label there.
    setting: str | list[str] = "titan_rtx_1"
    # in_domain: each family split train/test by train_fraction; unseen: test_family only in the test set
    split: Literal["in_domain", "unseen"] = "in_domain"
    test_family: str | None = None
    train_fraction: float = Field(0.9, gt=0, lt=1)
    valid_fraction: float = Field(0.1, gt=0, lt=1)  # of the training part, for model selection
    max_per_family: int | None = Field(None, ge=10)  # a seeded random subset of each family's records
    # random: max_per_family drawn with subset_seed; first: the first max_per_family of each family in
    # the dataset's (measurement) order, which a growing dataset keeps unchanged
    subset: Literal["random", "first"] = "random"
    # The subset has its own seed so that runs with different split seeds share one set of networks
    # (and one exported-graph cache).
    subset_seed: int = Field(0, ge=0)
    split_seed: int = Field(0, ge=0)  # numpy seeds are non-negative
    cache_dir: str | None = None  # exported-graph cache (default $NAS_PREDICTOR_CACHE or ~/.cache/nas_predictor)
    export_workers: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _families_known(self) -> "LatencyDataConfig":
        from nas_predictor.data.latency_tables import HELP_FOLDERS

        if self.dataset_dir is None:
            if self.families is None:
                self.families = list(HELP_FOLDERS)
            unknown = [f for f in self.families if f not in HELP_FOLDERS]
            if unknown:
                raise ValueError(f"data.families {unknown} have no HELP latency table (known: {', '.join(HELP_FOLDERS)}); "
                                 "families of a measured dataset need data.dataset_dir")
        elif self.families is None:
            from nas_predictor.data.latency_dataset import LatencyDataset

            try:
                self.families = list(LatencyDataset(self.dataset_dir).counts())
            except Exception as err:  # DataError and OSError: say which key pointed there
                raise ValueError(f"data.dataset_dir {self.dataset_dir!r}: {err}") from None
            if not self.families:
                raise ValueError(f"data.dataset_dir {self.dataset_dir!r} holds no labels; build it with "
                                 f"`nas-predictor dataset build --out {self.dataset_dir}`")
        if self.dataset_dir is not None and len(self.settings) != 1:
            raise ValueError("a measured dataset (data.dataset_dir) has one label column: give data.setting one name")
        return self

    @property
    def settings(self) -> list[str]:
        return [self.setting] if isinstance(self.setting, str) else list(self.setting)

    @model_validator(mode="after")
    def _split_consistent(self) -> "LatencyDataConfig":
        from nas_predictor.data.latency_tables import parse_setting

        settings = self.settings
        if not settings or len(set(settings)) != len(settings):
            raise ValueError(f"data.setting must name one or more distinct settings, got {self.setting!r}")
        batches = {s: parse_setting(s)[1] for s in settings}
        if len(set(batches.values())) > 1:
            raise ValueError(f"the settings of one model must share a batch size (the graphs differ), got {batches}")
        if self.split == "unseen":
            if self.test_family is None or self.test_family not in self.families:
                raise ValueError("split 'unseen' needs test_family, one of data.families")
            if len(self.families) < 2:
                raise ValueError("split 'unseen' needs at least two families (train on the others)")
        elif self.test_family is not None:
            raise ValueError("test_family only applies to split 'unseen'")
        return self


class NetworkEncodingConfig(_Strict):
    layout: Literal["extended", "reference"] = "extended"
    # Append each node's log FLOPs and log memory traffic to its token (extended layout only).
    node_costs: bool = False
    # Append whether each node's output and input channel counts are multiples of 4 / 8 / 16 (extended
    # layout only): CPU kernels slow down sharply off their channel blocks (network_encoding.py).
    channel_alignment: bool = False
    # Append a one-hot of each node's op group (conv, activation, pooling, ...), and encode an op type
    # the training networks never had by its group alone (network_encoding.py): for families with
    # op types the training families lack (the unseen-family split).
    op_groups: bool = False
    # Read each network as onnxruntime runs it: a BatchNormalization after a Conv folded into the Conv
    # (nas_predictor/runtime_fusion.py), as torch's exporter folds it in eval mode, so a network exported
    # either way gives the same tokens. For onnxruntime datasets; eager-PyTorch latency does run the BN.
    fold_batchnorm: bool = False

    # Append each node's time from a per-operator latency model of the device (nas_predictor.op_latency),
    # fitted when training starts on this operator micro-benchmark folder (`nas-predictor dataset build
    # --ops`, measured on the same device as the networks); the grounded readout scales these times.
    op_latency: str | None = None

    @model_validator(mode="after")
    def _costs_need_extended(self) -> "NetworkEncodingConfig":
        for key in ("node_costs", "channel_alignment", "op_groups", "op_latency"):
            if getattr(self, key) and self.layout != "extended":
                raise ValueError(f"encoding.{key} needs layout 'extended' (the 'reference' layout is kept exact)")
        return self

    def tokenizer(self) -> "NetworkTokenizer":
        from nas_predictor.network_encoding import NetworkTokenizer

        return NetworkTokenizer(self.layout, self.node_costs, self.channel_alignment, self.op_groups,
                                op_latency=bool(self.op_latency), fold_batchnorm=self.fold_batchnorm)


class LatencyExperimentConfig(_Strict):
    """A latency predictor (spec 1.4-1.6): whole-network tokens, sum readout + static features."""

    name: str = "latency"
    data: LatencyDataConfig = LatencyDataConfig()
    encoding: NetworkEncodingConfig = NetworkEncodingConfig()
    model: ModelConfig = ModelConfig(task="latency")  # filled by _latency_defaults
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _latency_defaults(cls, tree: Any) -> Any:
        """Keys a latency YAML leaves out take the reference's latency values, not the accuracy ones."""
        if not isinstance(tree, dict):
            return tree
        tree = dict(tree)
        encoding = tree.get("encoding")
        try:  # the encoding's own validation names its errors; here it only sizes the model
            tokenizer = NetworkEncodingConfig.model_validate(encoding or {}).tokenizer()
        except (ValueError, TypeError):
            tokenizer = None
        if isinstance(tree.get("model", {}), dict):
            model = {"task": "latency", "num_blocks": 2, **(tree.get("model") or {})}
            data = tree.get("data")
            setting = data.get("setting") if isinstance(data, dict) else None
            if "num_outputs" not in model and isinstance(setting, list):
                model["num_outputs"] = len(setting)
            if tokenizer is not None:
                model.setdefault("input_dim", tokenizer.token_dim)
                model.setdefault("static_dim", tokenizer.static_dim)
                model.setdefault("op_slots", tokenizer.num_slots if tokenizer.op_groups else 0)
                model.setdefault("cost_offset", tokenizer.cost_offset if tokenizer.node_costs else 0)
                model.setdefault("op_latency_offset", tokenizer.op_latency_offset if tokenizer.op_latency else 0)
            tree["model"] = model
        if isinstance(tree.get("train", {}), dict):
            tree["train"] = {"lambda_sr": 0.0, "lambda_ac": 0.0, "select_metric": "mape", "init_output_bias": True,
                             "bucket_by_size": True,
                             **(tree.get("train") or {})}
        return tree

    @model_validator(mode="after")
    def _consistent(self) -> "LatencyExperimentConfig":
        if self.model.task != "latency":
            raise ValueError("model.task must be 'latency' in a latency experiment")
        tokenizer = self.encoding.tokenizer()
        for key, dim in (("input_dim", tokenizer.token_dim), ("static_dim", tokenizer.static_dim)):
            if getattr(self.model, key) != dim:
                raise ValueError(f"model.{key} ({getattr(self.model, key)}) must be {dim} for the "
                                 f"{self.encoding.layout!r} network token layout"
                                 f"{' with node_costs' if self.encoding.node_costs else ''}"
                                 f"{' with channel_alignment' if self.encoding.channel_alignment else ''}"
                                 f"{' with op_groups' if self.encoding.op_groups else ''}")
        op_slots = tokenizer.num_slots if tokenizer.op_groups else 0
        if self.model.op_slots != op_slots:
            raise ValueError(f"model.op_slots ({self.model.op_slots}) must be {op_slots}: the op one-hot's width "
                             f"with encoding.op_groups, 0 without")
        cost_offset = tokenizer.cost_offset if tokenizer.node_costs else 0
        if self.model.cost_offset != cost_offset:
            raise ValueError(f"model.cost_offset ({self.model.cost_offset}) must be {cost_offset}: the column of the "
                             f"node-cost slots with encoding.node_costs, 0 without")
        op_offset = tokenizer.op_latency_offset if tokenizer.op_latency else 0
        if self.model.op_latency_offset != op_offset:
            raise ValueError(f"model.op_latency_offset ({self.model.op_latency_offset}) must be {op_offset}: the column "
                             f"of the op-latency slot with encoding.op_latency, 0 without")
        if self.train.lambda_ac > 0 or self.train.equivalence_augment:
            raise ValueError("the AC loss and equivalence augmentation apply to cell predictors only")
        if self.model.num_outputs != len(self.data.settings):
            raise ValueError(f"model.num_outputs ({self.model.num_outputs}) must equal the number of "
                             f"data.setting entries ({len(self.data.settings)})")
        if len(self.data.settings) > 1 and (self.train.select_metric != "mape" or self.train.lambda_sr > 0):
            raise ValueError("a multi-device latency model selects on MAPE and has no ranking loss "
                             "(train.select_metric: mape, train.lambda_sr: 0)")
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
