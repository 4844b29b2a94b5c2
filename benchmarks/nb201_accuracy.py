"""Accuracy prediction on a cell benchmark (NAS-Bench-201: paper Table 4, Kendall tau over all 15,625
cells; NAS-Bench-101 from its config), one run per seed.

Resumable: every finished seed is appended to the results JSON at once; seeds already there are skipped.
``--reevaluate`` re-scores the kept checkpoints of finished seeds with the config's current ``predict``
settings (e.g. after equivalence averaging was added) without retraining.

    python benchmarks/nb201_accuracy.py --config configs/nb201_accuracy_781.yaml --seeds 0 1 2 3 4 --curve-every 20

``--curve-every N`` records the ensemble's tau on all test cells every N epochs (``curve`` in each run;
its time is not training time), from which ``--paper-tau`` reads the time to reach a tau.

``--resplit`` draws each seed's own train/validation/test split (``data.split_seed`` = the seed; for a
random split), so the spread over seeds includes which cells were labelled:

    python benchmarks/nb201_accuracy.py --config configs/nb101_accuracy_subset.yaml --resplit --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, load_results, machine, save_results  # noqa: E402
from probes import run_with_curve  # noqa: E402

from nas_predictor.config import load_config, validate_config  # noqa: E402
from nas_predictor.predictor import Predictor  # noqa: E402
from nas_predictor.train_data import evaluate_prepared, prepare_data  # noqa: E402


def time_to_tau(result: dict, tau: float) -> float | None:
    """Wall seconds of training until the run's curve first reached ``tau`` (against the eval target).

    Uses the ensemble curve (all test cells, equivalence-averaged when the config says so); runs from
    before it existed only have each member's plain tau on every 5th cell in their history.
    """
    for entry in result.get("curve") or []:
        if entry["kendall_tau"] >= tau:
            return entry["train_seconds"]
    if result.get("curve"):
        return None
    for entry in result["history"][0]:
        if entry.get("curve_tau", -1.0) >= tau:
            return entry["train_seconds"]
    return None


def stored_config(tree: dict | None) -> dict:
    """A results file's config validated again: with today's defaults filled in, files written before a
    new config key existed still match; a retired key they hold (train.curve_every) is dropped quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return validate_config(tree or {}).model_dump()


def summarize(runs: list[dict]) -> dict:
    taus = [r["kendall_tau"] for r in runs]
    secs = [r["train_seconds"] for r in runs]
    plain = [r.get("kendall_tau_plain", r["kendall_tau"]) for r in runs]
    return {
        "seeds": [r["seed"] for r in runs],
        "kendall_tau_mean": statistics.mean(taus),
        "kendall_tau_std": statistics.stdev(taus) if len(taus) > 1 else 0.0,
        "kendall_tau_plain_mean": statistics.mean(plain),
        "kendall_tau_plain_std": statistics.stdev(plain) if len(plain) > 1 else 0.0,
        "train_seconds_mean": statistics.mean(secs),
        "train_seconds_std": statistics.stdev(secs) if len(secs) > 1 else 0.0,
    }


