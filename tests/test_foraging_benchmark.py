"""benchmarks/foraging.py's pieces: recovery after a swap from a training log, and the reference policies."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def foraging():
    spec = importlib.util.spec_from_file_location("foraging_bench", ROOT / "benchmarks" / "foraging.py")
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))  # its `from common import ...`
    spec.loader.exec_module(module)
    return module


def _log(path: Path, lengths: list[float], every: int = 10_000) -> Path:
    path.mkdir()
    with (path / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["step", "charts/episodic_length"])
        writer.writeheader()
        for k, length in enumerate(lengths, start=1):
            writer.writerow({"step": k * every, "charts/episodic_length": length})
    return path


def test_recovery_counts_steps_until_survival_is_back(foraging, tmp_path):
    # swaps every 10,000 steps per env x 8 envs = 80,000 logged steps: after windows 8 and 16
    lengths = [100, 200, 300, 400, 500, 600, 600, 600, 200, 300, 500, 650, 650, 650, 650, 650, 100, 200, 300]
    swaps = foraging.recoveries(_log(tmp_path / "run", lengths), shift_every=10_000)
    assert swaps == [(40_000.0, False), (30_000.0, True)]  # back at 600 four windows later; the second never recovers


def test_scripted_forager_survives_and_random_does_not(foraging):
    scripted = foraging.reference_survival("scripted", episodes=3)
    random = foraging.reference_survival("random", episodes=3)
    assert np.mean(scripted) > 900 and np.mean(random) < 300
