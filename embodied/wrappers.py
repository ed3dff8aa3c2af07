"""Wrappers shared by every env and agent."""
from __future__ import annotations

from typing import Any

import gymnasium as gym


class EpisodeStatistics(gym.Wrapper):
    """Adds `info["episode"] = {"r", "l", "success"}` when an episode ends.

    `success` is True if `info["success"]` was ever True in the episode. The keys
    `r` and `l` match Stable-Baselines3's Monitor, so SB3 reads them too.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._return, self._length, self._success = 0.0, 0, False

    def reset(self, **kwargs: Any):
        self._return, self._length, self._success = 0.0, 0, False
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        self._success = self._success or bool(info.get("success", False))
        if terminated or truncated:
            info = dict(info)
            info["episode"] = {"r": self._return, "l": self._length, "success": self._success}
        return obs, reward, terminated, truncated, info