def reevaluate(runs: list[dict], cfg, data, save_dir: Path) -> None:
    """Replace each finished seed's test metrics by a fresh evaluation of its kept checkpoint."""
    for run in runs:
        path = save_dir / f"seed{run['seed']}" / "predictor.pt"
        if not path.is_file():
            print(f"seed {run['seed']}: no checkpoint at {path}, left as it was")
            continue
        predictor = Predictor.load(path)
        predictor.meta["average_equivalent"] = cfg.predict.average_equivalent
        before = run["kendall_tau"]
        run.update(evaluate_prepared(predictor, data, cfg))
        run["reevaluated"] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": command_line(),
                              "kendall_tau_before": before}
        print(f"seed {run['seed']}: tau {before:.4f} -> {run['kendall_tau']:.4f} "
              f"(plain {run['kendall_tau_plain']:.4f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<config name>.json)")
    parser.add_argument("--save-dir", default=None, help="keep each seed's checkpoint here")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--paper-tau", type=float, default=None,
                        help="report training time until this tau (needs --curve-every)")
    parser.add_argument("--curve-every", type=int, default=0, metavar="N",
                        help="record the time-to-tau curve on all test cells every N epochs (0 = off)")
    parser.add_argument("--merge", type=Path, default=None, metavar="FILE",
                        help="append the runs of another results file of the same config (seeds run in "
                             "parallel with --out elsewhere), then stop")
    parser.add_argument("--resplit", action="store_true",
                        help="each seed draws its own split (data.split_seed = seed; needs data.split random)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="re-score finished seeds from their checkpoints in --save-dir, then stop")
    args = parser.parse_args()
    if args.reevaluate and not args.save_dir:
        parser.error("--reevaluate needs --save-dir (where the seeds' checkpoints were kept)")
    if args.curve_every < 0:
        parser.error(f"--curve-every must be 0 (off) or a number of epochs, got {args.curve_every}")
    if args.paper_tau is not None and not args.curve_every:
        parser.error("--paper-tau reads the time-to-tau curve: give --curve-every N too")

    base = load_config(args.config, args.set)
    if args.resplit and base.data.split != "random":
        parser.error("--resplit needs a config with data.split: random")
    if args.resplit and args.reevaluate:
        parser.error("--reevaluate re-scores one fixed split; it cannot be combined with --resplit")
    out = Path(args.out) if args.out else RESULTS / f"{base.name}.json"
    results = load_results(out)
    if args.reevaluate:  # keep the training command and config; record how the numbers were redone
        results["reevaluated_with"] = {"command": command_line(), "predict": base.predict.model_dump()}
    elif not args.merge:  # a merge keeps the file's own training command
        results.update({"benchmark": f"{base.space}_accuracy", "config": base.model_dump(), "command": command_line(),
                        "machine": machine(), "resplit": args.resplit, "curve_every": args.curve_every})
    runs = results.setdefault("runs", [])
    done = {r["seed"] for r in runs}
    if args.merge:
        other = load_results(args.merge)
        same = stored_config(other.get("config")) == stored_config(results.get("config"))
        if not same:
            parser.error(f"{args.merge} was run with another config than {out}")
        added = [r for r in other.get("runs", []) if r["seed"] not in done]
        runs.extend(added)
        runs.sort(key=lambda r: r["seed"])
        results.setdefault("merged", []).append({"from": str(args.merge), "command": other.get("command"),
                                                 "seeds": [r["seed"] for r in added]})
        results["summary"] = summarize(runs)
        save_results(out, results)
        print(f"merged seeds {[r['seed'] for r in added]} from {args.merge} into {out}")
        return
    data = prepare_data(base, args.data_dir)
    if args.reevaluate:
        reevaluate(runs, base, data, Path(args.save_dir))
        results["summary"] = summarize(runs)
        save_results(out, results)
        return
    for seed in args.seeds:
        if seed in done:
            print(f"seed {seed}: already in {out}, skipped")
            continue
        overrides = [*args.set, f"train.seed={seed}"] + ([f"data.split_seed={seed}"] if args.resplit else [])
        cfg = load_config(args.config, overrides)
        if args.resplit:
            data = prepare_data(cfg, args.data_dir)
        save_dir = Path(args.save_dir) / f"seed{seed}" if args.save_dir else None
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        result = run_with_curve(cfg, data, args.curve_every, out_dir=save_dir, data_dir=args.data_dir, progress=False)
        for key in ("predictor", "member_results", "prep_seconds", "config"):  # objects, or in the file already
            result.pop(key)
        if args.paper_tau is not None:
            result["paper_tau"] = args.paper_tau
            result["seconds_to_paper_tau"] = time_to_tau(result, args.paper_tau)
        runs.append({"seed": seed, "started": started, "n_test": int(len(data.test_idx)), **result})
        results["summary"] = summarize(runs)
        save_results(out, results)
        print(f"seed {seed}: tau {result['kendall_tau']:.4f} (plain {result['kendall_tau_plain']:.4f}, "
              f"unseen {result['kendall_tau_unseen']:.4f}) "
              f"train {result['train_seconds']:.0f} s", flush=True)
    if runs:
        s = summarize(runs)
        print(f"{base.name}: tau {s['kendall_tau_mean']:.4f} +- {s['kendall_tau_std']:.4f} "
              f"(plain {s['kendall_tau_plain_mean']:.4f} +- {s['kendall_tau_plain_std']:.4f}) over seeds {s['seeds']}")


if __name__ == "__main__":
    main()
