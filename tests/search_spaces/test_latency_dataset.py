"""The latency-dataset builder: layout, resume after a kill, failures, identity, gt.txt, retest."""

import functools
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from nas_predictor.data.latency_tables import load_nnlqp_labels
from nas_predictor.errors import ConfigError, DataError
from nas_predictor.latency import LatencyLabel, Outcome, RawStats, RobustStats
from nas_predictor.jsonl import append_jsonl, read_jsonl
from search_spaces.cnn_families import FAMILIES
from search_spaces.cnn_families import dataset as ds

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "latency_measured_cpu.yaml"
FAST = ("nasbench201", "mobilenetv3")  # the two families that export in well under a second
_REAL_VARIANT_ONNX = ds.variant_onnx


@functools.lru_cache(maxsize=None)
def _cached_variant_onnx(family, seed, space="nnlqp", batch=1, opset=17):
    info, data = _REAL_VARIANT_ONNX(family, seed, space=space, batch=batch, opset=opset)
    return json.dumps(info), data


def _variant_onnx(family, seed, *, space="nnlqp", batch=1, opset=17):
    info, data = _cached_variant_onnx(family, seed, space, batch, opset)
    return json.loads(info), data


@pytest.fixture(autouse=True)
def _export_each_graph_once(monkeypatch):
    """Each (family, seed) graph is exported for real once per test session (exports dominate the time)."""
    monkeypatch.setattr(ds, "variant_onnx", _variant_onnx)


def fake_label(ms: float) -> LatencyLabel:
    return LatencyLabel(model="x", label_ms=ms, estimator="gated-ratio", provider="cpu",
                        execution_providers=["CPUExecutionProvider"], batch_size=1,
                        raw=RawStats(ms, ms, ms, ms, 10, 10, 10, 1), robust=RobustStats(gated_ms=ms),
                        cpu_model="Test CPU", threads=1)


class FakeMeasurer:
    """Measures a graph as len(bytes) / 1000 ms x ``scale``; fails the sources whose number is in ``fail``;
    raises KeyboardInterrupt (a kill) after ``die_after`` labels."""

    def __init__(self, scale=1.0, fail=(), die_after=None, reference_ms=None):
        self.scale, self.fail, self.die_after = scale, set(fail), die_after
        self.measured = []
        self.reference_ms = reference_ms
        if reference_ms is not None:  # the machine's speed, as the real measurer's tracker reports it
            self.tracker = types.SimpleNamespace(fast_ms=reference_ms)

    def measure_many(self, sources):
        from nas_predictor.latency import MeasurementError

        for index, data in enumerate(sources):
            if self.die_after is not None and len(self.measured) >= self.die_after:
                raise KeyboardInterrupt
            self.measured.append(data)
            if index in self.fail:
                yield Outcome(index, "x", error=MeasurementError("onnxruntime failed"))
            else:
                label = fake_label(self.scale * len(data) / 1000.0)
                label.reference_fast_ms = self.reference_ms
                yield Outcome(index, "x", label=label)


def build(root, per_family=2, families=FAST, **kw):
    kw.setdefault("measurer", FakeMeasurer())
    return ds.build_dataset(root, families, per_family, subprocess_export=False, progress=False, **kw)


def test_variant_onnx_is_reproducible_and_gt_paths_name_family_space_seed():
    info, data = _REAL_VARIANT_ONNX("nasbench201", 3)
    info2, data2 = _REAL_VARIANT_ONNX("nasbench201", 3)
    assert data == data2 and info == info2 and info["seed"] == 3
    assert _REAL_VARIANT_ONNX("nasbench201", 4)[1] != data
    assert _REAL_VARIANT_ONNX("nasbench201", 3, batch=4)[0]["input_shape"][0] == 4
    assert ds.graph_path("vgg16", "nnlqp", 7) == "onnx/vgg16/vgg16_nnlqp_00007.onnx"


