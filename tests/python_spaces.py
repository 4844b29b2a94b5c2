"""A small Python-defined search space (search_spaces.python_space) that the contract suites run against."""

from __future__ import annotations

from torch import nn

from search_spaces.python_space import PythonSpace, ints

NAME = "contract_python_cnn"


def _net(c: dict) -> nn.Module:
    act = nn.ReLU if c["act"] == "relu" else nn.Hardswish
    blocks = [nn.Sequential(nn.Conv2d(c["width"], c["width"], 3, padding=1), act()) for _ in range(c["depth"])]
    pool = nn.AdaptiveAvgPool2d(1) if c["pool"] == "avg" else nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(nn.Conv2d(3, c["width"], c["kernel"], padding=c["kernel"] // 2), act(), *blocks,
                         pool, nn.Flatten(), nn.Linear(c["width"], 10))


def plain_cnn(c: dict) -> nn.Module:
    """``depth`` convs of ``width`` channels and ``kernel`` with ``act``, pooled into a 10-way Linear (a
    Dropout before it when the config has a ``dropout`` rate): the tiny spaces of the tests build this."""
    act = nn.ReLU if c["act"] == "relu" else nn.Hardswish
    layers, width = [], 3
    for _ in range(c["depth"]):
        layers += [nn.Conv2d(width, c["width"], c["kernel"], padding=c["kernel"] // 2), act()]
        width = c["width"]
    head = [nn.Dropout(c["dropout"])] if "dropout" in c else []
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), *head, nn.Linear(width, 10))


def contract_space() -> PythonSpace:
    """The space (made, and registered under NAME, on each call; the definition is the same every time)."""
    # 252 networks: the strategy contract's 3 ms bound on a uniform 0-10 ms latency leaves about 75,
    # enough for its 24-evaluation budget with room to search
    return PythonSpace(NAME, {"width": ints(16, 64, 8), "kernel": (3, 5, 7), "depth": ints(1, 3),
                              "act": ("relu", "hardswish"), "pool": ("avg", "max")}, _net, (1, 3, 32, 32))
