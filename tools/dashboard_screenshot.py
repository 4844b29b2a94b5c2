"""The README's optuna-dashboard screenshots: two workers share a NAS-Bench-201 search on a journal file, the
dashboard serves it on localhost, and headless Chromium photographs the best trial and the history.

    apt-get install chromium          # Debian's package; any Chromium or Chrome binary works (--chromium)
    python tools/dashboard_screenshot.py

Writes docs/img/dashboard_trial.png and docs/img/dashboard_history.png (needs the shared NAS-Bench-201 data
and the [dev] extra's optuna-dashboard).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
STUDY = "nb201-cifar10"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, path: str, wait: float = 60.0):
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                return json.loads(reply.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def shoot(chromium: str, url: str, out: Path, size: str) -> None:
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size}", "--virtual-time-budget=15000", f"--screenshot={out}", url],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    print(f"wrote {out.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                    or shutil.which("google-chrome"))
    ap.add_argument("--budget", type=int, default=40)
    args = ap.parse_args(argv)
    if not args.chromium:
        ap.error("no Chromium found: apt-get install chromium, or give --chromium PATH")
    cli = [sys.executable, "-m", "nas_predictor.cli"]  # `nas-predictor`, from this interpreter
    with tempfile.TemporaryDirectory() as tmp:
        journal = str(Path(tmp) / "nb201.log")
        # what a user runs on each of two machines (here: two processes), under a Pixel 3 latency bound
        search = [*cli, "search", "--strategy", "predictor", "--budget", str(args.budget), "--seed", "0",
                  "--max-latency-ms", "10.68", "--setting", "pixel3", "--storage", journal, "--study", STUDY, "--quiet"]
        workers = [subprocess.Popen(search, cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(2)]
        if any(w.wait() for w in workers):
            print("a worker failed", file=sys.stderr)
            return 1
        port = free_port()
        # what `optuna-dashboard nb201.log` runs (the command needs its own directory on PATH)
        serve = ("import sys, optuna_dashboard; from optuna.storages.journal import JournalFileBackend, JournalStorage; "
                 "optuna_dashboard.run_server(JournalStorage(JournalFileBackend(sys.argv[1])), host='127.0.0.1', "
                 "port=int(sys.argv[2]))")
        server = subprocess.Popen([sys.executable, "-c", serve, journal, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            (study,) = [s for s in api(port, "/api/studies")["study_summaries"] if s["study_name"] == STUDY]
            sid = study["study_id"]
            best = api(port, f"/api/studies/{sid}")["best_trials"][0]["number"]
            IMG.mkdir(parents=True, exist_ok=True)
            base = f"http://127.0.0.1:{port}/dashboard/studies/{sid}"
            shoot(args.chromium, f"{base}/trials?numbers={best}", IMG / "dashboard_trial.png", "1400,900")
            shoot(args.chromium, base, IMG / "dashboard_history.png", "1400,620")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
