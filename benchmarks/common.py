"""What the training benchmarks share: one `embodied-train` run per cell, reused when complete."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from embodied.evaluation import mean_ci
from embodied.run_info import run_complete


def train_once(run_dir: Path, overrides: list[str]) -> dict:
    """Run `embodied-train overrides run_dir=...` (one torch thread) unless it already finished; return its summary."""
    if not run_complete(run_dir):
        args = [sys.executable, "-m", "embodied.train", *overrides, f"run_dir={run_dir}", "torch_threads=1"]
        print("running:", shlex.join(args[1:]), file=sys.stderr, flush=True)
        subprocess.run(args, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads((run_dir / "summary.json").read_text())


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces a benchmark's output."""
    return f"python {shlex.join([script, *(argv if argv is not None else sys.argv[1:])])}"


def updates_per_s(run_dir: Path) -> float:
    with (run_dir / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("charts/updates_per_s")]
    return float(rows[-1]["charts/updates_per_s"]) if rows else float("nan")


def trained_agent(run_dir: Path) -> tuple[object, object, object]:
    """(run config, env, agent with the run's last checkpoint), on one CPU thread."""
    import torch

    from embodied.checkpoint import find_checkpoint, load_checkpoint
    from embodied.config import load_run_config
    from embodied.envs.factory import EnvFactory
    from embodied.train import build_agent

    torch.set_num_threads(1)
    config = load_run_config(run_dir / ".hydra" / "config.yaml")
    env = EnvFactory(config.env, seed=config.seed).make()
    agent = build_agent(config.agent, env.observation_space, env.action_space, torch.device("cpu"), config.seed)
    load_checkpoint(find_checkpoint(run_dir), agent, restore_rng=False)
    return config, env, agent


def fmt(values: list[float], scale: float = 100.0, digits: int = 0) -> str:
    mean, half = mean_ci(values)
    return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"