def test_families_and_round_robin_order():
    assert ds.parse_families("all") == FAMILIES
    assert ds.parse_families("vgg16, alexnet") == ("alexnet", "vgg16")
    with pytest.raises(ConfigError, match="unknown family vgg19"):
        ds.parse_families("vgg16,vgg19")
    order = ds.build_order(("alexnet", "vgg16"), 3, {("alexnet", 1)})
    assert order == [("alexnet", 0), ("vgg16", 0), ("vgg16", 1), ("alexnet", 2), ("vgg16", 2)]


def test_build_writes_labels_manifest_and_an_nnlqp_gt(tmp_path):
    report = build(tmp_path, per_family=2)
    assert report.measured == 4 and report.failed == 0 and report.remaining == 0
    labels = read_jsonl(tmp_path / ds.LABELS)
    assert [(e["family"], e["seed"]) for e in labels] == [("mobilenetv3", 0), ("nasbench201", 0),
                                                           ("mobilenetv3", 1), ("nasbench201", 1)]
    # the label is what the measurer said about exactly the regenerated graph
    e = labels[1]
    assert e["label"]["label_ms"] == pytest.approx(len(ds.variant_onnx("nasbench201", 0)[1]) / 1000.0)
    assert e["graph"] == e["label"]["model"] == "onnx/nasbench201/nasbench201_nnlqp_00000.onnx"
    manifest = json.loads((tmp_path / ds.MANIFEST).read_text())
    assert manifest["identity"] == {"space": "nnlqp", "provider": "cpu", "batch": 1, "opset": 17}
    assert manifest["counts"] == {"mobilenetv3": 2, "nasbench201": 2} and manifest["builds"][0]["measured"] == 4
    records = load_nnlqp_labels(tmp_path / ds.GT, require_files=False)
    assert [r.model_type for r in records] == ["mobilenetv3", "mobilenetv3", "nasbench201", "nasbench201"]
    assert records[0].platform == "cpu-Test-CPU-t1" and records[0].batch_size == 1
    # graphs are not stored, but `dataset export` regenerates exactly the measured ones
    with pytest.raises(DataError, match="missing"):
        load_nnlqp_labels(tmp_path / ds.GT)
    assert ds.export_graphs(tmp_path, progress=False) == 4
    assert ds.export_graphs(tmp_path, progress=False) == 0
    found = load_nnlqp_labels(tmp_path / ds.GT)
    assert found[2].onnx_path.read_bytes() == _REAL_VARIANT_ONNX("nasbench201", 0)[1]


def test_a_killed_build_resumes_with_nothing_lost_or_measured_twice(tmp_path):
    dying = FakeMeasurer(die_after=3)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, per_family=3, measurer=dying)
    first = read_jsonl(tmp_path / ds.LABELS)
    assert len(first) == 3
    manifest = json.loads((tmp_path / ds.MANIFEST).read_text())
    assert manifest["builds"][-1]["stopped"] == "interrupted" and manifest["labels"] == 3
    again = FakeMeasurer()
    report = build(tmp_path, per_family=3, measurer=again)
    assert report.measured == 3 and len(again.measured) == 3
    keys = [(e["family"], e["seed"]) for e in read_jsonl(tmp_path / ds.LABELS)]
    assert len(keys) == len(set(keys)) == 6
    # growing the dataset later measures only the new seeds
    more = FakeMeasurer()
    build(tmp_path, per_family=4, measurer=more)
    assert len(more.measured) == 2 and len(read_jsonl(tmp_path / ds.LABELS)) == 8


def test_failures_are_recorded_skipped_on_resume_and_retried_on_request(tmp_path):
    report = build(tmp_path, per_family=2, measurer=FakeMeasurer(fail={1}))
    assert report.measured == 3 and report.failed == 1
    failures = read_jsonl(tmp_path / ds.FAILURES)
    assert failures == [{"family": "nasbench201", "seed": 0, "space": "nnlqp", "stage": "measure",
                         "error": "onnxruntime failed"}]
    assert build(tmp_path, per_family=2).measured == 0
    assert build(tmp_path, per_family=2, retry_failed=True).measured == 1
    assert ("nasbench201", 0) in ds.LatencyDataset(tmp_path).done()


