"""Shared fixtures: a tiny training run (a few hundred steps) reused by several tests.

Under pytest-xdist (`make test` runs one worker per core) every worker and the processes
its tests start use one thread each, so the workers do not oversubscribe the cores.
"""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_name] = "1"

import pytest

import embodied  # noqa: E402, F401  (first: chooses MUJOCO_GL before any test imports mujoco)
from helpers import TINY, run_cli  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny SAC run on Meta-World reach (trained once per test session)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    proc = run_cli("embodied.train", *TINY, f"run_dir={run_dir}", check=True)
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    return run_dir


if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)
