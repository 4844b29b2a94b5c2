"""benchmarks/report.py: README tables are rewritten in their own sections only."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def report(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("report_under_test", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("report_under_test", None)


def test_a_section_without_a_table_gets_one_and_the_next_sections_table_is_kept(report, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n#### A\n\nold intro:\n\n| a |\n|---|\n| 1 |\n\n#### B\n\nintro, no table yet:\n\n"
                      "#### C\n\n| c |\n|---|\n| 3 |\n")
    monkeypatch.setattr(report, "README_TABLES", {
        "#### A": lambda: ["| a |", "|---|", "| 2 |"],
        "#### B": lambda: ["| b |", "|---|", "| 9 |"],
    })
    report.update_readme(readme)
    text = readme.read_text()
    assert "| 1 |" not in text and "| 2 |" in text
    b, c = text.index("#### B"), text.index("#### C")
    assert b < text.index("| 9 |") < c  # B's new table sits in B
    assert "| c |\n|---|\n| 3 |" in text[c:]  # C's table untouched
    report.update_readme(readme)  # idempotent
    assert readme.read_text() == text
