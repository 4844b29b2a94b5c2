"""The search config: a YAML file (``configs/search_*.yaml``) validated into :class:`SearchConfig`;
command-line flags override its keys. A wrong key or value is an error naming it."""

from __future__ import annotations

import warnings
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nas_predictor.config import read_yaml_tree, validate_model
from nas_predictor.latency_estimator import DEFAULT_SEARCH_PREDICTOR
from nas_predictor.proxy_features import expand_proxy_names
from strategies.names import MEASURED_SETTING, SPACE_ALIASES

#: config keys renamed, old -> new: the old one is still read, with a FutureWarning
RENAMED_KEYS = {"latency_device": "latency_setting"}


class SurrogateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    refit_every: int = Field(10, ge=1)  # evaluations between refits of the online predictor
    min_points: int = Field(10, ge=2)
    steps: int = Field(400, ge=1)  # optimiser steps per refit
    ensemble: int = Field(1, ge=1)
    # zero-cost proxies every refit reads beside the cells (names, families or "all"; cell spaces only):
    # the space's proxy cache, or NAS-Bench-201's packaged table, must hold or compute them
    proxies: list[str] = []

    @model_validator(mode="after")
    def _known_proxies(self) -> "SurrogateParams":
        self.proxies = expand_proxy_names(self.proxies)
        return self


class SearchConfig(BaseModel):
    # a NaN target or bound would silently never (or always) hold: finite numbers only
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = "search"
    space: str = "nasbench201"
    strategy: Literal["random", "evolution", "tpe", "predictor"] = "predictor"
    guided: bool = False  # evolution / tpe: screen candidates with the predictor
    budget: int = Field(100, ge=1)
    seed: int = Field(0, ge=0)  # numpy seeds are non-negative
    # what an evaluation is: "table" = the real benchmark accuracies (needs the data), "predictor" =
    # the shipped accuracy predictor's predictions, "auto" = the table when the data is there
    oracle: Literal["auto", "table", "predictor"] = "auto"
    dataset: Literal["cifar10", "cifar100", "ImageNet16-120"] = "cifar10"
    # an official benchmark file for the table oracle: NAS-Bench-201 .pth, NAS-Bench-101
    # nasbench_only108.tfrecord (default: the shared data; for NB101 that is a 292-cell subset)
    table_file: str | None = None
    predictor: str = "nb201-accuracy"  # accuracy predictor for oracle=predictor or surrogate=pretrained
    # what guides predictor strategies on a table oracle: a NAR-Former V2 refit on this search's own
    # evaluations ("online"), or the shipped predictor ("pretrained", trained on NB201 table labels)
    surrogate: Literal["online", "pretrained"] = "online"
    surrogate_params: SurrogateParams = SurrogateParams()
    strategy_params: dict[str, Any] = {}
    max_latency_ms: float | None = Field(None, gt=0)
    latency_setting: str | None = None  # the device setting of the bound (`nas-predictor latency --setting`)
    # "table" = HELP's measured latencies (NB201, needs the data), "predictor" = latency_predictor,
    # "measured" = each candidate timed on this machine (strategies.measured_latency; setting cpu_ort_1t)
    latency_source: Literal["auto", "table", "predictor", "measured"] = "auto"
    latency_predictor: str = DEFAULT_SEARCH_PREDICTOR
    # a few networks timed on your device (nas-predictor measure --json, or CSV model,ms[,batch]): the
    # latency predictor is mapped to them (one factor or a power law, nas_predictor.calibration)
    latency_calibrate: str | None = None
    latency_calibrate_fit: Literal["auto", "scale", "power"] = "auto"  # see nas_predictor.calibration
    target: float | None = None  # stop once an evaluation reaches this value
    top: int = Field(10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED_KEYS.items():
                if old in data and new in data:
                    raise ValueError(f"{old} is the old name of {new}: give only {new}")
        return rename_old_keys(data)

    @model_validator(mode="after")
    def _check(self) -> "SearchConfig":
        if self.space not in SPACE_ALIASES:
            raise ValueError(f"unknown space {self.space!r}; choose from {', '.join(sorted(SPACE_ALIASES))}")
        self.space = SPACE_ALIASES[self.space]
        if self.guided and self.strategy in ("random", "predictor"):
            raise ValueError(f"guided applies to evolution and tpe; {self.strategy} has no guided variant")
        if self.latency_source == "measured":
            if self.latency_setting not in (None, MEASURED_SETTING):
                raise ValueError(f"latency_source measured times each network on this machine (setting "
                                 f"{MEASURED_SETTING}: onnxruntime, one CPU thread, batch 1); latency_setting "
                                 f"{self.latency_setting!r} is another device's: leave it out")
            if self.latency_calibrate is not None:
                raise ValueError("latency_calibrate rescales a latency predictor; latency_source measured times "
                                 "each network on this machine")
            self.latency_setting = MEASURED_SETTING
        if self.max_latency_ms is not None and self.latency_setting is None:
            raise ValueError("max_latency_ms needs latency_setting (--setting: a device setting such as titan_rtx_1 "
                             "or pixel3)")
        if self.latency_setting == "nearest" and self.latency_calibrate is None:
            raise ValueError("latency_setting nearest is the predictor setting closest to your timings: "
                             "give latency_calibrate (--latency-calibrate TIMINGS)")
        if self.latency_calibrate is not None and self.latency_source == "table":
            raise ValueError("latency_calibrate rescales a latency predictor; latency_source table is measured "
                             "latencies (use latency_source predictor or auto)")
        return self


def rename_old_keys(data: Any) -> Any:
    """``data`` with each old key of :data:`RENAMED_KEYS` under its new name (a FutureWarning says so);
    where both are given, as is (validation then names the clash)."""
    if not isinstance(data, dict):
        return data
    for old, new in RENAMED_KEYS.items():
        if old in data and new not in data:
            warnings.warn(f"search config key {old} is deprecated; use {new}", FutureWarning, stacklevel=3)
            data = {(new if k == old else k): v for k, v in data.items()}
    return data


def load_search_config(path: str | None, overrides: Sequence[str] = (), **flags: Any) -> SearchConfig:
    """A YAML search config (or the defaults), then ``--set key=value`` overrides, then non-None flags."""
    tree, source = read_yaml_tree(path, overrides)
    tree = rename_old_keys(tree)  # first, so a flag overrides an old key of the file
    tree.update({k: v for k, v in flags.items() if v is not None})
    return validate_model(SearchConfig, tree, source)
