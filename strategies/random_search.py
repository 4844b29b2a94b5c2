"""Random search: uniform samples within the latency bound, no repeats (the baseline every NAS
paper reports)."""

from __future__ import annotations

from strategies.base import SearchContext, Strategy


class RandomSearch(Strategy):
    name = "random"

    def run(self, ctx: SearchContext) -> None:
        while ctx.remaining > 0:
            ctx.evaluate(ctx.sample_new())