def test_an_export_failure_is_a_recorded_failure_not_a_crash(tmp_path, monkeypatch):
    real = _variant_onnx

    def broken(family, seed, **kw):
        if family == "mobilenetv3" and seed == 1:
            raise RuntimeError("tracer failed")
        return real(family, seed, **kw)

    monkeypatch.setattr(ds, "variant_onnx", broken)
    report = build(tmp_path, per_family=2)
    assert report.measured == 3 and report.failed == 1
    assert read_jsonl(tmp_path / ds.FAILURES)[0]["stage"] == "export"
    assert "tracer failed" in read_jsonl(tmp_path / ds.FAILURES)[0]["error"]


def test_a_folder_of_another_setting_or_a_running_build_is_refused(tmp_path):
    build(tmp_path, per_family=1)
    with pytest.raises(ConfigError, match=r"batch 1 \(asked 2\)"):
        build(tmp_path, per_family=1, batch=2)
    import filelock

    with filelock.FileLock(str(tmp_path / ds.LOCK)):  # as another process would hold it
        with pytest.raises(ConfigError, match="another build"):
            build(tmp_path, per_family=2)
    for bad in ({"per_family": 0}, {"provider": "npu"}, {"space": "big"}, {"max_minutes": -1}):
        kw = {"per_family": 1, **bad}
        with pytest.raises(ConfigError):
            build(tmp_path / "x", **kw)


class BusyStartMeasurer(FakeMeasurer):
    """The same machine, started while busy: the reference reads 2x slow until it has run longer."""

    def __init__(self, settle_after: int, **kw):
        super().__init__(**kw)
        self.fast, self.tracker.fast_ms = kw["reference_ms"], 2 * kw["reference_ms"]
        self.warmed, self.settle_after = 0, settle_after

    def warm_reference(self, seconds):
        self.warmed += 1
        if self.warmed >= self.settle_after:
            self.tracker.fast_ms = self.fast
        return self.tracker.fast_ms


def test_a_start_while_busy_looks_longer_before_calling_the_folder_another_machines(tmp_path):
    n = len(FAST)
    build(tmp_path, per_family=1, measurer=FakeMeasurer(reference_ms=6.8))
    busy = BusyStartMeasurer(settle_after=2, reference_ms=6.8)
    report = build(tmp_path, per_family=2, measurer=busy)
    assert busy.warmed == 2 and report.measured == n
    stuck = BusyStartMeasurer(settle_after=99, reference_ms=6.8)  # busy all along: refused, after looking
    with pytest.raises(ConfigError, match="measured on another machine"):
        build(tmp_path, per_family=3, measurer=stuck)
    assert stuck.warmed == ds.MACHINE_CHECK_ROUNDS and stuck.measured == []


def test_a_build_on_another_machine_is_refused_and_relabel_measures_those_models_again(tmp_path):
    n = len(FAST)
    build(tmp_path, per_family=2, measurer=FakeMeasurer(reference_ms=6.8))
    # the same machine a little slower (within the tolerance) just continues
    build(tmp_path, per_family=3, measurer=FakeMeasurer(reference_ms=6.0))
    assert len(ds.LatencyDataset(tmp_path).labels) == 3 * n
    # a machine 2.3x faster: its labels would not compare with these
    faster = FakeMeasurer(scale=0.4, reference_ms=2.9)
    with pytest.raises(ConfigError, match=rf"{3 * n} of its {3 * n} labels were measured on another machine"):
        build(tmp_path, per_family=4, measurer=faster)
    assert faster.measured == []
    report = build(tmp_path, per_family=4, measurer=faster, relabel=True)
    assert report.measured == 4 * n and report.remaining == 0
    data = ds.LatencyDataset(tmp_path)
    # each model keeps its newest label; the file is compacted to one line per model at the end
    assert len(data.labels) == 4 * n and data.superseded == 0
    assert len(read_jsonl(tmp_path / ds.LABELS)) == 4 * n
    # a relabel killed before that leaves both lines of a model: readers take the newest
    newer = dict(read_jsonl(tmp_path / ds.LABELS)[0], macs=-1)
    append_jsonl(tmp_path / ds.LABELS, newer)
    data = ds.LatencyDataset(tmp_path)
    assert len(data.labels) == 4 * n and data.superseded == 1
    assert [r.macs for r in data.records() if (r.family, r.seed) == (newer["family"], newer["seed"])] == [-1]
    assert {e["label"]["reference_fast_ms"] for e in data.labels} == {2.9}
    assert ds.other_machine_labels(data, 2.9) == {}
    assert len((tmp_path / ds.GT).read_text().splitlines()) == 4 * n
    assert json.loads((tmp_path / ds.MANIFEST).read_text())["labels"] == 4 * n


