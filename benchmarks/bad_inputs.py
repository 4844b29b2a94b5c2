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
from pathlib import Path
from typing import Any

# the suite's parts live in sibling modules; their names are re-exported for the tests and callers
from bad_inputs_fixtures import NB201_ARCH, NON_FINITE, OWNERS, RESULTS, ROOT, Case, Fixtures, Outcome  # noqa: F401
from bad_inputs_checks import finite_json, search_summary  # noqa: F401
from bad_inputs_cases import cases  # noqa: F401


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
