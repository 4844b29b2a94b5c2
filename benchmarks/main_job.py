"""Wall time of the README's main job (issue 28: under 60 s on a quiet 2-core machine, install aside).

The command is read from the README's first code block (the part after the install), so this times
exactly what a newcomer runs. A cold run starts from an empty cache and an empty HOME (no exported
graphs, no matplotlib font cache); a warm run reuses the cache the cold run before it left. Each run
writes to a fresh output folder, so none of them resumes another.

    python benchmarks/main_job.py --repeats 3      # writes benchmarks/results/main_job.json
    git worktree add /tmp/before d23133b && python benchmarks/main_job.py --checkout /tmp/before \
        --out benchmarks/results/main_job_before.json   # the same, on an earlier commit

Run it on a quiet machine: the load average at the start of each run is recorded beside its time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, code_commit, command_line, machine, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def readme_main_job(readme: Path = ROOT / "README.md") -> list[str]:
    """The main job's argv: the last ``&&`` part of the README's first bash block, without its ``--out``."""
    block = re.search(r"```bash\n(.*?)\n```", readme.read_text(), re.S)
    if block is None:
        raise SystemExit(f"{readme} has no bash code block")
    argv = shlex.split(block.group(1).split("&&")[-1])
    if "--out" in argv:
        i = argv.index("--out")
        del argv[i:i + 2]
    return argv


def one_run(argv: list[str], home: Path, out: Path, checkout: Path | None = None) -> dict:
    env = {**os.environ, "HOME": str(home), "NAS_PREDICTOR_CACHE": str(home / ".cache" / "nas_predictor")}
    env.pop("MPLCONFIGDIR", None)
    if checkout is None:
        cmd = [shutil.which(argv[0], path=str(Path(sys.executable).parent)) or argv[0], *argv[1:]]
    else:  # another commit's code (a before/after comparison) run by this interpreter
        env["PYTHONPATH"] = str(checkout)
        cmd = [sys.executable, "-m", "nas_predictor.cli", *argv[1:]]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True,
                          cwd=checkout)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"the main job failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"seconds": seconds, "load_average_1min": load}


def stats(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "worst": max(values), "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="cold runs, each followed by a warm one")
    ap.add_argument("--out", default=str(RESULTS / "main_job.json"))
    ap.add_argument("--checkout", type=Path, help="time another checkout's code and README (a before/after "
                    "comparison, for example a `git worktree` of an earlier commit)")
    args = ap.parse_args(argv)
    job = readme_main_job(args.checkout / "README.md" if args.checkout else ROOT / "README.md")
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="main-job-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            for kind in ("cold", "warm"):
                runs[kind].append(one_run(job, home, Path(tmp) / f"run-{kind}", args.checkout))
                print(f"run {k + 1}/{args.repeats} {kind}: {runs[kind][-1]['seconds']:.1f} s "
                      f"(load {runs[kind][-1]['load_average_1min']:.2f})", flush=True)
    save_results(Path(args.out), {
        "benchmark": "main_job", "machine": machine(), "command": command_line(),
        "code": code_commit(args.checkout or ROOT),
        "main_job": shlex.join(job), "runs": runs,
        "summary": {kind: stats([r["seconds"] for r in rs]) for kind, rs in runs.items()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