def test_labels_of_the_old_gated_estimator_are_not_mixed_with_new_ones(tmp_path):
    n = len(FAST)
    build(tmp_path, per_family=2)
    lines = read_jsonl(tmp_path / ds.LABELS)
    for e in lines[:3]:  # three labels from before issue 26's fix: record version 1, gated ratio
        e["label"]["record_version"] = 1
    lines[3]["label"].update(record_version=1, estimator="min-of-pass")  # unchanged by the fix: not stale
    (tmp_path / ds.LABELS).write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert ds.old_estimator_labels(ds.LatencyDataset(tmp_path)) == {(e["family"], e["seed"]) for e in lines[:3]}
    assert build(tmp_path, per_family=2).measured == 0  # nothing new to add: nothing to mix
    fake = FakeMeasurer()
    with pytest.raises(ConfigError, match=rf"3 of its {2 * n} labels are gated-ratio labels of record version 1.*"
                                          r"Rerun with --relabel"):
        build(tmp_path, per_family=3, measurer=fake)
    assert fake.measured == []
    # nor is a retest: it would compare two estimators, not two measurements
    with pytest.raises(ConfigError, match=r"3 of the 4 sampled models have gated-ratio labels of record version 1"):
        ds.retest_dataset(tmp_path, 2 * n, measurer=fake, subprocess_export=False, progress=False)
    assert fake.measured == [] and not (tmp_path / ds.RETEST).exists()
    report = build(tmp_path, per_family=3, measurer=fake, relabel=True)
    assert report.measured == 3 + n and report.remaining == 0
    assert ds.old_estimator_labels(ds.LatencyDataset(tmp_path)) == set()


