"""benchmarks/scene_speed.py runs for both of our scenes and prints its figures and command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("env", ["tabletop", "memory_pick_place"])
def test_scene_speed_runs(env: str) -> None:
    proc = subprocess.run([sys.executable, "benchmarks/scene_speed.py", "--env", env, "--steps", "60", "--frames", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "state mode:" in proc.stdout and "front camera 64x64" in proc.stdout
    assert ("pusher" in proc.stdout) == (env == "tabletop")
    assert proc.stdout.strip().splitlines()[-1].startswith("command: python benchmarks/scene_speed.py")
