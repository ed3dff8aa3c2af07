"""Rewards written as code (hand-written or LLM-designed), applied to a vector env via the sandbox.

`CodeRewardVecEnv` wraps an SB3 `VecEnv`: after every step it sends all envs' `info["mc"]`
views to the sandbox in one batched call, replaces the env reward with the code's
(under Auto MC-Reward's scale constraint by default), keeps the env's own reward in
`info["task_reward"]`, and adds per-episode component sums to `info["episode"]`.
A reward that fails stops training with its structured error; it is never replaced.
At start-up it logs one warning when the sandbox runs with less than full kernel
isolation, and exposes `reward_sandbox` (what isolation took effect) for summary.json.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from embodied.config import RewardConfig
from embodied.errors import ConfigError
from embodied.sandbox import RewardError
from embodied.sandbox.checks import MAX_SOURCE

log = logging.getLogger("embodied.reward")


def reward_source(config: RewardConfig, task: str | None) -> str | None:
    """The reward code selected by `config` (None for the env's own reward)."""
    if config.kind == "sparse":
        return None
    if config.kind == "handwritten":
        from embodied.envs.minecraft.rewards import handwritten_path

        if task is None:
            raise ConfigError("reward=handwritten needs an env with a task (the Crafter envs)")
        return handwritten_path(task).read_text()
    path = Path(str(config.path))
    if not path.is_file():
        raise ConfigError(f"reward.path '{path}' is not a file; point it at a reward.py (e.g. an iteration's)")
    data = path.read_bytes()
    if len(data) > MAX_SOURCE:
        raise ConfigError(f"reward.path '{path}' is {len(data):,} bytes; a reward file holds at most {MAX_SOURCE:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"reward.path '{path}' is not UTF-8 text (byte {err.start}); save it as UTF-8") from None


def shaped(total: float, components: dict[str, float], scale_constraint: bool) -> float:
    """The training reward: `total`, or sgn(sparse) + 0.1 sgn(dense) under the constraint."""
    if not scale_constraint:
        return total
    missing = [k for k in ("sparse", "dense") if k not in components]
    if missing:
        raise RewardError(
            "bad_return",
            f"with the scale constraint the components must include 'sparse' and 'dense' (missing {', '.join(missing)})",
        )
    return _sign(components["sparse"]) + 0.1 * _sign(components["dense"])


def _sign(value: float) -> float:
    return math.copysign(1.0, value) if value != 0 else 0.0


def isolation_warning(isolation: dict[str, Any]) -> str | None:
    """One line on what a reward sandbox runs without (its `isolation` dict), or None when every kernel layer took effect."""
    if isolation.get("mode") == "python":
        return (
            "reward code runs with Python-level isolation only (reward.isolation=python): no seccomp filter, "
            "Landlock or network namespace contains it, so run only reward code you trust"
        )
    problems = [" ".join(str(p).split()) for p in isolation.get("problems") or ()]
    if not problems:
        return None
    missing = [
        name
        for name, on in (("Landlock", isolation.get("landlock")), ("a network namespace", isolation.get("netns")))
        if not on
    ]
    without = f"without {' and '.join(missing)}" if missing else "with part of its kernel layer refused"
    return f"the reward sandbox runs {without} (the kernel refused: {'; '.join(problems)[:500]}); its seccomp filter still applies"


def sandbox_record(isolation: dict[str, Any]) -> dict[str, Any]:
    """What a run records about its reward sandbox (summary.json's `reward_sandbox`): the isolation and its warning."""
    return {**isolation, "warning": isolation_warning(isolation)}


class CodeRewardVecEnv(VecEnvWrapper):
    """Replaces a vector env's rewards with reward code run in a sandbox worker.

    `reward_sandbox` is `sandbox_record` of the sandbox's isolation; SB3 wrappers around
    this one reach it by attribute, as they do any wrapper's.
    """

    def __init__(self, venv: VecEnv, source: str, config: RewardConfig) -> None:
        from embodied.sandbox import RewardSandbox

        super().__init__(venv)
        self.config = config
        try:
            self.sandbox = RewardSandbox(
                source, timeout_s=config.timeout_s, memory_mb=config.memory_mb, isolation=config.isolation
            )
        except BaseException:  # a refused reward or isolation: do not leave the envs' workers behind
            venv.close()
            raise
        self.reward_sandbox = sandbox_record(self.sandbox.isolation)
        if self.reward_sandbox["warning"]:
            log.warning(self.reward_sandbox["warning"])
        self.slots = list(range(self.num_envs))
        self.sums: list[dict[str, float]] = [defaultdict(float) for _ in self.slots]

    def reset(self) -> Any:
        obs = self.venv.reset()
        self.sandbox.reset(self.slots)
        self.sums = [defaultdict(float) for _ in self.slots]
        return obs

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        if any("mc" not in info for info in infos):
            raise ConfigError("reward code reads info['mc']: use a Minecraft env with env.mc_info=true")
        results = self.sandbox.call([info["mc"] for info in infos], self.slots)
        new = np.zeros(self.num_envs, dtype=np.float32)
        finished = []
        for i, (total, components) in enumerate(results):
            new[i] = shaped(total, components, self.config.scale_constraint)
            infos[i]["task_reward"] = float(rewards[i])
            for name, value in components.items():
                self.sums[i][name] += value
            if dones[i]:
                if "episode" in infos[i]:
                    infos[i]["episode"]["reward_components"] = dict(self.sums[i])
                self.sums[i] = defaultdict(float)
                finished.append(i)
        if finished:
            self.sandbox.reset(finished)
        return obs, new, dones, infos

    def close(self) -> None:
        self.sandbox.close()
        self.venv.close()


def wrap_reward(venv: VecEnv, config: RewardConfig | None, task: str | None) -> VecEnv:
    """`venv` with the configured reward code, or unchanged for the env's own reward."""
    source = reward_source(config, task) if config is not None else None
    return venv if source is None else CodeRewardVecEnv(venv, source, config)