def test_damaged_labels_are_a_clear_error(tmp_path):
    build(tmp_path, per_family=1)
    text = (tmp_path / ds.LABELS).read_text()
    (tmp_path / ds.LABELS).write_text("garbage\n" + text)
    with pytest.raises(DataError, match="labels.jsonl:1"):
        build(tmp_path, per_family=2)
    (tmp_path / ds.MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(DataError, match="not a nas-predictor-latency-dataset folder"):
        ds.LatencyDataset(tmp_path)


def test_retest_measures_a_stratified_sample_again_and_compares(tmp_path):
    build(tmp_path, per_family=3)
    picked = ds.retest_sample(ds.LatencyDataset(tmp_path), 4, seed=0)
    assert sorted({f for f, _ in picked}) == sorted(FAST) and len(set(picked)) == 4
    summary = ds.retest_dataset(tmp_path, 4, measurer=FakeMeasurer(scale=1.08), subprocess_export=False,
                                progress=False)
    assert summary.models == 4
    assert summary.median_diff == pytest.approx(0.08) and summary.within_10pct == 1.0 and summary.within_5pct == 0.0
    assert len(read_jsonl(tmp_path / ds.RETEST)) == 4
    # resumable: a second call measures nothing new
    again = FakeMeasurer(scale=2.0)
    ds.retest_dataset(tmp_path, 4, measurer=again, subprocess_export=False, progress=False)
    assert again.measured == []
    assert json.loads((tmp_path / ds.MANIFEST).read_text())["retest"]["models"] == 4
    with pytest.raises(ConfigError, match="cannot retest a sample of 7"):
        ds.retest_dataset(tmp_path, 7, measurer=again, subprocess_export=False, progress=False)


def test_repair_takes_a_clearly_faster_retest_and_keeps_the_slowed_label(tmp_path):
    build(tmp_path, per_family=2)
    lines = read_jsonl(tmp_path / ds.LABELS)
    # a retest of every model: one 2x faster (the first was slowed), one 5 % faster (noise), one 1.5x slower
    fast, noise, slow = [(e["family"], e["seed"]) for e in lines[:3]]
    first = {(e["family"], e["seed"]): e["label"]["label_ms"] for e in lines}
    factor = {fast: 0.5, noise: 0.95, slow: 1.5}
    for e in lines:
        key = (e["family"], e["seed"])
        second = dict(e["label"], label_ms=first[key] * factor.get(key, 1.0))
        append_jsonl(tmp_path / ds.RETEST, {"family": key[0], "seed": key[1], "label": second})
    report = ds.repair_from_retest(tmp_path)
    assert (report.compared, report.repaired, report.slower) == (len(lines), 1, 1)
    assert report.by_family == {fast[0]: 1} and report.tolerance == pytest.approx(1.12)
    records = {(r.family, r.seed): r for r in ds.LatencyDataset(tmp_path).records()}
    assert records[fast].latency_ms == pytest.approx(first[fast] * 0.5)
    assert records[noise].latency_ms == first[noise] and records[slow].latency_ms == first[slow]
    # the slowed label stays in the file, and the retest summary still compares the two measurements
    raw = read_jsonl(tmp_path / ds.LABELS)
    assert len(raw) == len(lines) + 1 and raw[-1]["repaired"]["previous_ms"] == first[fast]
    assert ds.first_labels(ds.LatencyDataset(tmp_path))[fast]["label_ms"] == first[fast]
    gt = (tmp_path / ds.GT).read_text()
    assert f"{first[fast] * 0.5:.6g}" in gt and len(gt.splitlines()) == len(lines)
    # idempotent: the repaired label equals its retest
    assert ds.repair_from_retest(tmp_path).repaired == 0
    assert len(json.loads((tmp_path / ds.MANIFEST).read_text())["repairs"]) == 2
    # a retest measured on another machine (the reference 2x slower) is refused, nothing appended
    other = dict(raw[0]["label"], label_ms=0.001, reference_fast_ms=2 * (raw[0]["label"]["reference_fast_ms"] or 1.0))
    for e in lines:
        e["label"]["reference_fast_ms"] = 1.0
    (tmp_path / ds.LABELS).write_text("".join(json.dumps(e) + "\n" for e in lines))
    append_jsonl(tmp_path / ds.RETEST, {"family": fast[0], "seed": fast[1], "label": dict(other, reference_fast_ms=2.0)})
    with pytest.raises(ConfigError, match="1 retest labels were measured where the reference model ran"):
        ds.repair_from_retest(tmp_path)
    assert len(read_jsonl(tmp_path / ds.LABELS)) == len(lines)
    with pytest.raises(ConfigError, match="ratio >= 1"):
        ds.repair_from_retest(tmp_path, tolerance=0.9)


def test_cli_repair_and_status(tmp_path):
    build(tmp_path, per_family=1)
    e = read_jsonl(tmp_path / ds.LABELS)[0]
    append_jsonl(tmp_path / ds.RETEST, {"family": e["family"], "seed": e["seed"],
                                        "label": dict(e["label"], label_ms=e["label"]["label_ms"] / 3)})
    cli = [sys.executable, "-m", "nas_predictor.cli", "dataset"]
    done = subprocess.run([*cli, "repair", str(tmp_path), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["repaired"] == 1
    status = subprocess.run([*cli, "status", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert "1 labels repaired by their faster retest" in status.stdout
    bad = subprocess.run([*cli, "repair", str(tmp_path), "--tolerance", "0.5"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "ratio >= 1" in bad.stderr


def test_summarize_retest_numbers():
    first = {("a", 0): 10.0, ("a", 1): 10.0, ("b", 0): 20.0}
    second = {("a", 0): 10.5, ("a", 1): 12.0, ("b", 0): 20.0}
    s = ds.summarize_retest(first, second, {k: "gated-ratio" for k in first})
    assert s.median_diff == pytest.approx(0.05) and s.max_diff == pytest.approx(0.2)
    assert s.mean_diff == pytest.approx(0.25 / 3)  # the MAPE of the second measurement against the first
    assert s.by_family["a"]["mean_diff"] == pytest.approx(0.125) and s.by_family["b"]["mean_diff"] == 0.0
    assert s.within_10pct == pytest.approx(2 / 3) and s.by_estimator["gated-ratio"]["models"] == 3
    with pytest.raises(DataError):
        ds.summarize_retest(first, {})


def test_cli_builds_for_real_with_the_exporter_process_then_reports_status(tmp_path):
    """End to end: exporter subprocess, the real reference-gated measurer, the CLI."""
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "nas_predictor.cli", "dataset", "build", "--families", "nasbench201",
           "--per-family", "2", "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "measured 2, failed 0" in done.stdout
    labels = read_jsonl(out / ds.LABELS)
    # sorted: under load the protocol puts a model without enough clean pairs back in the queue
    assert sorted(e["seed"] for e in labels) == [0, 1]
    for e in labels:
        lab = LatencyLabel.from_dict(e["label"])
        assert lab.provider == "cpu" and lab.threads == 1 and lab.weights_filled and 0.05 < lab.label_ms < 100
    status = subprocess.run([sys.executable, "-m", "nas_predictor.cli", "dataset", "status", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and json.loads(status.stdout)["counts"] == {"nasbench201": 2}
    bad = subprocess.run([sys.executable, "-m", "nas_predictor.cli", "dataset", "build", "--families", "resnet",
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown family resnet" in bad.stderr


def test_a_measured_dataset_trains_a_latency_predictor_and_its_graphs_are_cached(tmp_path):
    """`data.dataset_dir` feeds the latency experiment: graphs regenerated from (family, seed) through the
    named generator, cached, labels per family, and a trained predictor that scores them."""
    from nas_predictor.config import load_config
    from nas_predictor.data.latency_dataset import dataset_graph_cache_space
    from nas_predictor.latency_experiment import prepare_latency_data, run_latency_experiment

    root = tmp_path / "ds"
    build(root, per_family=10)
    cfg = load_config(CONFIG, [
        f"data.dataset_dir={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.export_workers=1",
        "train.epochs=2", "model.hidden=32", "model.num_blocks=1"])
    assert cfg.data.families == ["mobilenetv3", "nasbench201"]  # null: every family the dataset holds
    records = prepare_latency_data(cfg, progress=False)
    assert len(records.train) + len(records.valid) + len(records.test) == 20 and len(records.test) == 2
    i = records.archs.index("nasbench201/3")
    assert records.latency_ms[i, 0] == pytest.approx(len(_variant_onnx("nasbench201", 3)[1]) / 1000.0)
    assert records.graphs[i].num_nodes > 10
    cache = tmp_path / "cache" / f"{dataset_graph_cache_space(ds.LatencyDataset(root))}-graphs-v1.jsonl.gz"
    assert cache.is_file()
    result = run_latency_experiment(cfg, tmp_path / "run", prepared=records, progress=False)
    metrics = result["test"]["epyc_ort_cpu_1t"]
    assert set(metrics["per_family"]) == {"mobilenetv3", "nasbench201"} and metrics["overall"]["mape"] > 0
    with pytest.raises(ValueError, match="holds no labels"):
        load_config(CONFIG, [f"data.dataset_dir={tmp_path / 'empty'}"])
    with pytest.raises(ValueError, match="need data.dataset_dir"):
        load_config(CONFIG, ["data.dataset_dir=null", "data.families=[vgg16]"])
