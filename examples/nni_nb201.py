"""Our predictor-guided search and latency filter inside NNI 3.0, on NAS-Bench-201 (offline, CPU, about
a minute): ``pip install "nas-predictor[nni]"``, then

    python examples/nni_nb201.py

1. an NNI ``NasExperiment`` (sequential engine) over the hub's ``NasBench201`` model space with our
   ``PredictorGuidedStrategy``; the evaluator is a ``FunctionalEvaluator`` (where your training function
   would go) that looks the real 200-epoch accuracy of each network up in our NAS-Bench-201 table: the
   search sees the cifar10-valid validation accuracy, the test accuracy is only printed;
2. the same with NNI's built-in ``RegularizedEvolution`` wrapped in our ``LatencyFilter``
   (``Chain(strategy, Filter(...))``): no network whose measured latency on a Pixel 3 (HELP's table) is
   over 10.6756 ms is ever trained.

It prints the top models of each and exits non-zero if a check fails (CI runs it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time

PIXEL3_BOUND_MS = 10.6756


def table_trial(model, oracle):
    """A FunctionalEvaluator function: gets the built network (a torch module; a real trial would train
    it), reports the table's validation accuracy of its architecture as the final result."""
    import nni

    from strategies.nni_bridge import current_arch

    nni.report_final_result(float(oracle.evaluate(current_arch()).value))


def run(space, evaluator, strategy, budget: int, workdir: str):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = budget
    config.experiment_working_directory = workdir
    exp = NasExperiment(space, evaluator, strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    return exp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=50, help="trials of our strategy")
    ap.add_argument("--evolution-budget", type=int, default=100, help="trials of the filtered evolution")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="the shared data folder (default: found as the tests find it)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(1)
    from strategies.nni_bridge import require_nni

    require_nni()
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.hub.pytorch import NasBench201
    from nni.nas.strategy import RegularizedEvolution
    from nni.nas.strategy.middleware import Chain, Filter
    from nni.runtime.log import silence_stdout

    from strategies import NB201TableOracle, TableLatency
    from strategies.nni_bridge import LatencyFilter, PredictorGuidedStrategy

    silence_stdout()
    logging.getLogger("nni").setLevel(logging.WARNING)
    oracle = NB201TableOracle("cifar10", args.data_dir)
    latency = TableLatency("pixel3", data_dir=args.data_dir)
    space = NasBench201()
    failures = []

    def show(title: str, archs_values: list[tuple[str, float]]) -> None:
        print(f"\n{title}")
        print(f"  {'valid':>6} {'test':>6} {'pixel3 ms':>9}  architecture")
        for arch, value in archs_values:
            test = oracle.evaluate(arch).report["test_accuracy"]
            print(f"  {value:6.2f} {test:6.2f} {latency.latency_ms([arch])[0]:9.2f}  {arch}")

    with tempfile.TemporaryDirectory(prefix="nni-example-") as workdir:
        # 1. our predictor-guided search as an NNI strategy
        t0 = time.perf_counter()
        ours = PredictorGuidedStrategy(seed=args.seed)
        exp = run(space, FunctionalEvaluator(table_trial, oracle=oracle), ours, args.budget, workdir)
        top = exp.export_top_models(top_k=5, formatter="dict")
        summary = ours.summary()
        show(f"PredictorGuidedStrategy: {summary['evaluations']} trials ({summary['stop']}), "
             f"{summary['surrogate_fits']} surrogate refits, {time.perf_counter() - t0:.0f} s; top 5:",
             [(ours.mapping.to_arch(s), oracle.evaluate(ours.mapping.to_arch(s)).value) for s in top])
        optimum = oracle.global_optimum()
        print(f"  (the benchmark's best validation accuracy: {optimum['search_value']:.2f}, "
              f"test {optimum['test_accuracy']:.2f})")
        if summary["evaluations"] != args.budget or summary["failed"]:
            failures.append(f"our strategy ran {summary['evaluations']} of {args.budget} trials, "
                            f"{summary['failed']} failed")

        # 2. a built-in NNI strategy behind our latency filter
        t0 = time.perf_counter()
        lat_filter = LatencyFilter(PIXEL3_BOUND_MS, latency)
        evolution = Chain(RegularizedEvolution(population_size=20, sample_size=5, seed=args.seed), Filter(lat_filter))
        exp = run(space, FunctionalEvaluator(table_trial, oracle=oracle), evolution, args.evolution_budget, workdir)
        trained = [m for m in evolution.engine.list_models() if m.metric is not None]
        archs = [ours.mapping.to_arch(m.sample) for m in trained]
        over = int((latency.latency_ms(archs) > PIXEL3_BOUND_MS).sum())
        top = exp.export_top_models(top_k=5, formatter="dict")
        show(f"RegularizedEvolution + LatencyFilter(pixel3 <= {PIXEL3_BOUND_MS} ms): {len(archs)} trials, "
             f"{lat_filter.rejected} models rejected before training, {over} trained over the bound, "
             f"{time.perf_counter() - t0:.0f} s; top 5:",
             [(ours.mapping.to_arch(s), oracle.evaluate(ours.mapping.to_arch(s)).value) for s in top])
        if over or len(archs) != args.evolution_budget:
            failures.append(f"filtered evolution: {over} trials over the bound, {len(archs)} trials")

    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
