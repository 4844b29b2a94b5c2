"""The README and docs/: every relative link resolves to a file and, with an anchor, to one of its headings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its rendered text lower-cased, punctuation other than '-' and '_'
    dropped, spaces made hyphens (so "Scoring all 15,625 cells (a + b)" -> "scoring-all-15625-cells-a--b")."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading id of a markdown page, numbered as GitHub numbers repeats (-1, -2, ...); lines in
    code fences are not headings."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            slug = github_anchor(match.group(1))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def links(page: Path) -> list[str]:
    """The relative link targets of a page, outside code fences (web links are not checked)."""
    out, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            out += [t for t in LINK.findall(line) if not re.match(r"[a-z]+:", t)]
    return out


def test_the_anchor_rule_matches_githubs():
    assert (
        github_anchor("Scoring all 15,625 cells (graph building + tokenising + model)")
        == "scoring-all-15625-cells-graph-building--tokenising--model"
    )
    assert (
        github_anchor("Real torchvision/timm networks through the ONNX encoder")
        == "real-torchvisiontimm-networks-through-the-onnx-encoder"
    )
    assert github_anchor("What `latency` will *not* guess") == "what-latency-will-not-guess"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_a_heading(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with id {anchor!r} in {file.name}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_its_details_to_the_docs_and_stays_short():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert "](docs/results.md#" in text
    first_command = next(i for i, line in enumerate(text.splitlines()) if line.startswith("python3 -m venv"))
    assert first_command < 40


def test_the_readme_names_only_shipped_predictors():
    manifest = json.loads((ROOT / "nas_predictor" / "pretrained" / "manifest.json").read_text())
    section = (ROOT / "README.md").read_text().split("## Shipped predictors", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([\w.-]+)` \|", section, flags=re.M)
    assert names and all(name in manifest for name in names)


def test_every_number_of_the_headline_table_is_on_the_page_it_links_to():
    section = (ROOT / "README.md").read_text().split("## Headline results", 1)[1].split("\n## ", 1)[0]
    missing = []
    for row in re.findall(r"^\| (?!what |---).*$", section, flags=re.M):
        cells = [c.strip() for c in row.strip("|").split("|")]
        target = LINK.search(cells[-1]).group(1).partition("#")[0]
        page = (ROOT / target).read_text()
        numbers = re.findall(r"\d+(?:[.,]\d+)+", cells[1])
        missing += [f"{cells[0]}: {n} not in {target}" for n in numbers if n not in page]
    assert not missing, "\n".join(missing)
