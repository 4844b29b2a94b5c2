"""Any NNI model space searched as whole networks: its mutables as choices (search_spaces.nni_space,
strategies.nni_bridge.space), samples <-> frozen networks <-> graphs, NNI constraints, clear errors, and
PredictorGuidedStrategy on it (in a NasExperiment, and NAS-Bench-201 searched as an opaque network)."""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
import time

import numpy as np
import pytest

from tests.strategies.nni_support import import_nni

nni = import_nni()

import torch  # noqa: E402
from nni.nas.benchmark import BenchmarkModelSpace  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.execution import ExecutionEngine, SequentialExecutionEngine  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableDropout, Repeat  # noqa: E402
from nni.nas.space import ModelStatus, RawFormatModelSpace, SimplifiedModelSpace  # noqa: E402
from torch import nn  # noqa: E402

from nas_predictor.errors import ArchError, ConfigError  # noqa: E402
from nas_predictor.onnx import onnx_to_graph  # noqa: E402
from nas_predictor.onnx.export import export_onnx  # noqa: E402
from search_spaces.nni_space import Dimension, sample_id  # noqa: E402
from strategies import FunctionSurrogate, LatencyConstraint, OnlineSurrogate, PredictorSearch  # noqa: E402
from strategies.constraints import FunctionLatency  # noqa: E402
from strategies.nni_bridge import NB201TableBenchmark, PredictorGuidedStrategy, current_arch, nni_space  # noqa: E402
from strategies.nni_bridge.mapping import nb201_sample_to_arch  # noqa: E402
from strategies.nni_bridge.space import dimensions  # noqa: E402
from strategies.oracle import FunctionOracle  # noqa: E402
from strategies.runner import make_strategy, run_search  # noqa: E402
from tests.nni_spaces import INPUT_SHAPE, NAME, TinyNet, contract_space  # noqa: E402

#: the two samples whose networks are the same: skip and mix read only the stem, the blocks are unused
UNUSED_BLOCKS = {"width": 8, "kernel": 3, "act": "relu", "ratio": 1, "skip": [0], "mix": [0, 2]}


@pytest.fixture(scope="module")
def space():
    return contract_space()


def graph_of(module: nn.Module) -> dict:
    return onnx_to_graph(export_onnx(module, INPUT_SHAPE)).to_dict()


def params(model: nn.Module) -> float:
    """A tiny stand-in for training: a deterministic number of the network."""
    return float(sum(p.numel() for p in model.parameters()) % 97)


def small_search() -> PredictorSearch:
    # small pools, never the whole space: every candidate ranked is exported once
    return PredictorSearch(num_init=4, top_k=2, num_local=1, num_parents=2, num_mutants=4, num_random=4,
                           exhaustive_below=0)


# -- the space ------------------------------------------------------------------------------------------
def test_every_kind_of_mutable_is_a_choice(space):
    assert dict(space.choices()) == {
        "width": (8, 16), "kernel": (3, 5), "depth": (1, 2, 3), "ratio": (1, 2),  # nni.choice (MutableConv2d)
        "act": ("relu", "hswish"),  # LayerChoice by name
        "skip": (0, 1),  # InputChoice of one: the index it picks
        "mix": ("[0,1]", "[0,2]", "[1,2]"),  # InputChoice of two: the picks
    }
    assert space.name == NAME and space.whole_network
    # disk caches: the same definition made again is filed under the same key
    assert contract_space().cache_key == space.cache_key and space.cache_key.startswith(f"{NAME}-")
    # a Repeat's own depth range and a LayerChoice of a list: Categoricals of ints
    class Plain(ModelSpace):
        def __init__(self):
            super().__init__()
            self.body = Repeat(lambda _: LayerChoice([nn.ReLU(), nn.Tanh()], label="op"), (1, 2), label="rep")

        def forward(self, x):
            return self.body(x)

    assert dict(nni_space(Plain(), (1, 4), "plain_nni").choices()) == {"rep": (1, 2), "op": (0, 1)}


