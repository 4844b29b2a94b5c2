"""Your own search space, trained for real: a small CNN space written as a ``PythonSpace``, every candidate
trained on scikit-learn's handwritten digits, searched under a latency bound on this CPU by our
predictor-guided search and by random search (CPU only, one thread, no download: the digits ship
inside scikit-learn).

    python examples/own_space_digits.py                     # budget 30, 5 epochs, seed 0, both strategies
    python examples/own_space_digits.py --measured          # the bound on latencies timed on this machine
    python examples/own_space_digits.py --seeds 0 1 2 --out runs/digits
    python examples/own_space_digits.py --nni               # and our strategy once more through NNI
    python examples/own_space_digits.py --nni --strategies --concurrency 4   # NNI only, 4 trials at once
    python examples/own_space_digits.py --quick --nni       # what CI runs: budget 6, 1 epoch, 400 images

The space (``CHOICES``, 432 networks): a 3x3 stem, then 1-3 stages of 1-2 blocks (stage s has
``width * s`` channels; stages after the first halve the resolution), each block a plain or a
depthwise-separable convolution of kernel 3, 5 or 7, with or without squeeze-excitation, ReLU or
hard-swish; global pooling and a 10-way linear layer. The 8x8 digits are upsampled once to 16x16.

An evaluation trains the candidate from a fixed seed (Adam, learning rate 0.003, ``--epochs`` epochs,
batch 32; then BatchNorm statistics recomputed on the training images) on a fixed 60 % of the 1,797
digits and returns its accuracy on a fixed 20 % validation split: that is what the search maximises.
The report holds the accuracy on the last 20 % (test: never seen by the search), the training seconds
and the parameter count. The same architecture gets the same numbers in either
search, so the two strategies search one and the same function.

The bound (``--max-latency-ms``, default 0.5 ms: onnxruntime, one thread, batch 1) is checked before
a candidate is trained, on latencies predicted by the shipped ``latency-cpu-ort`` predictor or, with
``--measured``, timed on this machine with the project's protocol (``strategies.MeasuredLatency``;
about a second per network, kept in the cache so a rerun never times a network again; networks of this
space measure lower here than the predictor says, so a tighter bound leaves out as much). The example
first prints how many networks of a random sample are over the bound.

Each search writes ``history.jsonl``, ``summary.json``, ``best_so_far.png`` and ``pareto.png`` to
``<out>/<strategy>-seed<seed>/`` (rerunning with the same ``--out`` resumes), and the example writes
``<out>/example.json`` (the bound, the sample, every run's best). It exits non-zero if an evaluated
network broke the bound. The same space as an NNI 3.0 ``ModelSpace`` is in
``own_space_digits_nni.py``; ``--nni`` also runs our strategy through NNI on it (:func:`run_nni`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SPACE_NAME = "digits_cnn"
INPUT_SHAPE = (1, 1, 16, 16)
CHOICES = {"stages": (1, 2, 3), "width": (8, 16, 24), "depth": (1, 2), "kernel": (3, 5, 7),
           "conv": ("plain", "dwsep"), "se": (False, True), "act": ("relu", "hardswish")}
DEFAULT_BOUND_MS = 0.5
LATENCY_PREDICTOR = "latency-cpu-ort"
STRATEGIES = ("predictor", "random")
BATCH = 32
QUICK = {"budget": 6, "epochs": 1, "train_subset": 400, "sample": 12}


# -- the networks ---------------------------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    """MobileNetV3's squeeze-excitation: channel weights from the pooled features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(4, channels // 4)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))


def _activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Hardswish()


def block(cin: int, cout: int, stride: int, config: dict) -> nn.Module:
    """One block: conv-BN-act (plain) or depthwise conv-BN-act then pointwise conv-BN-act (dwsep)."""
    k = config["kernel"]
    if config["conv"] == "plain":
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), _activation(config["act"])]
    else:
        layers = [nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False), nn.BatchNorm2d(cin),
                  _activation(config["act"]), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                  _activation(config["act"])]
    if config["se"]:
        layers.append(SqueezeExcite(cout))
    return nn.Sequential(*layers)


