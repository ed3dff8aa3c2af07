"""Stable-Baselines3 SAC and PPO behind the common Agent interface.

SB3 does the learning; this class maps it onto our run directory: weights in
`model.safetensors`, optimizer/algorithm state and (for SAC) the replay buffer in
safetensors + JSON files, VecNormalize's running statistics (when `normalize_obs` or
`normalize_reward` is on) in `normalizer.*`, episode and loss metrics through `TrainHooks`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_model, save_model
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from embodied.agent import Agent, TrainHooks
from embodied.agents.sb3.augment import ShiftedReplayBuffer, image_keys
from embodied.agents.sb3.config import PPOConfig, SACConfig, SB3Config
from embodied.errors import CheckpointError, ConfigError
from embodied.tensor_state import load_state, save_state

_ALGOS: dict[str, type[BaseAlgorithm]] = {"sac": SAC, "ppo": PPO}
_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


class _SpacesOnlyEnv(gym.Env):
    """Carries the spaces for building an SB3 model that will only act (rollouts)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):  # pragma: no cover - never stepped
        raise RuntimeError("this env only carries spaces")

    def step(self, action):  # pragma: no cover - never stepped
        raise RuntimeError("this env only carries spaces")


class _HooksCallback(BaseCallback):
    """Forwards SB3's per-step progress and finished episodes to our TrainHooks."""

    def __init__(self, agent: "SB3Agent", hooks: TrainHooks) -> None:
        super().__init__()
        self.agent, self.hooks = agent, hooks

    def _on_step(self) -> bool:
        self.agent.num_steps = self.num_timesteps
        episodes = [info["episode"] for info in self.locals.get("infos", ()) if "episode" in info]
        return self.hooks.on_step(self.num_timesteps, episodes)