def test_dimensions_write_any_value_and_read_subsets_in_any_order():
    shapes = Dimension.categorical("k", [(3, 3), (5, 5), None])
    assert shapes.values == ("(3, 3)", "(5, 5)", "None") and shapes.sample_value("(5, 5)") == (5, 5)
    assert shapes.value_of(None) == "None"
    anything = Dimension.subset("any", [0, 1, 2], None)
    assert anything.values[0] == "[]" and len(anything.values) == 8
    assert anything.value_of([2, 0]) == "[0,2]" and anything.sample_value("[0,2]") == [0, 2]
    with pytest.raises(ArchError, match="not a value"):
        anything.value_of([0, 0])
    with pytest.raises(ConfigError, match="cannot be written in an id"):
        Dimension.categorical("bad", ["a|b", "c"])
    assert Dimension.categorical("flag", [True, 1]).value_of(True) is True  # 1 is not True here


def test_sample_frozen_network_and_graph_round_trip(space):
    rng = np.random.default_rng(0)
    simplified = SimplifiedModelSpace.from_model(TinyNet())
    for _ in range(3):
        arch = space.sample(rng)
        sample = space.to_sample(arch)
        assert space.to_arch(sample) == arch and simplified.contains(sample)
        # the id without the space (what current_arch gives inside a trial): the same
        assert sample_id(dimensions(simplified), sample) == arch
        # the network is the one NNI's engine builds (its default, simplified format)
        ours = graph_of(space.build_network(arch))
        assert ours == graph_of(simplified.freeze(sample).executable_model())
        assert space.to_graph(arch).to_dict() == ours
    with pytest.raises(ArchError, match="lacks"):
        space.to_arch({"width": 8})
    with pytest.raises(ArchError, match="does not have the labels of its space"):
        sample_id(dimensions(simplified), {"width": 8})


def test_mutations_stay_in_the_domains_and_the_constraint(space):
    rng = np.random.default_rng(1)
    model = TinyNet()
    domains = dict(space.choices())
    arch = space.sample(rng)
    for _ in range(60):
        child = space.mutate(arch, rng)
        old, new = space.config(arch), space.config(child)
        assert sum(old[k] != new[k] for k in old) == 1 and all(new[k] in domains[k] for k in new)
        assert model.contains(space.to_sample(child))
        arch = child
    # the constraint (width * ratio * depth <= 64) removes the 24 widest, most expanded, deepest networks
    assert len(list(space)) == len(space) - 24
    assert not any(c["width"] == 16 and c["ratio"] == 2 and c["depth"] == 3
                   for c in (space.config(space.sample(rng)) for _ in range(200)))
    with pytest.raises(ArchError, match="rejected"):
        space.arch_of({"width": 16, "kernel": 3, "depth": 3, "ratio": 2, "act": "relu", "skip": 0, "mix": "[0,1]"})


def test_samples_of_one_network_are_evaluated_once(space):
    one, two = (space.to_arch({**UNUSED_BLOCKS, "depth": d}) for d in (1, 3))
    assert space.equivalence_key(one) == space.equivalence_key(two)
    assert space.equivalence_key(one) != space.equivalence_key(space.to_arch({**UNUSED_BLOCKS, "depth": 1,
                                                                               "mix": [0, 1]}))
    calls = []
    oracle = FunctionOracle(lambda a: calls.append(a) or params(space.build_network(a)))
    run_search(space, make_strategy("random"), oracle, 60, seed=0, progress=False)
    keys = [space.equivalence_key(a) for a in calls]
    assert len(calls) == 60 and len(set(keys)) == 60


# -- clear errors -------------------------------------------------------------------------------------------
class Spectral(nn.Module):
    """An FFT: no ONNX form in the exporter's opset."""

    def forward(self, x):
        return torch.fft.rfft2(x).abs()


class WithSpectral(ModelSpace):
    def __init__(self):
        super().__init__()
        self.op = LayerChoice({"relu": nn.ReLU(), "fft": Spectral()}, label="op")

    def forward(self, x):
        return self.op(x)


