"""The command line starts without the heavy libraries: ``--help``, ``list`` and the help of the outer
packages' commands import no torch, scipy or optuna (the import, not the seconds, is asserted: CI machines
are loaded). Every option of every command says what it does."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from nas_predictor.cli import build_parser

HEAVY = ("torch", "scipy", "optuna")
PROBE = """
import json, sys
from nas_predictor.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--json"], ["list", "latency-*"],
                                  ["search", "--help"], ["dataset", "--help"], ["dataset", "build", "--help"]])
def test_fast_paths_import_no_torch_scipy_or_optuna(argv):
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, done.stderr


def _parsers(parser: argparse.ArgumentParser, prog: str = "nas-predictor"):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_every_option_of_every_command_has_help():
    missing = [f"{prog} {action.option_strings or action.dest}" for prog, parser in _parsers(build_parser())
               for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
               and action.help != argparse.SUPPRESS and not (action.help or "").strip()]
    assert missing == []


def test_top_help_names_every_command(capsys):
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"dataset", "search", "list", "latency"} <= set(commands.choices)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    description = capsys.readouterr().out.split("Commands:")[1]
    assert all(name in description for name in commands.choices)


def test_every_device_option_defaults_to_auto():
    defaults = {prog: action.default for prog, parser in _parsers(build_parser()) for action in parser._actions
                if "--device" in action.option_strings}
    # train keeps its config's train.device (auto unless the config says otherwise)
    assert defaults.pop("nas-predictor train") is None
    assert set(defaults) >= {"nas-predictor search", "nas-predictor latency", "nas-predictor predict"}
    assert set(defaults.values()) == {"auto"}