class SB3Agent(Agent):
    """SAC or PPO from Stable-Baselines3 (chosen by `config.name`)."""

    def __init__(
        self,
        config: SB3Config,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device, seed)
        self.algo = "ppo" if isinstance(config, PPOConfig) else "sac" if isinstance(config, SACConfig) else config.name
        if self.algo not in _ALGOS:
            raise ConfigError(f"SB3Agent runs {', '.join(_ALGOS)}, not '{config.name}'")
        if config.normalize_obs and not (
            isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
        ):
            raise ConfigError(
                "agent.normalize_obs=true standardises flat vector observations only; use a flat obs_mode or normalize_obs=false"
            )
        if getattr(config, "image_shift", 0) and not image_keys(observation_space):
            raise ConfigError(
                "agent.image_shift augments image observations and this env gives none; set env.obs_mode=pixels (or state+pixels) or agent.image_shift=0"
            )
        if self.algo == "sac" and not isinstance(action_space, gym.spaces.Box):
            raise ConfigError("SAC needs a continuous (Box) action space; use agent=ppo for discrete actions")
        self.model: BaseAlgorithm | None = None
        self.include_replay_buffer = True
        """Save SAC's replay buffer in checkpoints, so a resumed run continues exactly."""
        self._build_info: dict[str, int] = {}
        self.obs_rms: RunningMeanStd | None = None
        """VecNormalize's running observation statistics, shared across learn() calls (None: not normalised)."""
        self.ret_rms: RunningMeanStd | None = None

    @property
    def normalizes(self) -> bool:
        return bool(self.config.normalize_obs or self.config.normalize_reward)

    def _normalized(self, vec: VecEnv) -> VecEnv:
        """`vec` wrapped in VecNormalize that keeps updating this agent's running statistics."""
        if not self.normalizes:
            return vec
        cfg = self.config
        wrapped = VecNormalize(vec, norm_obs=cfg.normalize_obs, norm_reward=cfg.normalize_reward, gamma=cfg.gamma)
        if self.ret_rms is None:
            self.obs_rms, self.ret_rms = getattr(wrapped, "obs_rms", None), wrapped.ret_rms
        if cfg.normalize_obs:
            wrapped.obs_rms = self.obs_rms  # shared: VecNormalize updates it in place while learning
        wrapped.ret_rms = self.ret_rms
        return wrapped

    def _normalize_obs(self, obs: Any) -> Any:
        """What VecNormalize feeds the policy, for observations straight from an env."""
        if self.obs_rms is None:
            return obs
        x = (np.asarray(obs) - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + 1e-8)
        return np.clip(x, -10.0, 10.0).astype(np.float32)

    # --- construction --------------------------------------------------------------
    def _build(self, env: VecEnv, buffer_size: int) -> None:
        cfg = self.config
        policy = "MultiInputPolicy" if isinstance(self.observation_space, gym.spaces.Dict) else "MlpPolicy"
        common = dict(
            learning_rate=cfg.learning_rate,
            gamma=cfg.gamma,
            policy_kwargs=dict(net_arch=list(cfg.net_arch), activation_fn=_ACTIVATIONS[cfg.activation]),
            seed=self.seed,
            device=self.device,
            verbose=0,
        )
        if isinstance(cfg, SACConfig):
            ent_coef: Any = cfg.ent_coef if cfg.ent_coef.startswith("auto") else float(cfg.ent_coef)
            algo = dict(
                buffer_size=buffer_size,
                learning_starts=cfg.learning_starts,
                batch_size=cfg.batch_size,
                tau=cfg.tau,
                train_freq=cfg.train_freq,
                gradient_steps=cfg.gradient_steps,
                ent_coef=ent_coef,
            )
            if cfg.image_shift:
                algo.update(replay_buffer_class=ShiftedReplayBuffer, replay_buffer_kwargs={"pad": cfg.image_shift})
        else:
            assert isinstance(cfg, PPOConfig)
            algo = dict(
                n_steps=cfg.n_steps,
                batch_size=cfg.batch_size,
                n_epochs=cfg.n_epochs,
                gae_lambda=cfg.gae_lambda,
                clip_range=cfg.clip_range,
                ent_coef=cfg.ent_coef,
                vf_coef=cfg.vf_coef,
                max_grad_norm=cfg.max_grad_norm,
            )
        self.model = _ALGOS[self.algo](policy, env, **common, **algo)
        self._build_info = {"n_envs": env.num_envs, "buffer_size": buffer_size}

    # --- Agent API -----------------------------------------------------------------
    def learn(self, env: Any, total_steps: int, hooks: TrainHooks) -> None:
        vec = self._normalized(env.make_vec())
        if self.model is None:
            self._build(vec, buffer_size=max(1, min(getattr(self.config, "buffer_size", 1), total_steps)))
        else:
            self.model.set_env(vec)
        try:
            remaining = total_steps - self.model.num_timesteps
            if remaining > 0:
                self.model.learn(
                    remaining,
                    callback=self._callback(hooks),
                    log_interval=None,
                    reset_num_timesteps=False,
                    progress_bar=False,
                )
        finally:
            vec.close()
        self.num_steps = self.model.num_timesteps

    def _callback(self, hooks: TrainHooks) -> BaseCallback:
        """What SB3 calls during `learn`; subclasses add their own callbacks here."""
        return _HooksCallback(self, hooks)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        if self.model is None:
            raise CheckpointError("the agent has no model yet: train it or load a checkpoint first")
        action, _ = self.model.predict(self._normalize_obs(obs), deterministic=deterministic)
        return action

    def training_metrics(self) -> dict[str, float]:
        """Latest SB3 training values: losses as losses/*, schedules and counters as charts/*."""
        logger = getattr(self.model, "_logger", None)  # SB3 makes it in learn(): none after a resume with no steps left
        if logger is None:
            return {}
        out = {}
        for key, value in logger.name_to_value.items():
            name = key.split("/", 1)[-1]
            if key.startswith("train/") and np.isscalar(value):
                group = "charts" if name in ("learning_rate", "n_updates", "clip_range", "std") else "losses"
                out[f"{group}/{name}"] = float(value)
        return out

    # --- checkpoints ---------------------------------------------------------------
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.model is not None
        if isinstance(self.model, SAC):
            opts = {"actor": self.model.actor.optimizer, "critic": self.model.critic.optimizer}
            if self.model.ent_coef_optimizer is not None:
                opts["ent_coef"] = self.model.ent_coef_optimizer
            return opts
        return {"policy": self.model.policy.optimizer}

    def save(self, directory: Path) -> None:
        if self.model is None:
            raise CheckpointError("nothing to save: the agent has no model yet")
        directory = Path(directory)
        save_model(self.model.policy, str(directory / "model.safetensors"))
        meta = {
            "agent": self.config.name,
            "config": dataclasses.asdict(self.config),
            "build": self._build_info,
            "num_timesteps": int(self.model.num_timesteps),
        }
        (directory / "config.json").write_text(json.dumps(meta, indent=1))
        state: dict[str, Any] = {
            "optimizers": {name: opt.state_dict() for name, opt in self._optimizers().items()},
            "counters": {
                "num_timesteps": int(self.model.num_timesteps),
                "n_updates": int(self.model._n_updates),
                "episode_num": int(getattr(self.model, "_episode_num", 0)),
            },
        }
        if isinstance(self.model, SAC) and self.model.log_ent_coef is not None:
            state["log_ent_coef"] = self.model.log_ent_coef.detach()
        save_state(state, directory, "algo_state")
        if isinstance(self.model, SAC) and self.include_replay_buffer:
            save_state(_replay_state(self.model.replay_buffer), directory, "replay_buffer")
        if self.ret_rms is not None:
            save_state(_rms_state(self.obs_rms, self.ret_rms), directory, "normalizer")

    def load(self, directory: Path) -> None:
        directory = Path(directory)
        try:
            meta = json.loads((directory / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(f"cannot read {directory / 'config.json'}: {err}") from None
        if meta.get("agent") != self.config.name:
            raise CheckpointError(
                f"checkpoint '{directory}' holds agent '{meta.get('agent')}', not '{self.config.name}'"
            )
        build = meta["build"]
        if self.model is None:
            spaces_env = DummyVecEnv(
                [lambda: _SpacesOnlyEnv(self.observation_space, self.action_space)] * build["n_envs"]
            )
            self._build(spaces_env, buffer_size=build["buffer_size"])
        assert self.model is not None
        try:
            missing, unexpected = load_model(
                self.model.policy, str(directory / "model.safetensors"), strict=False, device=str(self.device)
            )
        except Exception as err:  # noqa: BLE001 - any safetensors failure is a bad checkpoint
            raise CheckpointError(
                f"cannot load weights from '{directory}': {' '.join(str(err).split())[:200]}"
            ) from None
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint '{directory}' does not fit this model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); check agent.net_arch and the env"
            )
        state = load_state(directory, "algo_state")
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        counters = state["counters"]
        self.model.num_timesteps = counters["num_timesteps"]
        self.model._n_updates = counters["n_updates"]
        if hasattr(self.model, "_episode_num"):
            self.model._episode_num = counters["episode_num"]
        if "log_ent_coef" in state:
            with torch.no_grad():
                self.model.log_ent_coef.copy_(state["log_ent_coef"])
        if isinstance(self.model, SAC) and (directory / "replay_buffer.safetensors").exists():
            _restore_replay(self.model.replay_buffer, load_state(directory, "replay_buffer"))
        if self.normalizes:
            if not (directory / "normalizer.safetensors").exists():
                raise CheckpointError(
                    f"checkpoint '{directory}' has no normalizer statistics but agent.normalize_obs/normalize_reward is on; load it with both off"
                )
            self.obs_rms, self.ret_rms = _restore_rms(load_state(directory, "normalizer"))
        elif (directory / "normalizer.safetensors").exists():
            raise CheckpointError(
                f"checkpoint '{directory}' was trained with normalised observations or rewards; load it with the agent.normalize_obs/normalize_reward it was trained with"
            )
        self.num_steps = self.model.num_timesteps


