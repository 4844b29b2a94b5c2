"""The bad-input suite (issue 26): every kind of bad input we could think of, run through the real command
line (``python -m nas_predictor.cli ...`` in a subprocess) and the Python API, each judged by one rule.

A case passes when it ends in either
- a clear error: exit status 2 (a ``NasPredictorError`` from the API), exactly one line on stderr that
  names the problem (it holds the case's expected fragment), no traceback, no NaN/Infinity on stdout; or
- a correct result: exit status 0 (a return from the API) and the check the case names holds (what was
  checked is recorded), again without a traceback or a NaN/Infinity in the output.

Writes ``benchmarks/results/bad_inputs.json`` (strict JSON: the command, the machine, one row per case and a
summary per category) and exits 1 when any case fails. Inputs are tiny (a 3x3 conv ONNX, 3-evaluation
searches), so the whole suite takes a few minutes on two idle cores; ``--only CATEGORY`` runs one
category. Every judged case is appended to ``<out>.partial.jsonl`` as it finishes; ``--resume`` keeps the
passing ones from there and runs only the rest (after an interrupt, or after a fix).

    python benchmarks/bad_inputs.py [--jobs 2] [--only "search data"] [--resume] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bad_inputs.json"
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# a result printed with a non-finite number: json's tokens and Python's float formatting
NON_FINITE = re.compile(r"\b(NaN|nan|-?Infinity|-?inf)\b")

#: modules each case's code path ends in, for the report of who fixes a failing case
OWNERS = {"onnx": "nas_predictor/onnx", "calibration": "nas_predictor/calibration.py + data/timings.py",
          "latency": "nas_predictor/latency_estimator.py + commands/latency.py", "measure": "nas_predictor/latency"}


@dataclass
class Case:
    category: str
    kind: str  # the bad input, in words
    expect: str  # "error" or "result"
    argv: list[str] | None = None  # CLI arguments after `nas-predictor` (run in the fixture folder)
    api: Callable[["Fixtures"], str] | None = None  # returns what it checked, or raises
    fragment: str = ""  # the error line must contain this (case-insensitive)
    check: Callable[[str, "Fixtures"], str] | None = None  # result: (stdout, fixtures) -> what was checked
    env: dict[str, str] = field(default_factory=dict)
    owner: str = "cli/search"  # code the case ends in (OWNERS values for files another session owns)
    timeout: int = 240


@dataclass
class Outcome:
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float


# -- fixtures: every bad file, written once into a temporary folder ----------------------------------------
class Fixtures:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = ROOT.parent / "shared" / "data"

    def path(self, name: str) -> str:
        return str(self.root / name)

    def build(self) -> None:
        import numpy as np
        import torch

        from nas_predictor.predictor import PRETRAINED_DIR, load_predictor

        r = self.root
        good = PRETRAINED_DIR / "nb201-accuracy.pt"
        raw = good.read_bytes()
        (r / "empty.pt").write_bytes(b"")
        (r / "truncated.pt").write_bytes(raw[: len(raw) // 2])
        (r / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(4096))
        (r / "text.pt").write_text("this is not a checkpoint\n")
        torch.save({"weights": [1, 2, 3]}, r / "untagged.pt")
        torch.save({"format": "nas-predictor/checkpoint", "version": 99, "config": "{}", "members": []},
                   r / "version99.pt")
        torch.save({"format": "nas-predictor/checkpoint", "version": 1, "config": "not json", "members": []},
                   r / "badconfig.pt")
        torch.save(_Unsafe(), r / "unsafe.pt")  # a pickled class: safe loading must refuse it
        for name, value in (("nan", math.nan), ("inf", math.inf)):
            p = load_predictor("nb201-accuracy")
            key = next(k for k, v in p.models[0].state_dict().items() if v.is_floating_point() and v.dim() == 2)
            with torch.no_grad():
                p.models[0].state_dict()[key].view(-1)[0] = value
            p.save(r / f"{name}_weights.pt")
        (r / "dir.pt").mkdir(exist_ok=True)
        self._onnx(r)
        self._data(r)
        self._configs(r)
        self._calibration(r)
        (r / "archs_empty.txt").write_text("\n\n")
        (r / "archs_bad.txt").write_text(NB201_ARCH + "\n|conv~0|\n")
        (r / "archs_binary.txt").write_bytes(b"\xff\xfe\x00\x81")

    def _onnx(self, r: Path) -> None:
        import onnx
        import torch
        from onnx import TensorProto, helper

        from search_spaces.onnx_export import export_onnx

        export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()), (1, 3, 16, 16), r / "tiny.onnx")
        raw = (r / "tiny.onnx").read_bytes()
        (r / "empty.onnx").write_bytes(b"")
        (r / "truncated.onnx").write_bytes(raw[: len(raw) // 2])
        (r / "text.onnx").write_text("ir_version: 8\nthis is not protobuf\n")
        (r / "png.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        shutil.copy(ROOT / "nas_predictor" / "pretrained" / "nb201-accuracy.pt", r / "checkpoint.onnx")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
        node = helper.make_node("FrobnicateV9", ["x"], ["y"], domain="com.example")
        model = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                                  opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
        onnx.save(model, r / "unknown_op.onnx")
        empty = helper.make_model(helper.make_graph([], "g", [x], [x]), opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(empty, r / "no_nodes.onnx")
        relu = helper.make_node("Relu", ["x"], ["y"])
        dyn = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
        dyn_y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])
        onnx.save(helper.make_model(helper.make_graph([relu], "g", [dyn], [dyn_y]),
                                    opset_imports=[helper.make_opsetid("", 17)]), r / "dynamic_hw.onnx")

    def _data(self, r: Path) -> None:
        csv = self.data / "nb201_derived" / "nb201_accuracies.csv"
        lines = csv.read_text().splitlines()
        header = lines[0].split(",")
        col = header.index("c10valid_valid_200ep")

        def write(name: str, rows: list[str]) -> None:
            folder = r / name / "nb201_derived"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "nb201_accuracies.csv").write_text("\n".join(rows) + "\n")

        (r / "data_empty").mkdir(exist_ok=True)
        write("data_header_only", lines[:1])
        cells = lines[5].split(",")
        cells[col] = "nan"
        write("data_nan_label", lines[:5] + [",".join(cells)] + lines[6:])
        cells = lines[5].split(",")
        cells[col] = "ninety"
        write("data_text_label", lines[:5] + [",".join(cells)] + lines[6:])
        write("data_missing_column", [",".join(c for i, c in enumerate(line.split(",")) if i != col)
                                      for line in lines])
        write("data_truncated", lines[:7000])
        write("data_no_arch_column", ["index,foo"] + [f"{i},1" for i in range(3)])
        (r / "data_file").write_text("a file, not a folder\n")
        import torch

        torch.save(_Unsafe(), r / "table_unsafe.pth")
        (r / "table_empty.pth").write_bytes(b"")
        (r / "table_garbage.pth").write_bytes(os.urandom(1000))
        torch.save({"not": "a table"}, r / "table_wrong.pth")

    def _configs(self, r: Path) -> None:
        files = {
            "cfg_syntax.yaml": "train:\n  epochs: [1\n",
            "cfg_list.yaml": "- a\n- b\n",
            "cfg_scalar.yaml": "42\n",
            "cfg_unknown_key.yaml": "trian:\n  epochs: 1\n",
            "cfg_unknown_nested.yaml": "train:\n  epocs: 1\n",
            "cfg_type.yaml": "train:\n  epochs: ten\n",
            "cfg_negative.yaml": "train:\n  epochs: -3\n",
            "cfg_zero_batch.yaml": "train:\n  batch_size: 0\n",
            "cfg_lr_nan.yaml": "train:\n  lr: .nan\n",
            "cfg_lr_inf.yaml": "train:\n  lr: .inf\n",
            "cfg_lr_negative.yaml": "train:\n  lr: -0.001\n",
            "cfg_benchmark.yaml": "data:\n  benchmark: nb301\n",
            "cfg_split.yaml": "data:\n  split: sideways\n",
            "cfg_device.yaml": "train:\n  device: gpu\n",
            "cfg_section_scalar.yaml": "train: 5\n",
            "cfg_tab.yaml": "train:\n\tepochs: 1\n",
            "cfg_seed.yaml": "train:\n  seed: -1\n",
            "cfg_label_scale.yaml": "data:\n  label_scale: 0\n",
            "search_bad.yaml": "budget: many\n",
            "search_unknown.yaml": "strategy: predictor\nstrategy_paramz: {}\n",
        }
        for name, text in files.items():
            (r / name).write_text(text)
        (r / "cfg_binary.yaml").write_bytes(b"\xff\xfe\x00bad")

    def _calibration(self, r: Path) -> None:
        (r / "cal_empty.csv").write_text("")
        (r / "cal_nan.csv").write_text("tiny.onnx,nan\n")
        (r / "cal_negative.csv").write_text("tiny.onnx,-2.5\n")
        (r / "cal_zero.csv").write_text("tiny.onnx,0\n")
        (r / "cal_text.csv").write_text("tiny.onnx,fast\n")
        (r / "cal_missing_model.csv").write_text("no_such_model.onnx,1.5\n")
        (r / "cal_bad.json").write_text("{\"results\": [\n")
        (r / "cal_inf.json").write_text(json.dumps({"results": [{"model": "tiny.onnx", "label_ms": 1e999}]})
                                        .replace("1e+999", "Infinity"))


class _Unsafe:
    """A class instance in a .pt file: unpickling it would run code, so it must be refused."""


# -- result checks ----------------------------------------------------------------------------------------
def finite_json(stdout: str, _: Fixtures) -> str:
    json.loads(stdout)  # strict parse: NaN would be rejected by the check below
    if NON_FINITE.search(stdout):
        raise AssertionError("non-finite number in the JSON")
    return "stdout is strict JSON with finite numbers only"


def search_summary(budget: int, finished: Callable[[dict], str] | None = None):
    def check(stdout: str, fx: Fixtures) -> str:
        summary = json.loads(stdout)
        if summary["evaluations"] != budget:
            raise AssertionError(f"{summary['evaluations']} evaluations, expected {budget}")
        if summary["best"] is None or not math.isfinite(summary["best"]["value"]):
            raise AssertionError("no finite best value")
        extra = finished(summary) if finished else ""
        return f"all {budget} evaluations made, finite best value {summary['best']['value']:.3f}{extra}"
    return check


# -- the Python API cases ---------------------------------------------------------------------------------
def _raises(fn: Callable[[], Any]) -> str:
    """Run ``fn``; it must raise; the exception is re-raised for the judge."""
    fn()
    raise AssertionError("no error was raised")


def _arch(space: str, arch: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.spaces import get_space

        sp = get_space(space)
        return _raises(lambda: sp.to_graph(sp.canonical(arch)))
    return run


def _graph(**kwargs: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.graph import ArchGraph

        return _raises(lambda: ArchGraph(**kwargs))
    return run


def _onnx_api(name: str) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.onnx import onnx_to_graph

        return _raises(lambda: onnx_to_graph(fx.path(name)))
    return run


def _search(values: Callable[[str], Any], budget: int = 14, expect_failed: int | None = None,
            strategy: str = "predictor") -> Callable[[Fixtures], str]:
    """A predictor-in-the-loop search on NB201 with a user oracle and a small, fast online surrogate."""
    def run(fx: Fixtures) -> str:
        from nas_predictor.spaces import get_space
        from strategies.oracle import FunctionOracle
        from strategies.runner import make_strategy, run_search
        from strategies.surrogates import OnlineSurrogate

        out = fx.root / f"api_search_{abs(hash(values)) % 10**8}"
        shutil.rmtree(out, ignore_errors=True)
        # a small candidate pool (not the whole 15,625-cell space) keeps each round well under a second
        params = {"num_init": 6, "exhaustive_below": 0, "num_random": 40, "num_mutants": 10,
                  "num_parents": 3} if strategy == "predictor" else {}
        surrogate = OnlineSurrogate("nasbench201", refit_every=3, min_points=4, steps=20)
        summary = run_search(get_space("nasbench201"), make_strategy(strategy, **params), FunctionOracle(values),
                             budget, out_dir=out, surrogate=surrogate, progress=False, plots=False)
        text = (out / "summary.json").read_text() + (out / "history.jsonl").read_text()
        if NON_FINITE.search(text):
            raise AssertionError("non-finite number in summary.json or history.jsonl")
        if summary["evaluations"] != budget:
            raise AssertionError(f"{summary['evaluations']} evaluations of {budget}")
        failed = summary["failed"]
        if expect_failed is not None and failed != expect_failed:
            raise AssertionError(f"{failed} failed evaluations, expected {expect_failed}")
        # a resume replays everything (the refit must not crash there either)
        again = run_search(get_space("nasbench201"), make_strategy(strategy, **params), FunctionOracle(values),
                           budget, out_dir=out, surrogate=OnlineSurrogate("nasbench201", refit_every=3,
                                                                         min_points=4, steps=20),
                           progress=False, plots=False)
        if again["replayed_from_history"] != budget:
            raise AssertionError("the resume did not replay the history")
        best = summary["best"]["value"] if summary["best"] else None
        return (f"{budget} evaluations ({failed} failed, recorded with their error), surrogate refits "
                f"{summary['surrogate_fits']}, best {best}, resume replayed all; strict JSON outputs")
    return run


def _oracle_error(value: Any, budget: int = 12) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.spaces import get_space
        from strategies.oracle import FunctionOracle
        from strategies.runner import make_strategy, run_search

        out = fx.root / f"api_oracle_{abs(hash(repr(value))) % 10**8}"
        shutil.rmtree(out, ignore_errors=True)
        calls = []

        def oracle(arch: str) -> Any:
            calls.append(arch)
            return value if len(calls) == 5 else 80.0 + len(calls) * 0.1

        try:
            run_search(get_space("nasbench201"), make_strategy("random"), FunctionOracle(oracle), budget,
                       out_dir=out, progress=False, plots=False)
        except Exception:
            kept = len((out / "history.jsonl").read_text().splitlines()) - 1
            if kept != 4:
                raise AssertionError(f"{kept} evaluations kept in the history, expected the 4 before it") from None
            raise
        raise AssertionError("the search accepted the value")
    return run


def _predict_api(name: str) -> Callable[[Fixtures], str]:
    def run(fx: Fixtures) -> str:
        from nas_predictor.predictor import load_predictor

        return _raises(lambda: load_predictor(fx.path(name)).predict([NB201_ARCH]))
    return run


def _nan_in_memory_prediction(_: Fixtures) -> str:
    """A model that went NaN in memory (no file check can see it): predict must refuse to return numbers."""
    import torch

    from nas_predictor.predictor import load_predictor

    p = load_predictor("nb201-accuracy")
    with torch.no_grad():
        next(t for t in p.models[0].parameters() if t.dim() == 2).view(-1)[0] = math.nan
    return _raises(lambda: p.predict([NB201_ARCH]))


def _huge_graph_latency(_: Fixtures) -> str:
    """A graph with absurd global costs (1e30 FLOPs): a finite latency or an error, never NaN."""
    import numpy as np

    from nas_predictor.graph import ArchGraph
    from nas_predictor.predictor import load_predictor

    p = load_predictor("latency-help-b1")
    g = ArchGraph(ops=("Conv",), edges=(), scalars={"flops": 1e30, "params": 1e30, "memory": 1e30})
    out = p.predict_latency([g])
    if not np.isfinite(out).all():
        raise AssertionError(f"non-finite prediction returned: {out}")
    return f"finite prediction {float(out[0]):.4g} ms returned"


def _config_api(tree: dict) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from nas_predictor.config import validate_config

        return _raises(lambda: validate_config(tree, "api"))
    return run


def _strategy_api(name: str, **params: Any) -> Callable[[Fixtures], str]:
    def run(_: Fixtures) -> str:
        from strategies.runner import make_strategy

        return _raises(lambda: make_strategy(name, **params))
    return run


def _lock_api(fx: Fixtures) -> str:
    """A second run_search on a folder another process holds fails before any evaluation."""
    import filelock

    from nas_predictor.spaces import get_space
    from strategies.oracle import FunctionOracle
    from strategies.runner import LOCK_NAME, make_strategy, run_search

    out = fx.root / "api_locked"
    out.mkdir(exist_ok=True)
    calls = []
    with filelock.FileLock(str(out / LOCK_NAME)):  # as another process would hold it
        try:
            run_search(get_space("nasbench201"), make_strategy("random"),
                       FunctionOracle(lambda a: calls.append(a) or 1.0), 3, out_dir=out, progress=False)
        finally:
            if calls:
                raise AssertionError(f"{len(calls)} evaluations made despite the lock")
    raise AssertionError("no error")


# -- the cases --------------------------------------------------------------------------------------------
def cases() -> list[Case]:  # noqa: C901 - one flat list is the clearest form of a catalogue
    c: list[Case] = []
    E, R = "error", "result"

    def cli(category: str, kind: str, argv: list[str], fragment: str = "", expect: str = E, **kw: Any) -> None:
        c.append(Case(category, kind, expect, argv=argv, fragment=fragment, **kw))

    def api(category: str, kind: str, fn: Callable, fragment: str = "", expect: str = E, **kw: Any) -> None:
        c.append(Case(category, kind, expect, api=fn, fragment=fragment, **kw))

    # architecture strings: the CLI on NB201, the API on every space
    pr = ["predict", "nb201-accuracy", "--arch"]
    for kind, arch, frag in [
        ("NB201: empty string", "", "NAS-Bench-201"),
        ("NB201: unknown op", "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "unknown op 'conv' on edge 0"),
        ("NB201: too few nodes", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "NAS-Bench-201"),
        ("NB201: extra node", NB201_ARCH + "+|none~0|none~1|none~2|none~3|", "NAS-Bench-201"),
        ("NB201: input index not a number", NB201_ARCH.replace("~0|+", "~x|+", 1), "NAS-Bench-201"),
        ("NB201: input index out of range", NB201_ARCH.replace("skip_connect~2", "skip_connect~3"), "NAS-Bench-201"),
        ("NB201: no separators", "nor_conv_3x3", "NAS-Bench-201"),
        ("NB201: only separators", "|+|+|", "NAS-Bench-201"),
        ("NB201: non-ASCII junk", "|ñøπ~0|+|☃~0|", "NAS-Bench-201"),
        ("NB201: 10k characters", "|" + "none~0|" * 1500, "NAS-Bench-201"),
        ("NB201: whitespace inside", NB201_ARCH.replace("|+|", "| + |", 1), "NAS-Bench-201"),
    ]:
        cli("arch strings", kind, pr + [arch], frag)
    for space, kind, arch in [
        ("nasbench201", "NB201 API: wrong edge count", "|none~0|+|none~0|"),
        ("nasbench201", "NB201 API: not a string", 12345),
        ("nasbench101", "NB101: empty", ""),
        ("nasbench101", "NB101: no op list", "010.001.000"),
        ("nasbench101", "NB101: matrix not square", "0101.001.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: unknown op", "010.001.000|input,conv7x7,output"),
        ("nasbench101", "NB101: no input-output path", "000.000.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: cycle (lower triangle)", "010.101.000|input,conv3x3-bn-relu,output"),
        ("nasbench101", "NB101: too many nodes", "0" * 8 + "|" + ",".join(["input"] + ["conv3x3-bn-relu"] * 6 + ["output"])),
        ("fbnet", "FBNet: empty", ""),
        ("fbnet", "FBNet: unknown block", "k9_e9-" * 21 + "k3_e1"),
        ("fbnet", "FBNet: too few blocks", "k3_e1-k3_e1"),
        ("fbnet", "FBNet: too many blocks", "-".join(["k3_e1"] * 30)),
        ("ofa_mbv3", "OFA: empty", ""),
        ("ofa_mbv3", "OFA: kernel size 9", "ks=9" + ",3" * 19 + ";e=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: depth 7", "ks=" + ",".join(["3"] * 20) + ";e=" + ",".join(["3"] * 20) + ";d=7,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: resolution 3", "ks=" + ",".join(["3"] * 20) + ";e=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=3"),
        ("ofa_mbv3", "OFA: missing key", "ks=" + ",".join(["3"] * 20) + ";d=2,2,2,2,2;r=224"),
        ("ofa_mbv3", "OFA: non-numeric", "ks=a,b;e=c;d=d;r=r"),
    ]:
        api("arch strings", kind, _arch(space, arch), "")

    # checkpoints
    for kind, name, frag in [
        ("checkpoint: missing file", "no_such.pt", "neither a checkpoint file nor a pretrained name"),
        ("checkpoint: empty .pt", "empty.pt", "the file is empty"),
        ("checkpoint: truncated .pt", "truncated.pt", "truncated, corrupt"),
        ("checkpoint: random bytes", "garbage.pt", "truncated, corrupt"),
        ("checkpoint: a text file", "text.pt", "truncated, corrupt"),
        ("checkpoint: untagged torch file", "untagged.pt", "not a nas-predictor checkpoint"),
        ("checkpoint: unknown version", "version99.pt", "unsupported checkpoint version"),
        ("checkpoint: embedded config not JSON", "badconfig.pt", "bad embedded config"),
        ("checkpoint: pickled Python object (unsafe)", "unsafe.pt", "truncated, corrupt, or not a nas-predictor"),
        ("checkpoint: NaN weights", "nan_weights.pt", "NaN or infinite value"),
        ("checkpoint: infinite weights", "inf_weights.pt", "NaN or infinite value"),
        ("checkpoint: a folder", "dir.pt", "is a folder, not a checkpoint file"),
        ("checkpoint: an ONNX-named checkpoint file", "tiny.onnx", "cannot read checkpoint"),
    ]:
        cli("checkpoints", kind, ["predict", name, "--arch", NB201_ARCH], frag)
    cli("checkpoints", "evaluate with a NaN-weight checkpoint", ["evaluate", "nan_weights.pt", "--json"],
        "NaN or infinite value")
    cli("checkpoints", "latency with an accuracy predictor", ["latency", "tiny.onnx", "--predictor", "nb201-accuracy"],
        "not a latency predictor", owner=OWNERS["latency"])
    cli("checkpoints", "unknown pretrained name", ["predict", "nb999-accuracy", "--arch", NB201_ARCH],
        "neither a checkpoint file nor a pretrained name")
    api("checkpoints", "API: NaN weights refused at load", _predict_api("nan_weights.pt"), "NaN or infinite value")
    api("checkpoints", "API: empty .pt", _predict_api("empty.pt"), "the file is empty")
    cli("predictions", "predict: valid arch gives finite JSON", ["predict", "nb201-accuracy", "--arch", NB201_ARCH,
                                                                "--json"], expect=R, check=finite_json)
    api("predictions", "API: model gone NaN in memory", _nan_in_memory_prediction, "not finite")
    api("predictions", "API: latency of a graph with 1e30 FLOPs", _huge_graph_latency, expect=R)

    # predict inputs
    cli("predict inputs", "--archs-file missing", ["predict", "nb201-accuracy", "--archs-file", "nope.txt"],
        "--archs-file 'nope.txt': cannot read it")
    cli("predict inputs", "--archs-file empty", ["predict", "nb201-accuracy", "--archs-file", "archs_empty.txt"],
        "holds no architecture")
    cli("predict inputs", "--archs-file with one bad line", ["predict", "nb201-accuracy", "--archs-file",
                                                              "archs_bad.txt"], "NAS-Bench-201")
    cli("predict inputs", "--archs-file binary", ["predict", "nb201-accuracy", "--archs-file", "archs_binary.txt"],
        "cannot read it")
    cli("predict inputs", "--archs-file is a folder", ["predict", "nb201-accuracy", "--archs-file", "dir.pt"],
        "cannot read it")
    cli("predict inputs", "no --arch at all", ["predict", "nb201-accuracy"], "give at least one --arch")
    cli("predict inputs", "--device cuda without a GPU", ["predict", "nb201-accuracy", "--arch", NB201_ARCH,
                                                          "--device", "cuda"], "torch sees no CUDA GPU")
    cli("predict inputs", "--device tpu", ["predict", "nb201-accuracy", "--arch", NB201_ARCH, "--device", "tpu"],
        "invalid choice")
    cli("predict inputs", "unknown command", ["frobnicate"], "invalid choice")
    cli("predict inputs", "unknown flag", ["predict", "nb201-accuracy", "--arch", NB201_ARCH, "--fast"],
        "unrecognized arguments")

    # ONNX files (the reader: nas_predictor/onnx; the command: latency)
    for kind, name, frag in [
        ("ONNX: missing file", "no_such.onnx", "no_such.onnx"),
        ("ONNX: empty file", "empty.onnx", "empty.onnx"),
        ("ONNX: truncated", "truncated.onnx", "truncated.onnx"),
        ("ONNX: text file", "text.onnx", "text.onnx"),
        ("ONNX: PNG bytes", "png.onnx", "png.onnx"),
        ("ONNX: a torch checkpoint", "checkpoint.onnx", "checkpoint.onnx"),
        ("ONNX: unknown op type", "unknown_op.onnx", "FrobnicateV9"),
        ("ONNX: graph without nodes", "no_nodes.onnx", "no_nodes.onnx"),
        ("ONNX: a folder", "dir.pt", "dir.pt"),
    ]:
        # without --json: there the errors are entries of the JSON's "errors", here one stderr line each
        cli("onnx files", kind, ["latency", name, "--predictor", "latency-help-b1"], frag, owner=OWNERS["latency"])
    for kind, name, frag in [
        ("ONNX API: empty file", "empty.onnx", "empty.onnx"),
        ("ONNX API: truncated", "truncated.onnx", "truncated.onnx"),
        ("ONNX API: PNG bytes", "png.onnx", "png.onnx"),
        ("ONNX API: unknown op type", "unknown_op.onnx", "FrobnicateV9"),
        ("ONNX API: graph without nodes", "no_nodes.onnx", ""),
    ]:
        api("onnx files", kind, _onnx_api(name), frag, owner=OWNERS["onnx"])
    cli("onnx files", "ONNX: dynamic H and W", ["latency", "dynamic_hw.onnx", "--predictor", "latency-help-b1"],
        "dynamic_hw.onnx", owner=OWNERS["latency"])
    cli("onnx files", "latency: valid tiny ONNX gives finite JSON",
        ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--json"], expect=R, check=finite_json,
        owner=OWNERS["latency"])
    for kind, name, frag in [
        ("measure: missing file", "no_such.onnx", "no_such.onnx"),
        ("measure: empty file", "empty.onnx", "empty.onnx"),
        ("measure: truncated", "truncated.onnx", "truncated.onnx"),
        ("measure: unknown op type", "unknown_op.onnx", "unknown_op.onnx"),
    ]:
        cli("onnx files", kind, ["measure", name], frag, owner=OWNERS["measure"])

    # graphs through the API
    for kind, kwargs, frag in [
        ("graph: no nodes", {"ops": (), "edges": ()}, "empty graph"),
        ("graph: dangling edge", {"ops": ("a", "b"), "edges": ((0, 5),)}, "missing node"),
        ("graph: self loop", {"ops": ("a",), "edges": ((0, 0),)}, "self loop"),
        ("graph: empty op name", {"ops": ("",), "edges": ()}, "non-empty string"),
        ("graph: NaN FLOPs", {"ops": ("a",), "edges": (), "scalars": {"flops": math.nan}}, ""),
        ("graph: shapes of the wrong length", {"ops": ("a", "b"), "edges": (), "shapes": ((1,),)}, "shapes has 1"),
    ]:
        api("graphs", kind, _graph(**kwargs), frag, owner="nas_predictor/graph.py")

    # training configs
    for kind, name, frag in [
        ("config: missing file", "no_such.yaml", "not found"),
        ("config: YAML syntax error", "cfg_syntax.yaml", "not valid YAML"),
        ("config: top level is a list", "cfg_list.yaml", "top level must be a mapping"),
        ("config: top level is a number", "cfg_scalar.yaml", "top level must be a mapping"),
        ("config: unknown top-level key", "cfg_unknown_key.yaml", "unknown config key 'trian'"),
        ("config: unknown nested key", "cfg_unknown_nested.yaml", "unknown config key 'train.epocs'"),
        ("config: wrong type", "cfg_type.yaml", "'train.epochs'"),
        ("config: negative epochs", "cfg_negative.yaml", "'train.epochs'"),
        ("config: zero batch size", "cfg_zero_batch.yaml", "'train.batch_size'"),
        ("config: lr NaN", "cfg_lr_nan.yaml", "'train.lr'"),
        ("config: lr infinite", "cfg_lr_inf.yaml", "'train.lr'"),
        ("config: lr negative", "cfg_lr_negative.yaml", "'train.lr'"),
        ("config: unknown benchmark", "cfg_benchmark.yaml", "'data.benchmark'"),
        ("config: unknown split", "cfg_split.yaml", "'data.split'"),
        ("config: unknown device", "cfg_device.yaml", "'train.device'"),
        ("config: section given a number", "cfg_section_scalar.yaml", "'train'"),
        ("config: tab indentation", "cfg_tab.yaml", "not valid YAML"),
        ("config: negative seed", "cfg_seed.yaml", "'train.seed'"),
        ("config: zero label scale", "cfg_label_scale.yaml", "'data.label_scale'"),
        ("config: binary file", "cfg_binary.yaml", "cfg_binary.yaml"),
        ("config: a folder", "dir.pt", "dir.pt"),
    ]:
        cli("configs", kind, ["train", name, "--out", f"out_cfg_{len(c)}", "--quiet"], frag)
    for kind, sets, frag in [
        ("--set without '='", ["train.epochs"], "--set expects key=value"),
        ("--set unclosed list", ["key=[1"], "not valid YAML"),
        ("--set empty key part", ["train..epochs=3"], "dotted names"),
        ("--set into a scalar", ["name.sub=3"], "is not a section"),
        ("--set unknown key", ["train.epocs=3"], "unknown config key 'train.epocs'"),
        ("--set epochs=abc", ["train.epochs=abc"], "'train.epochs'"),
        ("--set lr=.nan", ["train.lr=.nan"], "'train.lr'"),
        ("--set ensemble=0", ["train.ensemble=0"], "'train.ensemble'"),
        ("--set model.hidden=-64", ["model.hidden=-64"], "model.hidden"),
    ]:
        cli("configs", kind, ["train", "ok.yaml", "--quiet", "--out", "out_set", *sum((["--set", s] for s in sets), [])],
            frag)
    api("configs", "API: config tree with a list section", _config_api({"train": [1, 2]}), "'train'")
    api("configs", "API: config tree with a NaN warmup", _config_api({"train": {"warmup_fraction": math.nan}}),
        "warmup_fraction")
    cli("configs", "train: --data-dir missing", ["train", "ok.yaml", "--quiet", "--out", "out_dd", "--data-dir",
                                                "no_such_dir"], "not a directory")
    cli("configs", "train: NaN label in the data", ["train", "ok.yaml", "--quiet", "--out", "out_nan", "--data-dir",
                                                   "data_nan_label"], "non-finite")

    # numeric flags of every command
    def flag(cmd: list[str], name: str, value: str, frag: str) -> None:
        # "-inf" is not a number to argparse's eye: it would read it as an option; name=value is unambiguous
        cli("numeric flags", f"{cmd[0]} {name} {value}", [*cmd, f"{name}={value}"], frag)

    for value, frag in (("0", "must be at least 1"), ("-5", "must be at least 1"), ("abc", "expected an integer"),
                        ("nan", "expected an integer"), ("1e9999", "expected an integer")):
        flag(["evaluate", "nb201-accuracy"], "--batch-size", value, frag)
    for name, value, frag in [("--hidden", "0", "at least 1"), ("--blocks", "-1", "at least 1"),
                              ("--epochs", "0", "at least 1"), ("--batch-size", "1", "at least 2"),
                              ("--lr", "0", "above 0"), ("--lr", "nan", "finite"), ("--lr", "inf", "finite"),
                              ("--lambda-sr", "-1", "at least 0"), ("--seed", "-1", "at least 0"),
                              ("--max-archs", "-5", "at least 0"), ("--hidden", "abc", "expected an integer")]:
        flag(["distill", "nb201-accuracy", "--out", "out_distill"], name, value, frag)
    for value, frag in (("0", "batch"), ("-1", "batch"), ("abc", "integer"), ("nan", "integer")):
        cli("numeric flags", f"latency --batch {value}",
            ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--batch", value], frag, owner=OWNERS["latency"])
    for value, frag in (("0", "max"), ("-1", "max"), ("nan", "max"), ("inf", "max"), ("abc", "max")):
        cli("numeric flags", f"latency --max-ms {value}",
            ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--max-ms", value], frag,
            owner=OWNERS["latency"])
    for name, value, frag in [("--batch", "0", "at least 1"), ("--batch", "abc", "expected an integer"),
                              ("--core", "-2", "at least -1"), ("--core", "abc", "expected an integer"),
                              ("--core", "9999", "9999")]:
        cli("numeric flags", f"measure {name} {value}", ["measure", "tiny.onnx", name, value], frag,
            owner=OWNERS["measure"] if name == "--core" and value == "9999" else "cli/search")
    se = ["search", "--out", "out_flags", "--quiet"]
    for name, value, frag in [("--budget", "0", "at least 1"), ("--budget", "-1", "at least 1"),
                              ("--budget", "abc", "expected an integer"), ("--budget", "2.5", "expected an integer"),
                              ("--max-latency-ms", "0", "above 0"), ("--max-latency-ms", "-1", "above 0"),
                              ("--max-latency-ms", "nan", "finite"), ("--max-latency-ms", "inf", "finite"),
                              ("--seed", "-1", "at least 0"), ("--seed", "abc", "expected an integer"),
                              ("--target", "nan", "finite"), ("--target", "inf", "finite"),
                              ("--target", "-inf", "finite"), ("--target", "abc", "expected a number"),
                              ("--top", "0", "at least 1")]:
        flag(se, name, value, frag)

    # search: the data the user named
    sd = ["search", "--budget", "3", "--quiet", "--json", "--strategy", "random"]
    for kind, extra, env, frag in [
        ("--data-dir missing", ["--data-dir", "no_such_dir"], {}, "--data-dir 'no_such_dir' is not a directory"),
        ("--data-dir is a file", ["--data-dir", "data_file"], {}, "is not a directory"),
        ("--data-dir empty folder", ["--data-dir", "data_empty"], {}, "NAS-Bench-201 table not found"),
        ("--data-dir CSV header only", ["--data-dir", "data_header_only"], {}, "expected 15625 rows"),
        ("--data-dir CSV truncated", ["--data-dir", "data_truncated"], {}, "expected 15625 rows"),
        ("--data-dir CSV NaN label", ["--data-dir", "data_nan_label"], {}, "non-finite value"),
        ("--data-dir CSV text label", ["--data-dir", "data_text_label"], {}, "'ninety' is not a number"),
        ("--data-dir CSV missing column", ["--data-dir", "data_missing_column"], {}, "no column 'c10valid_valid_200ep'"),
        ("--data-dir CSV without arch column", ["--data-dir", "data_no_arch_column"], {}, "'arch_str' column"),
        ("$NAS_PREDICTOR_DATA missing", [], {"NAS_PREDICTOR_DATA": "no_such_env_dir"}, "$NAS_PREDICTOR_DATA"),
        ("$NAS_PREDICTOR_DATA NaN label", [], {"NAS_PREDICTOR_DATA": "data_nan_label"}, "$NAS_PREDICTOR_DATA"),
        ("--table-file missing", ["--table-file", "no_such.pth"], {}, "no_such.pth"),
        ("--table-file empty", ["--table-file", "table_empty.pth"], {}, "table_empty.pth"),
        ("--table-file random bytes", ["--table-file", "table_garbage.pth"], {}, "table_garbage.pth"),
        ("--table-file unsafe pickle", ["--table-file", "table_unsafe.pth"], {}, "refusing to load"),
        ("--table-file wrong content", ["--table-file", "table_wrong.pth"], {}, "table_wrong.pth"),
        ("latency bound with a --data-dir lacking HELP's tables",
         ["--data-dir", "data_nan_label", "--oracle", "predictor", "--max-latency-ms", "5", "--setting",
          "titan_rtx_1"], {}, "latency data you named"),
    ]:
        cli("search data", kind, sd + ["--out", f"out_sd_{len(c)}", *extra], frag, env=env)
    cli("search data", "--oracle table on NB201 with --data-dir given: real values used",
        sd + ["--out", "out_sd_ok", "--data-dir", "{data}", "--oracle", "table"], expect=R,
        check=search_summary(3, lambda s: "; the table oracle ran (" + s["oracle"][:40] + "...)"
                             if "table" in s["oracle"] else (_ for _ in ()).throw(AssertionError(s["oracle"]))))

    # search configuration
    for kind, sets, frag in [
        ("top_k=abc", ["strategy_params.top_k=abc"], "strategy_params.top_k of predictor must be an integer"),
        ("top_k=-2", ["strategy_params.top_k=-2"], "strategy_params.top_k of predictor must be at least 1"),
        ("top_k=0", ["strategy_params.top_k=0"], "must be at least 1"),
        ("top_k=1.5", ["strategy_params.top_k=1.5"], "must be an integer"),
        ("num_init=-1", ["strategy_params.num_init=-1"], "num_init"),
        ("skip_equivalent=maybe", ["strategy_params.skip_equivalent=maybe"], "true or false"),
        ("unknown strategy param", ["strategy_params.topk=3"], "topk"),
        ("acquisition=best", ["strategy_params.acquisition=best"], "acquisition"),
        ("surrogate_params.steps=0", ["surrogate_params.steps=0"], "surrogate_params.steps"),
        ("surrogate_params.ensemble=abc", ["surrogate_params.ensemble=abc"], "surrogate_params.ensemble"),
        ("--set budget=.nan", ["budget=.nan"], "'budget'"),
        ("--set target=.inf", ["target=.inf"], "'target'"),
        ("--set seed=-1", ["seed=-1"], "'seed'"),
        ("--set key=[1", ["key=[1"], "not valid YAML"),
        ("--set unknown key", ["bugdet=3"], "unknown config key 'bugdet'"),
        ("--set strategy_params=3", ["strategy_params=3"], "strategy_params"),
    ]:
        cli("search config", kind, ["search", "--out", f"out_sc_{len(c)}", "--quiet", *sum((["--set", s] for s in sets), [])],
            frag)
    for kind, argv, frag in [
        ("evolution population=0", ["--strategy", "evolution", "--set", "strategy_params.population=0"], "population"),
        ("evolution sample_size > population", ["--strategy", "evolution", "--set", "strategy_params.sample_size=50"],
         "sample_size"),
        ("tpe num_candidates=abc", ["--strategy", "tpe", "--set", "strategy_params.num_candidates=abc"], "num_candidates"),
        ("--guided with random", ["--strategy", "random", "--guided"], "guided"),
        ("bound without a device", ["--max-latency-ms", "5"], "latency_setting"),
        ("unknown latency device", ["--max-latency-ms", "5", "--setting", "abacus_1", "--oracle", "predictor"],
         "abacus_1"),
        ("search config file with a bad value", ["search_bad.yaml"], "'budget'"),
        ("search config file with an unknown key", ["search_unknown.yaml"], "strategy_paramz"),
        ("search config file missing", ["no_such_search.yaml"], "not found"),
        ("--space nb999", ["--space", "nb999"], "invalid choice"),
        ("--out is a file", ["--out", "data_file"], "is a file"),
        ("FBNet search from the CLI (no oracle)", ["--space", "fbnet"], "no shipped accuracy predictor"),
        ("NB101 search without a table", ["--space", "nb101"], "nasbench_only108.tfrecord"),
    ]:
        argv = ["search", "--out", f"out_sx_{len(c)}", "--quiet", *argv] if "--out" not in argv else \
            ["search", "--quiet", *argv]
        cli("search config", kind, argv, frag)
    cli("search config", "main job: search --budget 30 --quiet (predictions)",
        ["search", "--budget", "30", "--quiet", "--json", "--out", "out_main"], expect=R, check=search_summary(30))

    # oracles (Python API)
    api("oracles", "oracle returns 0 for every architecture", _search(lambda a: 0.0, expect_failed=0), expect=R)
    api("oracles", "oracle returns negative values (negated losses)",
        _search(lambda a: -1.0 - (sum(map(ord, a)) % 97) / 97, expect_failed=0), expect=R)
    api("oracles", "oracle returns values around zero", _search(lambda a: (sum(map(ord, a)) % 97) / 97 - 0.5,
                                                                expect_failed=0), expect=R)
    api("oracles", "oracle returns huge values", _search(lambda a: 1e12 * (1 + (sum(map(ord, a)) % 97)),
                                                         expect_failed=0), expect=R)
    api("oracles", "oracle raises on some architectures",
        _search(lambda a: 1 / 0 if "none~0|+" in a else 50.0 + (sum(map(ord, a)) % 97) / 10), expect=R)
    api("oracles", "oracle returns NaN", _oracle_error(math.nan), "returned the value nan for")
    api("oracles", "oracle returns +inf", _oracle_error(math.inf), "returned the value inf for")
    api("oracles", "oracle returns -inf", _oracle_error(-math.inf), "returned the value -inf for")
    api("oracles", "oracle returns a string", _oracle_error("good"), "not a number")
    api("oracles", "oracle returns None", _oracle_error(None), "not a number")
    api("oracles", "oracle report holds NaN", _oracle_error((90.0, {"test_accuracy": math.nan})),
        "reported test_accuracy=nan")
    api("oracles", "oracle report holds a string", _oracle_error((90.0, {"note": "fine"})), "reported note='fine'")
    api("oracles", "strategy param top_k=-2 (API)", _strategy_api("predictor", top_k=-2), "top_k")
    api("oracles", "strategy param population='many' (API)", _strategy_api("evolution", population="many"),
        "population")

    # calibration files for latency --calibrate (nas_predictor/calibration.py, data/timings.py)
    for kind, name, frag in [
        ("calibration: missing file", "no_such.csv", "no_such.csv"),
        ("calibration: empty file", "cal_empty.csv", "cal_empty.csv"),
        ("calibration: NaN ms", "cal_nan.csv", "cal_nan.csv"),
        ("calibration: negative ms", "cal_negative.csv", "cal_negative.csv"),
        ("calibration: zero ms", "cal_zero.csv", "cal_zero.csv"),
        ("calibration: text ms", "cal_text.csv", "cal_text.csv"),
        ("calibration: missing model", "cal_missing_model.csv", "no_such_model.onnx"),
        ("calibration: truncated JSON", "cal_bad.json", "cal_bad.json"),
        ("calibration: Infinity in JSON", "cal_inf.json", "cal_inf.json"),
    ]:
        cli("calibration", kind, ["latency", "tiny.onnx", "--predictor", "latency-help-b1", "--calibrate", name],
            frag, owner=OWNERS["calibration"])
    cli("calibration", "search --latency-calibrate with NaN ms",
        ["search", "--out", "out_cal", "--quiet", "--oracle", "predictor", "--max-latency-ms", "5",
         "--setting", "titan_rtx_1", "--latency-calibrate", "cal_nan.csv"], "cal_nan.csv",
        owner=OWNERS["calibration"])

    # two processes on one output folder, API and CLI
    api("concurrency", "run_search on a folder another process holds", _lock_api, "in use by another process")
    c.append(Case("concurrency", "two search processes on one --out", "error", argv=["<concurrent>"],
                  fragment="in use by another process"))
    return c


# -- running and judging ----------------------------------------------------------------------------------
def run_cli(case: Case, fx: Fixtures) -> Outcome:
    argv = [a.replace("{data}", str(fx.data)) for a in case.argv]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **case.env}
    t0 = time.perf_counter()
    if argv == ["<concurrent>"]:
        return _concurrent(fx, env)
    try:
        done = subprocess.run([sys.executable, "-m", "nas_predictor.cli", *argv], cwd=fx.root, env=env,
                              capture_output=True, text=True, timeout=case.timeout)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, exc.stdout or "", (exc.stderr or "") + "\n(timed out)", time.perf_counter() - t0)
    return Outcome(done.returncode, done.stdout, done.stderr, time.perf_counter() - t0)


def _concurrent(fx: Fixtures, env: dict) -> Outcome:
    """Start a search, start a second on the same --out while the first holds it, then resume after."""
    out = fx.root / "out_concurrent"
    shutil.rmtree(out, ignore_errors=True)
    base = [sys.executable, "-m", "nas_predictor.cli", "search", "--budget", "60", "--quiet", "--strategy", "random",
            "--oracle", "predictor", "--out", str(out)]
    t0 = time.perf_counter()
    first = subprocess.Popen(base, cwd=fx.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = out / ".search.lock.holder"
    while not holder.exists() and first.poll() is None and time.perf_counter() - t0 < 120:
        time.sleep(0.05)
    second = subprocess.run(base, cwd=fx.root, env=env, capture_output=True, text=True, timeout=240)
    first_out, first_err = first.communicate(timeout=240)
    resumed = subprocess.run(base[:5] + ["65"] + base[6:], cwd=fx.root, env=env, capture_output=True, text=True,
                             timeout=240)
    problems = []
    if first.returncode != 0:
        problems.append(f"the first search failed: {first_err.strip()[-300:]}")
    if "resumed: 60 evaluations" not in resumed.stdout:
        problems.append(f"the resume after it did not replay 60 evaluations: {resumed.stdout[-300:]}")
    history = (out / "history.jsonl").read_text().splitlines() if (out / "history.jsonl").exists() else []
    if len(history) != 66:  # header + 65: nothing evaluated twice
        problems.append(f"history holds {len(history)} lines, expected 66")
    # the checks go last, after the second process's own line: a failed check adds lines, so it fails the case
    stderr = second.stderr.rstrip("\n") + "".join(f"\n(check) {p}" for p in problems)
    return Outcome(second.returncode, second.stdout, stderr, time.perf_counter() - t0)


def run_api(case: Case, fx: Fixtures) -> tuple[Outcome, str, BaseException | None]:
    stdout, stderr = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    err: BaseException | None = None
    checked = ""
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            checked = case.api(fx)
        except BaseException as exc:  # judged below: only a NasPredictorError is a clear error
            err = exc
            if not _is_clear(exc):
                stderr.write(traceback.format_exc())
    return Outcome(0 if err is None else 2, stdout.getvalue(), stderr.getvalue(), time.perf_counter() - t0), checked, err


def _is_clear(exc: BaseException) -> bool:
    from nas_predictor.errors import NasPredictorError

    return isinstance(exc, NasPredictorError)


def judge(case: Case, fx: Fixtures) -> dict[str, Any]:
    if case.api is not None:
        outcome, checked, err = run_api(case, fx)
        message = str(err) if err is not None else ""
        kind = "api"
        command = f"python: {case.api.__qualname__.split('.<locals>')[0]}(...)  # {case.kind}"
    else:
        outcome = run_cli(case, fx)
        checked, err = "", None
        lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
        message = lines[0] if len(lines) == 1 else (lines[-1] if lines else "")
        kind = "cli"
        command = "nas-predictor " + " ".join(_quote(a) for a in case.argv) if case.argv != ["<concurrent>"] else \
            "two `nas-predictor search --out D` at once, then a resume with a bigger budget"
        if case.env:
            command = " ".join(f"{k}={v}" for k, v in case.env.items()) + " " + command
    traceback_seen = "Traceback (most recent call last)" in outcome.stderr
    non_finite = bool(NON_FINITE.search(outcome.stdout))
    row = {"category": case.category, "kind": case.kind, "via": kind, "command": command, "expected": case.expect,
           "exit_code": outcome.exit_code, "traceback": traceback_seen, "non_finite_in_output": non_finite,
           "seconds": round(outcome.seconds, 2), "owner": case.owner}
    problems = []
    if case.expect == "error":
        stderr_lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
        if outcome.exit_code != 2:
            problems.append(f"exit {outcome.exit_code}, expected 2")
        if kind == "cli" and len(stderr_lines) != 1:
            problems.append(f"{len(stderr_lines)} lines on stderr, expected one")
        if kind == "api" and err is not None and "\n" in message.strip():
            problems.append("the error message spans several lines")
        if case.fragment and case.fragment.lower() not in message.lower():
            problems.append(f"the error does not name the problem ({case.fragment!r} missing)")
        row["error"] = message[:400]
    else:
        if outcome.exit_code != 0:
            problems.append(f"exit {outcome.exit_code}, expected 0")
            row["error"] = (message or outcome.stderr.strip().splitlines()[-1:] or [""])[0][:400] \
                if isinstance(message, str) else ""
        else:
            try:
                checked = case.check(outcome.stdout, fx) if case.check else checked
            except Exception as exc:
                problems.append(f"check failed: {type(exc).__name__}: {exc}")
        row["checked"] = checked
    if traceback_seen:
        problems.append("traceback")
        row["traceback_tail"] = outcome.stderr.strip().splitlines()[-1][:400]
    if non_finite:
        problems.append("NaN/Infinity in the output")
    if problems:
        row["stderr_head"] = outcome.stderr.strip().splitlines()[:4]
    row["verdict"] = ("clear error" if case.expect == "error" else "correct result") if not problems else "FAIL"
    row["problems"] = problems
    return row


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w.,/=:~+-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def summarize(rows: list[dict]) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        s = by.setdefault(r["category"], {"kinds": 0, "clear error": 0, "correct result": 0, "fail": 0})
        s["kinds"] += 1
        s["fail" if r["verdict"] == "FAIL" else r["verdict"]] += 1
    total = {k: sum(s[k] for s in by.values()) for k in ("kinds", "clear error", "correct result", "fail")}
    return {"by_category": by, "total": total}


def readme_table(summary: dict) -> str:
    lines = ["| category | kinds tried | clear error | correct result | failing |", "|---|---:|---:|---:|---:|"]
    for cat, s in summary["by_category"].items():
        lines.append(f"| {cat} | {s['kinds']} | {s['clear error']} | {s['correct result']} | {s['fail']} |")
    t = summary["total"]
    lines.append(f"| **all** | **{t['kinds']}** | **{t['clear error']}** | **{t['correct result']}** | **{t['fail']}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="command-line cases run at once")
    parser.add_argument("--only", default=None, help="run one category")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--resume", action="store_true", help="keep the passing cases of the partial file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the API cases share two cores with the command-line subprocesses
    selected = [c for c in cases() if args.only in (None, c.category)]
    partial = Path(args.out).with_suffix(".partial.jsonl")
    from nas_predictor.jsonl import append_jsonl, read_jsonl

    done_before = {(r["category"], r["kind"]): r for r in read_jsonl(partial) if r["verdict"] != "FAIL"} \
        if args.resume else {}
    if not args.resume:
        partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="bad_inputs_") as tmp:
        fx = Fixtures(Path(tmp))
        fx.build()
        (fx.root / "ok.yaml").write_text("name: ok\ntrain:\n  epochs: 1\n")
        t0 = time.perf_counter()
        api_cases = [c for c in selected if c.api is not None]
        cli_cases = [c for c in selected if c.api is None]
        rows: dict[int, dict] = {i: done_before[(c.category, c.kind)] for i, c in enumerate(selected)
                                 if (c.category, c.kind) in done_before}

        guard = threading.Lock()

        def finished(i: int, row: dict) -> None:
            with guard:  # pool threads and this one finish cases at once
                rows[i] = row
                append_jsonl(partial, row)
                _progress(row, len(rows), len(selected))

        todo = [i for i in range(len(selected)) if i not in rows]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(judge, selected[i], fx): i for i in todo if selected[i].api is None}
            for fut in futures:
                fut.add_done_callback(lambda f: finished(futures[f], f.result()))
            for i in todo:  # the API cases run here meanwhile (they share this process)
                if selected[i].api is not None:
                    finished(i, judge(selected[i], fx))
            for fut in futures:
                fut.result()
        wall = time.perf_counter() - t0
    ordered = [rows[i] for i in range(len(selected))]
    summary = summarize(ordered)
    result = {
        "command": "python benchmarks/bad_inputs.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "wall_seconds": round(wall, 1),
        "cli_cases": len(cli_cases), "api_cases": len(api_cases),
        "rule": "clear error = exit 2 (API: a NasPredictorError) + one stderr line naming the problem + no "
                "traceback + no NaN/Infinity in the output; correct result = exit 0 + the named check holds",
        "summary": summary, "readme_table": readme_table(summary), "cases": ordered,
    }
    from nas_predictor.predictor import atomic_write_json

    atomic_write_json(result, Path(args.out))
    print(readme_table(summary))
    failing = [r for r in ordered if r["verdict"] == "FAIL"]
    for r in failing:
        print(f"FAIL [{r['owner']}] {r['kind']}: {'; '.join(r['problems'])}\n    {r['command']}\n    -> "
              f"{r.get('error') or r.get('traceback_tail', '')}", file=sys.stderr)
    print(f"{len(ordered)} cases, {len(failing)} failing, {wall:.0f} s; wrote {args.out}")
    if not failing:
        partial.unlink(missing_ok=True)  # kept only while there is something left to rerun with --resume
    return 1 if failing else 0


def _progress(row: dict, done: int, total: int) -> None:
    mark = "ok " if row["verdict"] != "FAIL" else "FAIL"
    print(f"[{done:3d}/{total}] {mark} {row['category']}: {row['kind']} ({row['seconds']:.1f} s)", file=sys.stderr,
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