class WithDropout(ModelSpace):
    def __init__(self):
        super().__init__()
        self.drop = MutableDropout(nni.uniform("rate", 0.0, 0.5))

    def forward(self, x):
        return self.drop(x)


def test_an_unexportable_module_is_named():
    space = nni_space(WithSpectral(), (1, 4), "spectral_nni")
    assert space.to_graph("op=relu").ops
    with pytest.raises(ArchError, match=r"cannot export WithSpectral to ONNX: module Spectral .*fft_rfft2"):
        space.to_graph("op=fft")


def test_continuous_and_unsized_spaces_are_refused():
    with pytest.raises(ConfigError, match=r"'rate' is a continuous nni.uniform .* use nni.choice over a grid"):
        nni_space(WithDropout(), (1, 4))
    with pytest.raises(ConfigError, match=r"model space TinyNet is not NAS-Bench-101/201: pass input_shape="
                                          r"\(1, 3, H, W\)"):
        PredictorGuidedStrategy().initialize(SimplifiedModelSpace.from_model(TinyNet()), SequentialExecutionEngine())


# -- the strategy ---------------------------------------------------------------------------------------------
def strategy_on_tiny(**kwargs) -> PredictorGuidedStrategy:
    kwargs.setdefault("surrogate", FunctionSurrogate(lambda archs: [a.count("16") + a.count("hswish") for a in archs]))
    return PredictorGuidedStrategy(small_search(), input_shape=INPUT_SHAPE, space_name=NAME, **kwargs)


