"""The env contract, over every env registered under `embodied/`: a new env is tested by registering it.

For each id: Gymnasium's `check_env`; the same seed gives the same observations and
rewards; `info["success"]` is a bool after every step; `render_mode="rgb_array"` gives an
HxWx3 uint8 frame. One id per family runs by default (the first in sorted order), the
rest are marked slow (`make test-all`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied.envs as envs
from embodied.errors import ConfigError

IDS = sorted(i for i in gym.registry if i.startswith("embodied/"))
FIRST = {}
for _id in IDS:
    FIRST.setdefault(_id.split("/")[1].split("-")[0], _id)
PARAMS = [pytest.param(i, marks=() if i in FIRST.values() else pytest.mark.slow) for i in IDS]


def rollout(env_id: str, seed: int, steps: int = 8) -> tuple[list, list[float], list]:
    env = envs.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards, successes = [obs], [], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(float(reward))
        successes.append(info.get("success"))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return observations, rewards, successes


def _flat(obs: object) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([_flat(obs[k]) for k in sorted(obs)])
    return np.asarray(obs, dtype=np.float64).ravel()


def test_every_family_has_a_default_test() -> None:
    assert set(FIRST) >= {"Crafter", "HomeostaticForaging", "MemoryPickPlace", "MetaWorld", "PointMaze", "Tabletop"}


@pytest.mark.parametrize("env_id", PARAMS)
def test_env_contract(env_id: str) -> None:
    try:
        env = envs.make(env_id)
    except (
        ConfigError
    ) as err:  # an id that needs arguments (e.g. the generic multi-task Meta-World) must say so in one line
        assert "\n" not in str(err)
        pytest.skip(f"{env_id} needs arguments: {err}")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
    first, again = rollout(env_id, seed=3), rollout(env_id, seed=3)
    assert all(np.array_equal(_flat(a), _flat(b)) for a, b in zip(first[0], again[0])), "same seed, other observations"
    assert first[1] == again[1], "same seed, other rewards"
    assert all(type(s) in (bool, np.bool_) for s in first[2]), f"info['success'] must be a bool, got {first[2]}"
    env = envs.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
