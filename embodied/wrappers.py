"""Wrappers shared by every env and agent."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from embodied.evaluation import InfoMeans


class EpisodeStatistics(gym.Wrapper):
    """Adds `info["episode"]` when an episode ends (read by embodied.evaluation.episode_metrics).

    Keys: `r` (return) and `l` (length), as in Stable-Baselines3's Monitor so SB3 reads
    them too; `success` (info["success"] was ever True) and `success_step` (when it first
    was); `death_cause`, `achievements` and `task` (multi-task envs) copied from the last info
    where the env has them;
    `means` of the info keys the env names in metadata["episode_means"].
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._return, self._length, self._success_step = 0.0, 0, None
        self._means = InfoMeans(env)

    def reset(self, **kwargs: Any):
        self._return, self._length, self._success_step = 0.0, 0, None
        self._means = InfoMeans(self.env)
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        self._means.add(info)
        if self._success_step is None and info.get("success", False):
            self._success_step = self._length
        if terminated or truncated:
            info = dict(info)
            episode = {
                "r": self._return,
                "l": self._length,
                "success": self._success_step is not None,
                "success_step": self._success_step,
            }
            for key in ("death_cause", "achievements", "task"):
                if key in info:
                    episode[key] = info[key]
            if self._means.keys:
                episode["means"] = self._means.result()
            info["episode"] = episode
        return obs, reward, terminated, truncated, info