def _rms_state(obs_rms: RunningMeanStd | None, ret_rms: RunningMeanStd) -> dict[str, Any]:
    def one(rms: RunningMeanStd | None) -> dict[str, Any] | None:
        if rms is None:
            return None
        return {"mean": torch.as_tensor(rms.mean), "var": torch.as_tensor(rms.var), "count": float(rms.count)}

    return {"obs": one(obs_rms), "ret": one(ret_rms)}


def _restore_rms(state: dict[str, Any]) -> tuple[RunningMeanStd | None, RunningMeanStd]:
    def one(s: dict[str, Any] | None) -> RunningMeanStd | None:
        if s is None:
            return None
        rms = RunningMeanStd(shape=tuple(s["mean"].shape))
        rms.mean, rms.var, rms.count = s["mean"].double().numpy(), s["var"].double().numpy(), float(s["count"])
        return rms

    return one(state["obs"]), one(state["ret"])


_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _replay_state(buffer: Any) -> dict[str, Any]:
    size = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {}
    for name in _BUFFER_FIELDS:
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            arrays[name] = {k: v[:size] for k, v in value.items()}
        elif value is not None:
            arrays[name] = value[:size]
    return {"pos": int(buffer.pos), "full": bool(buffer.full), "size": int(size), "arrays": arrays}


def _restore_replay(buffer: Any, state: dict[str, Any]) -> None:
    size = state["size"]
    if size > buffer.buffer_size:
        raise CheckpointError(
            f"replay buffer in checkpoint holds {size} transitions, more than this buffer's {buffer.buffer_size}"
        )
    for name, value in state["arrays"].items():
        target = getattr(buffer, name)
        if isinstance(value, dict):
            for k, v in value.items():
                target[k][:size] = v
        else:
            target[:size] = value
    buffer.pos, buffer.full = state["pos"], state["full"]
