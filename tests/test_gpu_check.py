"""benchmarks/gpu_check.py on a machine without CUDA: one JSON that says so, and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine run `make gpu-check` itself")
def test_without_cuda_the_check_fails_in_its_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    record = json.loads(out.read_text())
    assert list(record["checks"]) == ["cuda"] and record["checks"]["cuda"]["status"] == "failed"
    assert "no CUDA device" in record["checks"]["cuda"]["error"] and record["command"].startswith(
        "python benchmarks/gpu_check.py"
    )