def build(config: dict) -> nn.Module:
    """The network of one config of :data:`CHOICES` (input 1x16x16, 10 logits)."""
    width = config["width"]
    layers = [nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), _activation(config["act"])]
    cin = width
    for stage in range(config["stages"]):
        cout = width * (stage + 1)
        for d in range(config["depth"]):
            layers.append(block(cin, cout, 2 if stage > 0 and d == 0 else 1, config))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def make_space():
    """The space as a ``PythonSpace`` (registered under SPACE_NAME, so latency sources find it by name)."""
    from search_spaces.python_space import PythonSpace

    space = PythonSpace(SPACE_NAME, CHOICES, build, INPUT_SHAPE)
    # keep every network's graph (432 small ones) rather than the last 256: a predictor round scores the
    # whole space, and the graphs it reads would otherwise be exported twice
    space.NETWORK_CACHE_SIZE = len(space)
    return space


# -- the data and the oracle ----------------------------------------------------------------------------

@dataclass
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_data(train_subset: int | None = None) -> Digits:
    """The digits split 60/20/20 (stratified, fixed seed), scaled to [0, 1] and upsampled to 16x16;
    ``train_subset``: keep only that many training images (the first of a fixed shuffle)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    images = F.interpolate(torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0, size=INPUT_SHAPE[2:],
                           mode="bilinear", align_corners=False)
    labels = torch.tensor(y)
    train, rest = train_test_split(np.arange(len(y)), test_size=0.4, random_state=0, stratify=y)
    val, test = train_test_split(rest, test_size=0.5, random_state=0, stratify=y[rest])
    if train_subset is not None:
        train = train[:train_subset]
    return Digits(images[train], labels[train], images[val], labels[val], images[test], labels[test])


def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``x`` (the training images). After a few
    dozen steps the running averages still lag the weights, and a network evaluated with them scores
    near chance whatever its architecture (one epoch on 400 images: 10 % for most)."""
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a plain average over the batches seen: here, one batch of all of x
    model.train()
    with torch.no_grad():
        model(x)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean()) * 100.0


def make_oracle(space, data: Digits, epochs: int, seed: int = 0):
    """The oracle: train from ``seed`` for ``epochs`` epochs; the value is the validation accuracy (%)."""
    from strategies.oracle import Oracle

    class DigitsOracle(Oracle):
        report_key = "test_accuracy"
        value_label = "digits validation accuracy (%)"

        @property
        def report_label(self) -> str:
            return "digits test accuracy (%)"

        def _evaluate(self, arch: str) -> tuple[float, dict[str, float]]:
            torch.manual_seed(seed)
            model = build(space.config(arch))
            optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
            order = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            for _ in range(epochs):
                model.train()
                for batch in torch.randperm(len(data.y_train), generator=order).split(BATCH):
                    optimiser.zero_grad()
                    F.cross_entropy(model(data.x_train[batch]), data.y_train[batch]).backward()
                    optimiser.step()
            recalibrate_batchnorm(model, data.x_train)
            seconds = time.perf_counter() - t0
            return _accuracy(model, data.x_val, data.y_val), {
                "test_accuracy": _accuracy(model, data.x_test, data.y_test), "train_seconds": seconds,
                "params": float(sum(p.numel() for p in model.parameters()))}

        def describe(self) -> str:  # a resumed search checks that its evaluations mean the same
            return f"digits training ({epochs} epochs, {len(data.y_train)} images, seed {seed})"

    return DigitsOracle()


# -- the bound and the searches -------------------------------------------------------------------------

