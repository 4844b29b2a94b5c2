"""What a dataset folder's graphs are made by: the network and operator generators, their names, the seed order."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from nas_predictor.data.latency_dataset import LatencyDataset
from nas_predictor.errors import ConfigError
from search_spaces import operators
from search_spaces.cnn_families import FAMILIES, SPACES

# How a reader regenerates the graphs (nas_predictor.data.latency_dataset imports it by this name).
GENERATOR = "search_spaces.cnn_families.dataset:variant_onnx"


@dataclass(frozen=True)
class Generator:
    """What a dataset folder's graphs are made by: the names it takes (families or operator kinds; their
    order is the generator's seeding contract and the folder's order), the function that makes each graph
    (``"module:function"``, called ``f(name, seed, space=, batch=, opset=) -> (info, onnx bytes)``; the
    manifest's ``export.generator``), its variant spaces (the first is the default) and how it exports."""

    name: str
    names: tuple[str, ...]
    ref: str
    spaces: tuple[str, ...]
    noun: tuple[str, str]  # singular, plural: for messages
    export: dict
    # ``"module:function"``, called like ``ref`` but returning (info, torch module): the same variant as a
    # module the torch-cuda provider times (the ONNX graph of the same info is what a predictor trains on)
    torch: str | None = None

    def function(self) -> Callable[..., tuple[dict, bytes]]:
        """The variant function, looked up when called (a test's replacement of it is seen)."""
        return _lookup(self.ref)

    def torch_function(self) -> Callable[..., tuple[dict, Any]]:
        """The torch variant function (``provider="torch-cuda"``), looked up when called."""
        if self.torch is None:
            raise ConfigError(f"the {self.name} generator makes no torch modules")
        return _lookup(self.torch)


def _lookup(ref: str) -> Callable[..., Any]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


DEFAULT_GENERATOR = "networks"  # the generator of a folder whose identity names none
GENERATORS: dict[str, Generator] = {g.name: g for g in (
    Generator("networks", FAMILIES, GENERATOR, SPACES, ("family", "families"),
              {"exporter": "torch.onnx legacy (dynamo=False)", "export_params": False, "do_constant_folding": False},
              "search_spaces.cnn_families.dataset:variant_torch"),
    Generator("operators", operators.KINDS, "search_spaces.operators:variant_onnx", (operators.SPACE,),
              ("kind", "kinds"), {"exporter": "onnx.helper (search_spaces.operators)", "export_params": False},
              "search_spaces.operators_torch:variant_torch"),
)}


def _generator(name: str) -> Generator:
    try:
        return GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}") from None


def dataset_generator(ds: LatencyDataset) -> Generator:
    """The generator of a built folder's graphs (networks when its identity names none)."""
    return _generator((ds.identity or {}).get("generator", DEFAULT_GENERATOR))


def parse_families(text: str | Sequence[str] | None, generator: str = DEFAULT_GENERATOR) -> tuple[str, ...]:
    """``"all"`` / None -> every family (operator kind, for ``generator="operators"``); otherwise
    comma-separated names, checked, in the generator's order."""
    known = _generator(generator).names
    if text is None or text == "all" or (not isinstance(text, str) and list(text) == ["all"]):
        return known
    names = [n.strip() for part in ([text] if isinstance(text, str) else text) for n in part.split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        one, many = _generator(generator).noun
        raise ConfigError(f"unknown {one if len(unknown) == 1 else many} {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(known)} or 'all'")
    return tuple(f for f in known if f in names)


def build_order(families: Sequence[str], per_family: int, skip: set[tuple[str, int]],
                first_seed: int = 0) -> list[tuple[str, int]]:
    """(family, seed) pairs still to do, round-robin: seed s of every family before seed s + 1."""
    return [(f, s) for s in range(first_seed, first_seed + per_family) for f in families if (f, s) not in skip]
