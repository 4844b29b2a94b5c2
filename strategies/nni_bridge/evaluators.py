"""NNI ``BenchmarkEvaluator`` subclasses that score NAS-Bench-201 / NAS-Bench-101 samples from our data
(no NNI benchmark database, which needs a download): the real accuracies of our tables, or our
predictors' estimates.

Each evaluator maps the sample it is given to our arch string (:mod:`.mapping`), so it works on a
``BenchmarkModelSpace`` (``BenchmarkModelSpace(NB201TableBenchmark())``) and on any model space with the
same labels, such as the hub's ``NasBench201`` in a ``NasExperiment`` (NNI then warns that a
``BenchmarkModelSpace`` would be lighter; nothing is instantiated either way: only the sample is read).

Values are in percent, as our tables and predictors give them (``scale=0.01`` reports fractions, as
NNI's own ``NasBench201Benchmark`` does). Like NNI's, ``evaluate`` reports the value as the trial's final
result when called by an engine, and returns it.

For a ``FunctionalEvaluator`` (your own training function), :func:`current_arch` is the arch string of
the model being evaluated, in any model space.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from strategies.nni_bridge import require_nni

nni = require_nni()

from nni.mutable import Categorical, Sample  # noqa: E402
from nni.nas.benchmark import BenchmarkEvaluator, NasBench101Benchmark, SlimBenchmarkSpace  # noqa: E402

from nas_predictor.errors import ConfigError  # noqa: E402
from strategies.nni_bridge.mapping import (  # noqa: E402
    NB201_LABELS, NB201_NNI_TO_OURS, nb101_sample_to_arch, nb201_sample_to_arch,
)


def current_arch() -> str:
    """Inside an evaluation run by an NNI engine: the arch string of the model being evaluated (our
    NAS-Bench-101/201 string for those spaces; for any other model space, the id its whole-network
    search gives it, read off the model space's own mutables, in this process or a trial's)."""
    from search_spaces.nni_space import sample_id
    from strategies.nni_bridge.mapping import check_space, mapping_for_sample
    from strategies.nni_bridge.space import dimensions

    model = nni.get_current_parameter()
    sample = getattr(model, "sample", None)
    if sample is None:
        raise RuntimeError("current_arch() works inside an NNI evaluation (a frozen model with a sample)")
    mapping = mapping_for_sample(sample)
    if mapping is None:
        return sample_id(dimensions(model), sample)
    return check_space(mapping, model).to_arch(sample)


def _report(value: float) -> None:
    # NNI's trial API is there only when an engine runs the evaluation (or under mock_runtime)
    if nni.get_current_parameter() is not None:
        nni.report_final_result(value)


class _ArchBenchmark(BenchmarkEvaluator):
    """Scores a sample by the arch string it maps to; subclasses give ``score(arch)``."""

    space_name = ""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ConfigError(f"scale must be positive, got {scale}")
        self.scale = float(scale)

    def to_arch(self, sample: Sample) -> str:
        if self.space_name == "nasbench201":
            return nb201_sample_to_arch(sample)
        return nb101_sample_to_arch(sample)

    def score(self, arch: str) -> float:
        raise NotImplementedError

    def arch_report(self, arch: str) -> dict[str, float]:
        """Values a search must not see (e.g. test accuracy) for its summary; default none."""
        return {}

    def evaluate(self, sample: Sample) -> float:
        value = float(self.score(self.to_arch(sample))) * self.scale
        if not math.isfinite(value):
            raise ValueError(f"{type(self).__name__} scored {dict(sample)} as {value}")
        _report(value)
        return value


class _NB201Space:
    space_name = "nasbench201"

    @classmethod
    def default_space(cls) -> SlimBenchmarkSpace:
        """The six edges as NNI's NAS-Bench-201 benchmark (and hub space) label them."""
        ops = list(NB201_NNI_TO_OURS)
        edges = [Categorical(ops, label=label) for label in NB201_LABELS]
        return SlimBenchmarkSpace({edge.label: edge for edge in edges})  # scoped labels under a label_scope


class _NB101Space:
    space_name = "nasbench101"

    @classmethod
    def default_space(cls) -> SlimBenchmarkSpace:
        return NasBench101Benchmark.default_space()


