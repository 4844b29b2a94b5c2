"""Latency experiment configuration: measured-latency data, network token encoding and the experiment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from nas_predictor.config_common import TrainConfig, _Strict
from nas_predictor.model_config import ModelConfig

if TYPE_CHECKING:
    from nas_predictor.network_encoding import NetworkTokenizer


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
    # Read ``torch.stack(xs).sum(0)`` (Unsqueeze x k -> Concat -> ReduceSum) as one n-ary Add, where the
    # shapes prove it exact (nas_predictor/stacked_sums.py): for the online accuracy surrogate's tokens.
    # Off for latency: the stacked form copies its inputs at run time.
    merge_stacked_sums: bool = False
    # Leave out the source node of each scalar constant operand (``x * 0``, ``x + 3``), whose token holds
    # no value (nas_predictor/scalar_inputs.py): for the online accuracy surrogate's tokens; off for latency.
    drop_scalar_inputs: bool = False

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
                                op_latency=bool(self.op_latency), fold_batchnorm=self.fold_batchnorm,
                                merge_stacked_sums=self.merge_stacked_sums,
                                drop_scalar_inputs=self.drop_scalar_inputs)


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
