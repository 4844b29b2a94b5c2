"""Zero-cost proxies as a predictor's global inputs (issue 31).

A cell's proxies (nas_predictor/zero_cost.py, cached per architecture by nas_predictor/zero_cost_store.py)
ride on its ArchGraph as global scalars named ``zc_<proxy>``, like a whole network's FLOPs do, so every
path that reads graphs (training, the equivalence pools, the isomorphic augmentation, prediction) carries
them without knowing about them. The cell tokenizer turns them into the batch's ``static`` features
with a :class:`ProxyScaler` fitted on the training cells and saved in the checkpoint:

- signed ``log1p``: synflow spans 30 orders of magnitude across NB201 and FLOPs 2; after the log every
  proxy is on a scale where a difference means about the same everywhere;
- centred on the training cells' median and divided by their interquartile range (a few degenerate
  networks, jacov's floor among them, would dominate a mean and a standard deviation);
- clipped to +-5 of that, so a network unlike any training cell cannot push the head outside the range
  it was trained on.

Torch-free, so configs that name proxies load without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nas_predictor.errors import ConfigError, GraphError
from nas_predictor.graph import ArchGraph

PROXIES = ("synflow", "jacov", "naswot", "snip", "grad_norm", "params", "flops")
#: the families of the ablation (issue 31): size, gradient saliency, activation patterns
FAMILIES = {"size": ("params", "flops"), "saliency": ("synflow", "snip", "grad_norm"),
            "activation": ("jacov", "naswot")}
#: how a proxy is named among a graph's scalars
SCALAR_PREFIX = "zc_"
CLIP = 5.0


def expand_proxy_names(names: Sequence[str]) -> list[str]:
    """Proxy names in PROXIES order, from proxy names, family names (FAMILIES) or ``all``; an unknown name
    is a ConfigError that lists the known ones."""
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            chosen.update(PROXIES)
        elif name in FAMILIES:
            chosen.update(FAMILIES[name])
        elif name in PROXIES:
            chosen.add(name)
        else:
            raise ConfigError(f"unknown zero-cost proxy or family {name!r}; known: {', '.join(PROXIES)}, "
                              f"families {', '.join(FAMILIES)}, or all")
    return [p for p in PROXIES if p in chosen]


def with_proxies(graph: ArchGraph, scores: Mapping[str, float]) -> ArchGraph:
    """``graph`` with ``scores`` (proxy name -> value) among its scalars."""
    scalars = {**graph.scalars, **{SCALAR_PREFIX + k: float(v) for k, v in scores.items()}}
    return ArchGraph.derived(graph.ops, graph.edges, graph.attrs, graph.shapes, scalars)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


@dataclass(frozen=True)
class ProxyScaler:
    """Proxies of graphs -> standardised features (B, len(names)); see the module docstring."""

    names: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    seed: int = 0
    batch_size: int = 64

    def raw(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        """The graphs' proxies, signed-log transformed; a GraphError names the first graph without them."""
        keys = [SCALAR_PREFIX + n for n in self.names]
        rows = np.empty((len(graphs), len(keys)), dtype=np.float64)
        for i, g in enumerate(graphs):
            missing = [k for k in keys if k not in g.scalars]
            if missing:
                raise GraphError(f"this predictor reads zero-cost proxies ({', '.join(self.names)}) and graph {i} "
                                 f"has no {missing[0]!r}: predict arch strings of its space, or attach them with "
                                 "nas_predictor.zero_cost_store.attach_proxies")
            rows[i] = [g.scalars[k] for k in keys]
        if not np.isfinite(rows).all():
            bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
            raise GraphError(f"graph {bad}'s zero-cost proxies are not finite ({rows[bad].tolist()})")
        return _signed_log(rows)

    @classmethod
    def fit(cls, names: Sequence[str], graphs: Sequence[ArchGraph], seed: int = 0, batch_size: int = 64) -> "ProxyScaler":
        raw = cls(tuple(names), (0.0,) * len(names), (1.0,) * len(names), seed, batch_size).raw(graphs)
        center = np.median(raw, axis=0)
        spread = np.percentile(raw, 75, axis=0) - np.percentile(raw, 25, axis=0)
        spread = np.where(spread > 0, spread, raw.std(axis=0))
        scale = np.where(spread > 0, spread, 1.0)  # a proxy constant over the training cells reads as 0
        return cls(tuple(names), tuple(map(float, center)), tuple(map(float, scale)), seed, batch_size)

    def features(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        z = (self.raw(graphs) - np.asarray(self.center)) / np.asarray(self.scale)
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def config(self) -> dict[str, Any]:
        return {"names": list(self.names), "center": list(self.center), "scale": list(self.scale),
                "seed": self.seed, "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ProxyScaler":
        names = tuple(config["names"])
        if len(config["center"]) != len(names) or len(config["scale"]) != len(names):
            raise ConfigError("proxy scaler: one center and one scale per proxy name")
        return cls(names, tuple(map(float, config["center"])), tuple(map(float, config["scale"])),
                   int(config.get("seed", 0)), int(config.get("batch_size", 64)))