class NB201TableBenchmark(_NB201Space, _ArchBenchmark):
    """The real NAS-Bench-201 200-epoch accuracy of each sample, from our table (``NB201TableOracle``).

    On CIFAR-10 the value is the ``cifar10-valid`` validation accuracy (what a search may see) and
    :meth:`arch_report` gives the ``cifar10`` test accuracy; ``metric="test"`` scores by the test accuracy
    instead. CIFAR-100 / ImageNet16-120: the test accuracy (our data has no other).
    """

    def __init__(self, dataset: str = "cifar10", metric: str = "search", data_dir: str | None = None,
                 table_file: str | None = None, scale: float = 1.0) -> None:
        from strategies.oracle import NB201TableOracle

        super().__init__(scale)
        if metric not in ("search", "test"):
            raise ConfigError(f"metric must be 'search' or 'test', got {metric!r}")
        self.dataset = dataset
        self.metric = metric
        self.oracle = NB201TableOracle(dataset, data_dir=data_dir, table_file=table_file)

    def score(self, arch: str) -> float:
        i = self.oracle.index(arch)
        return float((self.oracle.search_values if self.metric == "search" else self.oracle.test_values)[i])

    def arch_report(self, arch: str) -> dict[str, float]:
        return {"test_accuracy": float(self.oracle.test_values[self.oracle.index(arch)])}

    def extra_repr(self) -> str:
        return f"dataset={self.dataset!r}, metric={self.metric!r}"


class NB101TableBenchmark(_NB101Space, _ArchBenchmark):
    """The real NAS-Bench-101 accuracy of each sample's cell (``NB101TableOracle``, by the official hash):
    validation accuracy, with the test accuracy in :meth:`arch_report`, from the official tfrecord
    (``table_file``); without it, the shared 292-cell subset, where any other cell fails (an error naming
    the table: the engine records a failed trial, or stops unless ``continue_on_failure``)."""

    def __init__(self, table_file: str | None = None, data_dir: str | None = None, scale: float = 1.0) -> None:
        from strategies.oracle import NB101TableOracle

        super().__init__(scale)
        self.oracle = NB101TableOracle(table_file=table_file, data_dir=data_dir, progress=False)

    def score(self, arch: str) -> float:
        return float(self.oracle.search_values[self.oracle.index(arch)])

    def arch_report(self, arch: str) -> dict[str, float]:
        i = self.oracle.index(arch)
        if self.oracle.test_values is None:
            return {"validation_accuracy": float(self.oracle.search_values[i])}
        return {"test_accuracy": float(self.oracle.test_values[i])}


class _PredictorBenchmark(_ArchBenchmark):
    """Our accuracy predictor's estimate for each sample (no data, no training)."""

    def __init__(self, predictor: Any, device: str = "cpu", scale: float = 1.0) -> None:
        super().__init__(scale)
        if isinstance(predictor, str) or hasattr(predictor, "__fspath__"):
            from nas_predictor.predictor import load_predictor

            self.name = str(predictor)
            predictor = load_predictor(predictor, device=device)
        else:
            self.name = type(predictor).__name__
        if not callable(getattr(predictor, "predict", None)):
            raise ConfigError(f"a predictor needs predict(list of arch strings), got {type(predictor).__name__}")
        self.predictor = predictor
        self._memo: dict[str, float] = {}

    def score(self, arch: str) -> float:
        if arch not in self._memo:
            self._memo[arch] = float(self.predictor.predict([arch])[0])
        return self._memo[arch]

    def score_many(self, archs: Sequence[str]) -> list[float]:
        todo = [a for a in dict.fromkeys(archs) if a not in self._memo]
        if todo:
            self._memo.update(zip(todo, map(float, self.predictor.predict(todo))))
        return [self._memo[a] for a in archs]

    def extra_repr(self) -> str:
        return f"predictor={self.name!r}"


class NB201PredictorBenchmark(_NB201Space, _PredictorBenchmark):
    """NAS-Bench-201 samples scored by an accuracy predictor (default the shipped ``nb201-accuracy``;
    a name, a checkpoint path, or any object with ``predict(archs)``)."""

    def __init__(self, predictor: Any = "nb201-accuracy", device: str = "cpu", scale: float = 1.0) -> None:
        super().__init__(predictor, device, scale)


class NB101PredictorBenchmark(_NB101Space, _PredictorBenchmark):
    """NAS-Bench-101 samples scored by an accuracy predictor of NAS-Bench-101 cells (a checkpoint path,
    or any object with ``predict(archs)``, e.g. ``nas_predictor.online.fit_online`` output)."""