def test_in_a_nas_experiment(tmp_path):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    named = []

    def trial(model):
        named.append(current_arch())  # the training function can name its network in our ids
        nni.report_final_result(params(model))

    strategy = strategy_on_tiny(seed=1)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 8
    config.experiment_working_directory = str(tmp_path)
    exp = NasExperiment(TinyNet(), FunctionalEvaluator(trial), strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    space = strategy.mapping.space
    records = strategy.records()
    assert strategy.mapping.space_name == NAME and strategy.summary()["stop"] == "budget"
    assert len(records) == 8 and len({space.equivalence_key(r["arch"]) for r in records}) == 8
    assert all(r["value"] == params(space.build_network(r["arch"])) for r in records)
    assert named == [r["arch"] for r in records]
    top = exp.export_top_models(top_k=1, formatter="dict")[0]
    assert space.to_arch(top) in {r["arch"] for r in records if r["value"] == strategy.best()["value"]}


def test_latency_bound_and_resume_after_a_kill():
    space = contract_space()

    def latency(archs):
        return [space.config(a)["width"] * space.config(a)["depth"] / 8.0 for a in archs]

    def make(**kwargs):
        return strategy_on_tiny(constraint=LatencyConstraint(FunctionLatency(latency), 3.0), seed=2, **kwargs)

    def run(strategy, count):
        model_space = SimplifiedModelSpace.from_model(TinyNet(), FunctionalEvaluator(
            lambda m: nni.report_final_result(params(m))))
        engine = SequentialExecutionEngine(max_model_count=count)
        strategy.initialize(model_space, engine)
        return strategy, engine

    first, _ = run(make(), 6)
    first.run()
    assert max(latency(first.summary()["evaluated_archs"])) <= 3.0 and first.summary()["rejected_over_bound"] > 0
    # killed after six models: a new strategy loads the checkpoint, replays them and runs four more
    resumed, engine = run(make(), 4)
    resumed.load_state_dict(first.state_dict())
    resumed.run()
    archs = resumed.summary()["evaluated_archs"]
    assert archs[:6] == first.summary()["evaluated_archs"] and len(archs) == 10 and len(set(archs)) == 10
    assert resumed.summary()["replayed_from_checkpoint"] == 6 and len(list(engine.list_models())) == 4
    assert max(latency(archs)) <= 3.0


def _slow_trial(model) -> None:
    time.sleep(0.3)  # training, for the kill to land during a trial
    nni.report_final_result(params(model))


def _search_with_history(path: str, count: int) -> None:
    """A search that writes its evaluations to ``path`` as they finish (run in a process that gets killed)."""
    strategy = strategy_on_tiny(seed=3, history=path)
    model_space = SimplifiedModelSpace.from_model(TinyNet(), FunctionalEvaluator(_slow_trial))
    strategy.initialize(model_space, SequentialExecutionEngine(max_model_count=count))
    strategy.run()


def test_a_search_killed_mid_run_resumes_from_its_history_file(tmp_path):
    """SIGKILL leaves NNI no chance to save its checkpoint; the history file has every finished evaluation."""
    path = tmp_path / "history.jsonl"
    proc = multiprocessing.get_context("spawn").Process(target=_search_with_history, args=(str(path), 50))
    proc.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.is_alive():
        if path.is_file() and len(path.read_text().splitlines()) >= 1 + 5:  # the header and five evaluations
            break
        time.sleep(0.05)
    proc.kill()
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    done = [json.loads(line) for line in path.read_text().splitlines()[1:] if line.endswith("}")]
    assert len(done) >= 5
    resumed = strategy_on_tiny(seed=3, history=path)
    model_space = SimplifiedModelSpace.from_model(TinyNet(), FunctionalEvaluator(_slow_trial))
    engine = SequentialExecutionEngine(max_model_count=3)
    resumed.initialize(model_space, engine)
    resumed.run()
    archs = resumed.summary()["evaluated_archs"]
    assert archs[:len(done)] == [r["arch"] for r in done] and len(archs) == len(done) + 3 == len(set(archs))
    assert resumed.summary()["replayed_from_checkpoint"] == len(done) and len(list(engine.list_models())) == 3
    # the file now holds all of them, once each, after its header
    assert [json.loads(line)["arch"] for line in path.read_text().splitlines()[1:]] == archs
    # a file of another search is refused, naming the difference
    with pytest.raises(ConfigError, match="differs in: seed"):
        strategy_on_tiny(seed=4, history=path).initialize(model_space, SequentialExecutionEngine(max_model_count=1))


def test_nni_filter_with_a_source_of_ours_reads_the_sample_id(space):
    """NNI's own strategies take the bound through the Filter middleware: with a latency source of ours over
    the space's ids (measured latency, a table), the filter asks it for the sample's id, exports nothing."""
    from strategies.nni_bridge import LatencyFilter

    asked = []

    def latency(archs):
        asked.extend(archs)
        return [space.config(a)["width"] / 8.0 for a in archs]

    bound = LatencyFilter(1.5, FunctionLatency(latency))
    simplified = SimplifiedModelSpace.from_model(TinyNet())
    rng = np.random.default_rng(3)
    for _ in range(4):
        arch = space.sample(rng)
        model = simplified.freeze(space.to_sample(arch))
        assert bound(model) == (space.config(arch)["width"] == 8) and asked[-1] == arch
    assert bound.history[-1]["arch"] == arch and bound.history[-1]["source"] == "user"


def test_the_online_surrogate_reads_whole_networks():
    strategy = strategy_on_tiny(surrogate="online")
    strategy.initialize(SimplifiedModelSpace.from_model(TinyNet()), SequentialExecutionEngine())
    assert isinstance(strategy._surrogate, OnlineSurrogate) and strategy._surrogate.space == NAME
    assert strategy._surrogate.whole_network
    # and it fits and ranks them (a short refit: the path, not the quality)
    space = strategy.mapping.space
    surrogate = OnlineSurrogate(NAME, seed=0, steps=10, refit_every=3, min_points=4)
    summary = run_search(space, small_search(), FunctionOracle(lambda a: params(space.build_network(a))), 8,
                         seed=0, surrogate=surrogate, progress=False)
    assert summary["evaluations"] == 8 and surrogate.fits > 0


def test_nas_bench_201_as_an_opaque_network(data_dir):
    """whole_network=True: the hub's NasBench201 searched through its labels and exported networks; our
    table evaluator still reads each sample as its cell."""
    from nni.nas.hub.pytorch import NasBench201

    table = NB201TableBenchmark("cifar10", data_dir=str(data_dir))
    with pytest.raises(ConfigError, match="whole networks .*pass input_shape"):
        PredictorGuidedStrategy(whole_network=True).initialize(RawFormatModelSpace.from_model(NasBench201(), table),
                                                               SequentialExecutionEngine())
    with pytest.raises(ConfigError, match="BenchmarkModelSpace holds no networks"):
        PredictorGuidedStrategy(whole_network=True, input_shape=(1, 3, 32, 32)).initialize(
            BenchmarkModelSpace(table), SequentialExecutionEngine())
    strategy = PredictorGuidedStrategy("random", whole_network=True, input_shape=(1, 3, 32, 32), seed=0)
    engine = SequentialExecutionEngine(max_model_count=3)
    strategy(SimplifiedModelSpace.from_model(NasBench201(), table), engine)
    assert strategy.mapping.space_name == "nni-NasBench201" and strategy.mapping.space.whole_network
    assert OnlineSurrogate(strategy.mapping.space_name).whole_network  # what surrogate="online" would read
    records = strategy.records()
    assert len(records) == 3 and all(r["arch"].startswith("cell/0_1=") for r in records)
    for record, model in zip(records, engine.list_models()):
        cell = nb201_sample_to_arch(model.sample)
        assert strategy.mapping.to_sample(record["arch"]) == model.sample
        assert record["value"] == pytest.approx(table.score(cell))
        assert record["report"]["test_accuracy"] == pytest.approx(table.arch_report(cell)["test_accuracy"])


class ThreadedEngine(ExecutionEngine):
    """``workers`` models train at once, each in a thread: what NNI's training service does with
    ``trial_concurrency`` workers, without starting its manager. A model's metric is a function of its sample."""

    def __init__(self, workers: int, max_models: int, seconds: float) -> None:
        super().__init__()
        self.workers, self.max_models, self.seconds = workers, max_models, seconds
        self.models: list = []
        self.peak = 0
        self._lock = threading.Lock()

    def _running(self) -> int:
        return sum(not m.status.completed() for m in self.models)

    def submit_models(self, *models) -> None:
        with self._lock:
            for model in models:
                model.status = ModelStatus.Training
                self.models.append(model)
                threading.Thread(target=self._train, args=(model,), daemon=True).start()
            self.peak = max(self.peak, self._running())

    def _train(self, model) -> None:
        time.sleep(self.seconds)
        model.metrics.final = float(sum(len(str(v)) * (i + 1) for i, v in enumerate(model.sample.values())))
        model.status = ModelStatus.Trained

    def list_models(self, status=None):
        return [m for m in self.models if status is None or m.status == status]

    def idle_worker_available(self) -> bool:
        return self._running() < self.workers

    def budget_available(self) -> bool:
        return len(self.models) < self.max_models

    def wait_models(self, *models) -> None:
        while not all(m.status.completed() for m in (models or self.models)):
            time.sleep(0.01)

    def shutdown(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


def test_every_idle_nni_worker_is_kept_busy_with_proposals_that_know_the_running_ones():
    engine = ThreadedEngine(workers=4, max_models=14, seconds=0.2)
    strategy = strategy_on_tiny(seed=5)
    model_space = SimplifiedModelSpace.from_model(TinyNet(), FunctionalEvaluator(lambda m: None))
    strategy.initialize(model_space, engine)
    strategy.run()
    archs = strategy.summary()["evaluated_archs"]
    space = strategy.mapping.space
    assert engine.peak == 4  # four models trained at once the whole time there was budget for them
    assert len(engine.models) == 14 and len(archs) == 14 and strategy.summary()["stop"] == "budget"
    assert len({space.equivalence_key(a) for a in archs}) == 14  # none proposed while the same one ran
    assert all(r["status"] == "ok" and r["value"] > 0 for r in strategy.records())
