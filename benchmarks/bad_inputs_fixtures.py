"""The bad-input suite's shared types and its fixtures: every bad file, written once into a temporary folder."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


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


