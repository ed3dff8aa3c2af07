"""Build envs from an env config: one place that maps config fields to `gym.make`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import gymnasium as gym

from embodied.config import EnvConfig, RewardConfig

_BASE_FIELDS = {f.name for f in dataclasses.fields(EnvConfig)}


def env_kwargs(config: EnvConfig) -> dict[str, Any]:
    """The family-specific fields of `config`, i.e. the env constructor's kwargs."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in _BASE_FIELDS}


@dataclass
class EnvFactory:
    """Makes the envs of a run: rank r gets seed `seed + r` on its first reset."""

    config: EnvConfig
    seed: int = 0
    reward: Optional[RewardConfig] = None
    """Reward code for training envs (embodied.reward_code); None: the env's own reward."""
    reward_sandbox: Optional[dict[str, Any]] = field(default=None, init=False, compare=False)
    """Set by the training vec env's reward code (embodied.reward_code.sandbox_record): the
    isolation its sandbox got, which embodied-train records in summary.json."""

    @property
    def num_envs(self) -> int:
        return self.config.num_envs

    def make(self, rank: int = 0, render_mode: str | None = None, wrap_stats: bool = True) -> gym.Env:
        """A single env; `render_mode="rgb_array"` for videos."""
        from embodied.envs import make
        from embodied.wrappers import EpisodeStatistics

        kwargs = env_kwargs(self.config)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        if self.config.max_episode_steps is not None:
            kwargs["max_episode_steps"] = self.config.max_episode_steps
        env = make(self.config.id, **kwargs)
        env.action_space.seed(self.seed + rank)
        return EpisodeStatistics(env) if wrap_stats else env

    def make_vec(self) -> Any:
        """The training vector env (an SB3 `VecEnv`): in-process, or sharded over worker processes
        (`env.vectorization`), seeded, with the configured reward code (`reward=`) applied to all envs.

        With reward code, `reward_sandbox` records the isolation its sandbox got (for summary.json).
        """
        import os

        from stable_baselines3.common.vec_env import DummyVecEnv

        from embodied.errors import ConfigError
        from embodied.reward_code import CodeRewardVecEnv, wrap_reward
        from embodied.vec_env import ShardedVecEnv

        fns = [lambda rank=rank: self.make(rank) for rank in range(self.num_envs)]
        if self.config.vectorization == "async" and len(fns) > 1:
            vec: Any = ShardedVecEnv(fns, workers=self.config.workers or min(len(fns), os.cpu_count() or 1))
        elif self.config.vectorization in ("sync", "async"):
            vec = DummyVecEnv(fns)
        else:
            raise ConfigError(f"env.vectorization must be sync or async, got '{self.config.vectorization}'")
        vec.seed(self.seed)
        vec = wrap_reward(vec, self.reward, getattr(self.config, "task", None))
        if isinstance(vec, CodeRewardVecEnv):
            self.reward_sandbox = vec.reward_sandbox
        return vec
