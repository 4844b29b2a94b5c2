"""Helpers shared by the table modules: reading results files and describing their seeds and machine."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

LATENCY_MODELS = {
    "narformer_v2": "NAR-Former V2 (ours)",
    "nnlp_gnn": "NNLP GNN",
    "gbdt": "GBDT",
    "linear_flops_memory": "linear FLOPs + memory",
    "linear_flops": "linear FLOPs",
}


def load(name: str) -> dict | None:
    """A results file by stem, or None when it has not been written. Tests replace this function, so the
    table modules call it as ``common.load`` (looked up at call time)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def ms(stat: dict) -> str:
    """'mean ± std' of a summary statistic, 4 decimals."""
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def machine_text(machine) -> str:
    """One line for a results file's ``machine`` entry (a dict written by benchmarks/common.py, or text)."""
    if machine is None:
        return "machine not recorded"
    if isinstance(machine, str):
        return machine
    if "cpu" in machine:
        threads = machine.get("torch_threads")
        parts = [machine["cpu"], f"{machine.get('cores', '?')} cores", f"torch {machine.get('torch', '?')}"]
        if threads is not None:
            parts.append(f"{threads} torch thread{'s' if threads != 1 else ''}")
        if machine.get("cuda"):
            parts.append(f"CUDA {machine['cuda']}")
        parts.append(f"Python {machine.get('python', '?')}")
        return ", ".join(parts)
    return ", ".join(f"{k} {v}" for k, v in sorted(machine.items()))


# keys whose "seed" values are not run seeds: ensemble members (seed + 1000·m) and dataset network seeds
_NOT_RUN_SEEDS = {"members", "datasets", "recomputed"}


def run_seeds(data, found: set[int] | None = None) -> set[int]:
    """Every run seed a results file records (``seed`` and ``seeds`` entries at any depth)."""
    found = set() if found is None else found
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _NOT_RUN_SEEDS:
                continue
            if key == "seed" and isinstance(value, int):
                found.add(value)
            elif key == "seeds" and isinstance(value, list) and all(isinstance(v, int) for v in value):
                found.update(value)
            else:
                run_seeds(value, found)
    elif isinstance(data, list):
        for value in data:
            run_seeds(value, found)
    return found


def seed_text(seeds: set[int]) -> str:
    """Sorted seeds with runs of consecutive ones written as ranges: 0-49, 100-107, 2, 3 -> '2, 3'."""
    if not seeds:
        return "none recorded in these files"
    ordered, parts = sorted(seeds), []
    start = prev = ordered[0]
    for seed in ordered[1:] + [None]:
        if seed is not None and seed == prev + 1:
            prev = seed
            continue
        parts.append(str(start) if start == prev else (f"{start}, {prev}" if prev == start + 1 else f"{start}-{prev}"))
        if seed is not None:
            start = prev = seed
    return ", ".join(parts)


def _parts(data: dict) -> list[dict]:
    """The entries of a results file keyed by what they cover (``runs: {space: {...}}``, as the zero-cost
    benchmarks write), each recording its own machine and command; none for a file of run lists."""
    runs = data.get("runs")
    return [r for r in runs.values() if isinstance(r, dict)] if isinstance(runs, dict) else []


def recorded_machine(data: dict):
    """The machine a results file recorded: its own, else the one its keyed entries share (text naming each
    where they differ)."""
    if data.get("machine") is not None or not _parts(data):
        return data.get("machine")
    texts = list(dict.fromkeys(machine_text(p.get("machine")) for p in _parts(data)))
    return texts[0] if len(texts) == 1 else "; ".join(texts)


def recorded_commands(data: dict) -> list[str]:
    """The command lines a results file recorded (``command`` or ``commands``, or its keyed entries'),
    without repeats."""
    raw = data.get("commands") or data.get("command") or [p["command"] for p in _parts(data) if p.get("command")]
    out: list[str] = []
    for command in raw if isinstance(raw, list) else [raw]:
        text = command if isinstance(command, str) else json.dumps(command)
        if text not in out:
            out.append(text)
    return out


def meta(stems: list[str]) -> list[str]:
    """The 'where these numbers come from' block of a section: its results files, their seeds, the
    machine each recorded, and the commands they recorded (folded away, they can be long)."""
    files = [(stem, load(stem)) for stem in stems]
    files = [(stem, data) for stem, data in files if data is not None]
    if not files:
        return ["*Results files: not written yet.*"]
    names = ", ".join(f"`{stem}.json`" for stem, _ in files)
    seeds: set[int] = set()
    machines: dict[str, list[str]] = {}
    commands: list[str] = []
    for stem, data in files:
        run_seeds(data, seeds)
        machines.setdefault(machine_text(recorded_machine(data)), []).append(stem)
        commands += [c for c in recorded_commands(data) if c not in commands]
    lines = [f"- Results files (in `benchmarks/results/`): {names}", f"- Seeds: {seed_text(seeds)}"]
    if len(machines) == 1:
        lines.append(f"- Machine: {next(iter(machines))}")
    else:
        lines.append(
            "- Machine: "
            + "; ".join(f"{text} ({', '.join(f'`{s}`' for s in stems_)})" for text, stems_ in machines.items())
        )
    if commands:
        lines += ["", "<details><summary>Commands recorded in the results files</summary>", "", "```"]
        lines += commands + ["```", "", "</details>"]
    return lines


def glob_stems(pattern: str) -> list[str]:
    """Stems of the results files matching a glob, sorted."""
    return [p.stem for p in sorted(RESULTS.glob(f"{pattern}.json"))]


def header(*columns: str) -> list[str]:
    """A markdown table's first two lines: the column names and the rule under them."""
    return [row(*columns), "|" + "---|" * len(columns)]


def row(*cells: object) -> str:
    """One markdown table line."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def not_run(*columns: str, status: str = "not run yet") -> list[str]:
    """A table whose results file is missing: its header and one line saying so."""
    return [*header(*columns), row("all", status, *([""] * (len(columns) - 2)))]