def latency_constraint(space, max_ms: float, measured: bool, cache: str | None = None, progress: bool = True):
    """The bound on the predicted (default) or measured latency of each candidate on this CPU."""
    from strategies.constraints import LatencyConstraint, PredictedLatency
    from strategies.measured_latency import MeasuredLatency

    source = (MeasuredLatency(space.name, cache, progress=progress) if measured
              else PredictedLatency(LATENCY_PREDICTOR, space.name, cache=cache))
    return LatencyConstraint(source, max_ms)


def sample_over_bound(space, constraint, size: int, seed: int = 0) -> dict:
    """How many of ``size`` random networks (distinct) are over the bound."""
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(size)))
    latency = constraint.latency(archs)
    return {"sampled": len(archs), "over_bound": int(np.sum(latency > constraint.max_ms)),
            "latency_ms": {"min": float(latency.min()), "median": float(np.median(latency)),
                           "max": float(latency.max())}}


def run_strategy(name: str, space, oracle, constraint, budget: int, seed: int, out: Path, progress: bool = True) -> dict:
    """One stand-alone search (``run_search``) into ``out/<name>-seed<seed>``; returns its summary.

    ``predictor``: our predictor-in-the-loop search with a NAR-Former V2 refit on this search's own
    evaluations (``OnlineSurrogate``, whole-network tokens). Its first third of the budget is random (the
    default 20 starts were tuned on NAS-Bench-201 at budget 100) and it refits every 5 evaluations; a
    budget under 10 starts the predictor after 4 (so a quick run exercises it), settings chosen, not tuned."""
    from strategies.constraints import LatencyConstraint
    from strategies.runner import make_strategy, run_search
    from strategies.surrogates import OnlineSurrogate

    # a bound of its own over the shared source: the source remembers every latency (nothing is predicted
    # or measured twice), the bound counts what this run checked (its summary's latency_unsure)
    constraint = LatencyConstraint(constraint.source, constraint.max_ms)
    surrogate = None
    if name == "predictor":
        start = max(4, budget // 3)
        strategy = make_strategy("predictor", num_init=start)
        surrogate = OnlineSurrogate(space.name, refit_every=min(5, start), min_points=start, seed=seed)
    else:
        strategy = make_strategy(name)
    summary = run_search(space, strategy, oracle, budget, seed=seed, out_dir=out / f"{name}-seed{seed}",
                         constraint=constraint, surrogate=surrogate, progress=progress, top=5)
    summary["out"] = str(out / f"{name}-seed{seed}")
    return summary


def nni_bound(model_space, max_ms: float, measured: bool, cache: str | None = None, progress: bool = True):
    """The NNI space of ``model_space`` (registered, so a measured source finds it) and the latency bound as
    NNI's filter function (``LatencyFilter``): what our strategy takes as its constraint, and what NNI's
    own strategies take through the ``Filter`` middleware."""
    from strategies.nni_bridge import LatencyFilter
    from strategies.nni_bridge.space import nni_space

    name = f"{SPACE_NAME}_nni"
    space = nni_space(model_space, INPUT_SHAPE, name)
    space.NETWORK_CACHE_SIZE = len(space)
    if measured:
        from strategies.measured_latency import MeasuredLatency

        return space, LatencyFilter(max_ms, MeasuredLatency(name, cache, progress=progress))
    return space, LatencyFilter(max_ms, predictor=LATENCY_PREDICTOR, input_shape=INPUT_SHAPE)


def run_experiment(model_space, evaluator, strategy, budget: int, run_dir: Path, concurrency: int = 1) -> dict:
    """One NNI ``NasExperiment`` of ``budget`` trials, its files under ``run_dir/nni``: with ``concurrency``
    1 NNI's sequential engine (trials in this process); above 1 NNI's local training service, which runs
    that many trials at once, each in its own process (which imports this module and its NNI space through
    PYTHONPATH). Returns what NNI's manager says about the trials (how many ran at once)."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    run_dir.mkdir(parents=True, exist_ok=True)
    if concurrency == 1:
        config = NasExperimentConfig("sequential", "simplified")
    else:
        config = NasExperimentConfig("ts", "simplified", "local")
        config.trial_concurrency = concurrency
        config.training_service.use_active_gpu = False
        # a NAS experiment's trials start in the launcher's folder (NNI refuses another trial_code_directory):
        # they find this module and its NNI space through PYTHONPATH, which they inherit from this process
        here = str(Path(__file__).resolve().parent)
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *(p for p in paths if p != here)])
    config.max_trial_number = budget
    config.experiment_working_directory = str(run_dir / "nni")
    exp = NasExperiment(model_space, evaluator, strategy, config)
    try:
        if concurrency == 1:
            exp.run()
            return {"trials": budget, "most_running_at_once": 1}
        from strategies.nni_bridge import patient_launcher

        with patient_launcher():  # NNI's manager may take more than its 3 s to start on a busy machine
            exp.run(port=_free_port())
        return trials_at_once(exp.list_trial_jobs())
    finally:
        exp.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trials_at_once(jobs) -> dict:
    """How many of NNI's trial jobs ran at the same time at most (their start and end times, ms)."""
    spans = [(j.startTime, j.endTime) for j in jobs if getattr(j, "startTime", None) and getattr(j, "endTime", None)]
    events = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans])
    running = most = 0
    for _, step in events:  # an end before a start at the same instant: sorted (t, -1) first
        running += step
        most = max(most, running)
    return {"trials": len(spans), "most_running_at_once": most}


