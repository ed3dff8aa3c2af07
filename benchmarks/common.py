"""What the training benchmarks share: one `embodied-train` run per cell, reused when complete."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path


def train_once(run_dir: Path, overrides: list[str]) -> dict:
    """Run `embodied-train overrides run_dir=...` (one torch thread) unless it already finished; return its summary."""
    summary = run_dir / "summary.json"
    if not (summary.exists() and json.loads(summary.read_text()).get("status") == "complete"):
        args = [sys.executable, "-m", "embodied.train", *overrides, f"run_dir={run_dir}", "torch_threads=1"]
        print("running:", shlex.join(args[1:]), file=sys.stderr, flush=True)
        subprocess.run(args, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(summary.read_text())


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces a benchmark's output."""
    return f"python {shlex.join([script, *(argv if argv is not None else sys.argv[1:])])}"
