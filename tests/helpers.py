"""Helpers for CLI tests: the tiny run's overrides, running entry points, checking errors."""

from __future__ import annotations

import os
import subprocess
import sys

# A few hundred SAC steps with small networks, short episodes and small video frames.
TINY = [
    "total_steps=300",
    "agent.learning_starts=100",
    "agent.batch_size=32",
    "agent.net_arch=[32,32]",
    "env.max_episode_steps=50",
    "env.render_size=[64,64]",
    "eval.episodes=2",
    "eval.video_episodes=1",
    "log_every=100",
    "checkpoint.every=100",
    "logger=[csv,tensorboard]",
]


# a PPO run on Crafter small enough for the design-loop tests (an iteration's training)
TINY_TRAIN = [
    "total_steps=128",
    "env.num_envs=2",
    "agent.n_steps=64",
    "agent.batch_size=64",
    "agent.n_epochs=1",
    "agent.net_arch=[32]",
    "env.max_episode_steps=40",
    "eval.episodes=1",
    "eval.video=false",
    "log_every=64",
]


def run_cli(
    module: str, *args: str, timeout: float = 300, check: bool = False, **kwargs
) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` like a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Non-zero exit and a single `error: ...` line on stderr containing `needles`."""
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{proc.stderr[-2000:]}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]
