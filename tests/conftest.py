"""Shared fixtures: a tiny training run (a few hundred steps) reused by several tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import embodied  # noqa: F401  (first: chooses MUJOCO_GL before any test imports mujoco)
from helpers import TINY, run_cli


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny SAC run on Meta-World reach (trained once per test session)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    proc = run_cli("embodied.train", *TINY, f"run_dir={run_dir}", check=True)
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    return run_dir
