"""Write a space's packaged zero-cost table from the proxy cache (maintainers; issue 31).

    nas-predictor proxies --space nasbench201          # fill the cache (hours; resumable, --shard I/N)
    python tools/pack_zero_cost.py --space nasbench201  # -> search_spaces/nasbench201_zero_cost.npz

The table holds the cache's rows for the default settings (network seed 0, batch 64); rows the cache does
not have yet are NaN, and computed on first use wherever the table is read.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path


def main() -> int:
    from nas_predictor.spaces import get_space
    from nas_predictor.zero_cost_store import BATCH_SIZE, proxy_batch, read_store, store_path, write_packaged

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nasbench201")
    ap.add_argument("--cache", default=None, help="the proxy cache folder (default: the package's default)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: the space's package folder, <space>_zero_cost.npz")
    args = ap.parse_args()
    space = get_space(args.space)
    batch = proxy_batch(space, BATCH_SIZE, 0)
    cached = read_store(store_path(space, batch, 0, args.cache))
    out = args.out or Path(str(resources.files(type(space).__module__.split(".")[0]))) / f"{space.name}_zero_cost.npz"
    rows = write_packaged(space, cached, batch, 0, out)
    print(f"{space.name}: {rows} of {len(list(space))} networks' proxies written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