def nni_trial(model, epochs: int, train_subset: int | None, reports: str, seed: int = 0) -> None:
    """An NNI trial in its own process (the local training service): train the frozen network as the
    stand-alone oracle does, report the validation accuracy as NNI's final metric, and leave the oracle's
    whole report in the folder ``reports`` (NNI keeps a trial's ``default`` metric only), where
    :func:`run_nni`'s strategy reads it."""
    import nni

    from nas_predictor.io import atomic_write_json

    torch.set_num_threads(1)
    space = make_space()
    arch = space.arch_of(dict(model.config))
    result = make_oracle(space, load_data(train_subset), epochs, seed).evaluate(arch)
    if not result.ok:
        raise RuntimeError(result.error)
    atomic_write_json({"arch": arch, "report": result.report}, report_file(Path(reports), arch))
    nni.report_final_result(result.value)


def report_file(folder: Path, arch: str) -> Path:
    import hashlib

    return folder / f"{hashlib.sha1(arch.encode()).hexdigest()[:16]}.json"


def read_report(folder: Path, arch: str) -> dict:
    path = report_file(folder, arch)
    return json.loads(path.read_text())["report"] if path.is_file() else {}


def run_nni(oracle, max_ms: float, measured: bool, budget: int, seed: int, out: Path, cache: str | None = None,
            progress: bool = True, concurrency: int = 1, epochs: int = 5, train_subset: int | None = None) -> dict:
    """The same search through NNI 3.0: a ``NasExperiment`` (sequential engine) over the space written as
    an NNI ``ModelSpace`` (``own_space_digits_nni.py``), with our ``PredictorGuidedStrategy`` searching it
    as whole networks (each candidate frozen by NNI and exported at INPUT_SHAPE) under the same bound. The
    trial trains the frozen network with the stand-alone oracle (same seed, same numbers); with
    ``concurrency`` above 1, NNI's local training service trains that many at once, each in its own process
    (:func:`nni_trial`, which builds the oracle again from ``epochs`` and ``train_subset``), and our strategy
    keeps every one of them busy. Its records
    are appended to ``out/nni-seed<seed>/history.jsonl`` as each trial ends, so a rerun after a kill
    replays them and trains only the rest; returns the strategy's summary."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator

    from own_space_digits_nni import DigitsModelSpace
    from strategies.nni_bridge import PredictorGuidedStrategy
    from strategies.runner import make_strategy
    from strategies.surrogates import OnlineSurrogate

    model_space = DigitsModelSpace()
    space, bound = nni_bound(model_space, max_ms, measured, cache, progress)
    name = space.name

    reports: dict[str, dict] = {}  # NNI keeps a trial's final metric, not the rest: the report comes from here

    def trial(model) -> None:
        arch = space.arch_of(dict(model.config))
        result = oracle.evaluate(arch)
        reports[arch] = result.report
        nni.report_final_result(result.value)

    start = max(4, budget // 3)
    run_dir = out / f"nni-seed{seed}"
    report_dir = run_dir / "reports"  # the trial processes' reports (concurrency above 1)
    # each trained network is appended there at once: a rerun after a kill replays them and trains the rest
    strategy = PredictorGuidedStrategy(make_strategy("predictor", num_init=start),
                                       OnlineSurrogate(name, refit_every=min(5, start), min_points=start, seed=seed),
                                       seed=seed, budget=budget, constraint=bound, input_shape=INPUT_SHAPE,
                                       space_name=name, progress=progress,
                                       report=lambda arch: reports.get(arch) or read_report(report_dir, arch),
                                       history=run_dir / "history.jsonl")
    if concurrency == 1:
        evaluator = FunctionalEvaluator(trial)
    else:
        from own_space_digits import nni_trial as remote  # by module name, so the trial processes import it

        evaluator = FunctionalEvaluator(remote, epochs=epochs, train_subset=train_subset, reports=str(report_dir))
    engine = run_experiment(model_space, evaluator, strategy, budget, run_dir, concurrency)
    summary = strategy.summary(top=5)
    summary["nni_trials"] = {"concurrency": concurrency, **engine}
    # what the stand-alone summaries also say (print_summary reads them)
    summary.update({"strategy": "predictor (NNI)", "oracle": "NNI trial: " + oracle.describe(),
                    "constraint": bound.as_constraint(name).identity(), "report_key": "test_accuracy",
                    "replayed_from_history": summary["replayed_from_checkpoint"]})
    from nas_predictor.io import atomic_write_json
    from strategies.runner import pareto_front, write_plots

    records = strategy.records()
    ok = [r for r in records if r["status"] == "ok" and r.get("latency_ms") is not None]
    summary["budget"] = budget
    summary["pareto"] = [{k: ok[i][k] for k in ("arch", "latency_ms", "value", "report")}
                         for i in pareto_front([(r["latency_ms"], r["value"]) for r in ok])]
    write_plots(summary, records, run_dir, oracle.value_label, oracle.report_label)
    atomic_write_json({k: v for k, v in summary.items() if k != "evaluated_archs"}, run_dir / "summary.json")
    summary["out"] = str(run_dir)
    return summary


def violations(summary: dict, max_ms: float) -> list[str]:
    """Evaluated networks over the bound (there must be none: the bound is checked before training)."""
    history = Path(summary["out"]) / "history.jsonl"
    records = [json.loads(line) for line in history.read_text().splitlines()[1:] if line.strip()]
    return [r["arch"] for r in records if r.get("latency_ms") is None or r["latency_ms"] > max_ms]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=None, help="trained networks per search (default 30; quick 6)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="search seeds (default 0)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs per candidate (default 5; quick 1)")
    ap.add_argument("--strategies", nargs="*", choices=STRATEGIES, default=list(STRATEGIES),
                    help="stand-alone searches to run (none: only the NNI run of --nni)")
    ap.add_argument("--nni", action="store_true", help="also run our strategy through NNI (NasExperiment over "
                                                       "the same space as an NNI ModelSpace; needs the [nni] extra)")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="with --nni: NNI trials at once (above 1: NNI's local training service, a process per trial)")
    ap.add_argument("--max-latency-ms", type=float, default=DEFAULT_BOUND_MS,
                    help=f"latency bound, onnxruntime on this CPU, one thread, batch 1 (default {DEFAULT_BOUND_MS})")
    ap.add_argument("--measured", action="store_true",
                    help=f"time each candidate on this machine instead of predicting it with {LATENCY_PREDICTOR}")
    ap.add_argument("--sample", type=int, default=None,
                    help="random networks whose latency is checked first, to show the bound bites (default 30)")
    ap.add_argument("--train-subset", type=int, default=None, help="training images used (default all 1,078)")
    ap.add_argument("--quick", action="store_true", help="the reduced CI run: budget 6, 1 epoch, 400 images")
    ap.add_argument("--out", default="runs/own_space_digits", help="output folder (reruns resume)")
    ap.add_argument("--cache", default=None, help="cache folder of graphs and measured latencies "
                                                  "(default $NAS_PREDICTOR_CACHE or ~/.cache/nas_predictor)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    quick = QUICK if args.quick else {"budget": 30, "epochs": 5, "train_subset": None, "sample": 30}
    budget = args.budget or quick["budget"]
    epochs = args.epochs or quick["epochs"]
    subset = args.train_subset or quick["train_subset"]
    torch.set_num_threads(1)  # small networks, small batches: one thread is the fast and fair setting
    t_start = time.perf_counter()

    from strategies.cli import print_summary

    space = make_space()
    data = load_data(subset)
    oracle = make_oracle(space, data, epochs)
    constraint = latency_constraint(space, args.max_latency_ms, args.measured, args.cache, not args.quiet)
    sample = sample_over_bound(space, constraint, args.sample or quick["sample"])
    print(f"space {space.name}: {len(space)} networks; bound {args.max_latency_ms:g} ms, "
          f"{constraint.source.describe()}: {sample['over_bound']} of {sample['sampled']} random networks are over "
          f"it (latency {sample['latency_ms']['min']:.3f}-{sample['latency_ms']['max']:.3f} ms, "
          f"median {sample['latency_ms']['median']:.3f})")
    out = Path(args.out)
    runs, failed = [], []
    for seed in args.seeds:
        for name in [*args.strategies, *(["nni"] if args.nni else [])]:
            if name == "nni":
                summary = run_nni(oracle, args.max_latency_ms, args.measured, budget, seed, out, args.cache,
                                  progress=not args.quiet, concurrency=args.concurrency, epochs=epochs,
                                  train_subset=subset)
            else:
                summary = run_strategy(name, space, oracle, constraint, budget, seed, out, progress=not args.quiet)
            print()
            print_summary(summary, predictions_only=False)
            broke = violations(summary, args.max_latency_ms)
            failed += [f"{name} seed {seed}: {a} over the bound" for a in broke]
            best = summary["best"]
            runs.append({"strategy": name, "seed": seed, "out": summary["out"], "evaluations": summary["evaluations"],
                         "rejected_over_bound": summary["rejected_over_bound"], "wall_seconds": summary["wall_seconds"],
                         "best": None if best is None else {k: best[k] for k in ("arch", "value", "report", "latency_ms")},
                         "over_bound_evaluated": len(broke), **({"nni_trials": summary["nni_trials"]}
                                                                if "nni_trials" in summary else {})})
    from nas_predictor.io import atomic_write_json

    atomic_write_json({"space": space.name, "networks": len(space), "budget": budget, "epochs": epochs,
                       "train_images": len(data.y_train), "bound": constraint.identity(), "sample": sample,
                       "runs": runs, "wall_seconds": time.perf_counter() - t_start}, out / "example.json")
    print()
    for r in runs:
        best = r["best"]
        text = "nothing trained" if best is None else (
            f"best validation {best['value']:.2f} % (test {best['report']['test_accuracy']:.2f} %) at "
            f"{best['latency_ms']:.3f} ms: {best['arch']}")
        print(f"{r['strategy']:>9} seed {r['seed']}: {text}")
    print(f"done in {time.perf_counter() - t_start:.0f} s; results in {out}")
    for line in failed:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
