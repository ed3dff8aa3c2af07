"""benchmarks/pixel_throughput.py runs end to end at a tiny budget and prints its table and command.

No speed is asserted (speeds are benchmark results, not test outcomes): only that every
measurement ran in its own process and came back as a positive rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embodied.rendering import rendering_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # ~22 s: `make test-all` runs it
@pytest.mark.skipif(rendering_problem() is not None, reason="no offscreen GL")
def test_pixel_throughput_runs(tmp_path: Path) -> None:
    args = ["--envs", "reach", "--sizes", "32", "--seconds", "0.05", "--repeats", "1", "--envs-per-worker", "1",
            "--measure", "frames,steps,vector", "--json", str(tmp_path / "r.json")]  # fmt: skip
    proc = subprocess.run([sys.executable, "benchmarks/pixel_throughput.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["mode"].split(",")[0] for r in rows] == [
        "32x32 frames/s",
        "32x32 env steps/s with pixel obs",
        "32x32 pixel env steps/s",
    ]
    assert all(r["raw"] > 0 and r["ours"] > 0 for r in rows)
    assert proc.stdout.strip().splitlines()[-1].startswith("python benchmarks/pixel_throughput.py --envs reach")


def test_pixel_throughput_names_a_bad_env() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/pixel_throughput.py", "--envs", "reech"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "unknown env 'reech'" in proc.stderr
