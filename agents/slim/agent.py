"""SLIM (`slim`): PPO with skills, one critic per reward, advantages normalised per critic.

One iteration, top to bottom (`learn`):
1. collect `n_steps` steps in every env; each env's skill z is drawn at its episode
   start and fixed for the episode; reach and safety rewards come from `info`;
2. fit the skill model (LSD's phi or DIAYN's q) on the rollout, then compute the
   discovery reward of every transition with it;
3. per-critic GAE: critic k sees only reward column k (`critics=multi`), or one
   critic sees their weighted sum (`critics=single`, the naive combination);
4. PPO's clipped update of the actor on the weighted sum of the per-critic normalised
   advantages, and of each critic on its own returns (gradients clipped per network);
5. update the observation normaliser.

Why PPO and not SAC: advantages exist per critic and are normalised per critic in
one line, without the per-critic target networks and replay of SAC; on-policy
skill rewards also never go stale as the skill model moves (LSD's phi changes
every iteration), and PPO is fast per env step on a CPU. The multi-critic part
(`critics.py`) does not depend on this choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from embodied.agent import Agent, TrainHooks
from embodied.agents.slim.config import SLIMConfig
from embodied.agents.slim.critics import combine_advantages, gae, sum_rewards
from embodied.agents.slim.discovery import DIAYN, LSD, SkillPrior
from embodied.agents.slim.model import SkillPolicy
from embodied.errors import CheckpointError, ConfigError


@dataclass
class Rollout:
    """`n_steps` x `num_envs` transitions (torch, on the agent's device)."""

    obs: torch.Tensor  # (T, N, D)
    next_obs: torch.Tensor  # (T, N, D): the true s_{t+1}, also at episode ends
    skills: torch.Tensor  # (T, N, Z)
    actions: torch.Tensor  # (T, N, A), as sampled (before clipping to the action bounds)
    terminated: torch.Tensor  # (T, N)
    dones: torch.Tensor  # (T, N): terminated or truncated
    env_rewards: dict[str, torch.Tensor]  # "reach", "safety": (T, N)


class SLIMAgent(Agent):
    """Skill-conditioned PPO with one critic per reward (SLIM) or one on their sum."""

    config: SLIMConfig

    def __init__(
        self,
        config: SLIMConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device, seed)
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ConfigError(f"agent slim needs flat Box observations (obs_mode=state), got {observation_space}")
        if not isinstance(action_space, gym.spaces.Box):
            raise ConfigError(f"agent slim needs continuous (Box) actions, got {action_space}")
        self.obs_dim, self.action_dim = observation_space.shape[0], action_space.shape[0]
        bad = [i for i in config.discovery_obs if not -self.obs_dim <= i < self.obs_dim]
        if bad:
            raise ConfigError(f"agent.discovery_obs {bad} out of range for {self.obs_dim}-d observations")
        self.rewards = config.rewards
        self.prior = SkillPrior(config.skill_type, config.skill_dim, centred=config.discovery == "lsd")
        self.num_critics = len(self.rewards) if config.critics == "multi" else 1
        self.policy = SkillPolicy(
            self.obs_dim, config.skill_dim, self.action_dim, config.net_arch, self.num_critics, config.log_std_init
        ).to(device)
        self.skill_model: nn.Module | None = None
        if "discovery" in self.rewards:
            n_in = len(config.discovery_obs)
            self.skill_model = (
                LSD(n_in, config.skill_dim, config.skill_hidden)
                if config.discovery == "lsd"
                else DIAYN(n_in, self.prior, config.skill_hidden, config.diayn_std)
            ).to(device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate, eps=1e-5)
        self.skill_optimizer = (
            torch.optim.Adam(self.skill_model.parameters(), lr=config.skill_lr)
            if self.skill_model is not None
            else None
        )
        self.reward_weights = torch.tensor(
            [config.weights[r] for r in self.rewards], dtype=torch.float32, device=device
        )
        self.advantage_weights = self.reward_weights if config.critics == "multi" else torch.ones(1, device=device)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.skill: np.ndarray | None = None
        """The skill `act` follows; `reset` draws a new one, `set_skill` fixes one."""
        self.metrics: dict[str, float] = {}
        self.final_metrics: dict[str, float] = {}

    # --- acting ------------------------------------------------------------------------
    def reset(self) -> None:
        self.skill = self.prior.sample(self.rng, 1)[0]

    def set_skill(self, z: np.ndarray) -> None:
        self.skill = np.asarray(z, dtype=np.float32)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        if self.skill is None:
            self.reset()
        actions = self.act_batch(np.asarray(obs, dtype=np.float32)[None], self.skill[None], deterministic)
        return actions[0]

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, skills: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions (clipped to the bounds) for (B, D) observations under (B, Z) skills."""
        x = self.policy.inputs(torch.as_tensor(obs, device=self.device), torch.as_tensor(skills, device=self.device))
        dist = self.policy.distribution(x)
        action = dist.mean if deterministic else dist.sample()
        return self._clip(action.cpu().numpy())

    def _clip(self, action: np.ndarray) -> np.ndarray:
        return np.clip(action, self.action_space.low, self.action_space.high).astype(np.float32)

    # --- training ----------------------------------------------------------------------
    def learn(self, env: Any, total_steps: int, hooks: TrainHooks) -> None:
        vec = env.make_vec()
        try:
            obs = vec.reset()
            skills = self.prior.sample(self.rng, vec.num_envs)
            while self.num_steps < total_steps:
                rollout, obs, skills, running = self.collect(
                    vec,
                    obs,
                    skills,
                    min(self.config.n_steps, -(-(total_steps - self.num_steps) // vec.num_envs)),
                    hooks,
                )
                self.update(rollout)
                self.policy.obs_norm.update(rollout.obs)
                if not running:
                    break
        finally:
            vec.close()

    def collect(
        self, vec: Any, obs: np.ndarray, skills: np.ndarray, n_steps: int, hooks: TrainHooks
    ) -> tuple[Rollout, np.ndarray, np.ndarray, bool]:
        """Step every env `n_steps` times (fewer if hooks ask to stop); return the rollout, the next obs and skills, and whether to go on."""
        keys = ("obs", "next_obs", "skills", "actions", "terminated", "dones", "reach", "safety")
        buf: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        contact, violations = [], []
        running = True
        for _ in range(n_steps):
            with torch.no_grad():
                x = self.policy.inputs(
                    torch.as_tensor(obs, device=self.device), torch.as_tensor(skills, device=self.device)
                )
                actions = self.policy.distribution(x).sample().cpu().numpy()
            next_obs, _, dones, infos = vec.step(self._clip(actions))
            true_next = np.array(next_obs, dtype=np.float32, copy=True)
            terminated = np.zeros(len(dones), dtype=np.float32)
            for i in np.flatnonzero(dones):
                true_next[i] = infos[i]["terminal_observation"]
                terminated[i] = 0.0 if infos[i].get("TimeLimit.truncated", False) else 1.0
            reach, safety = self._env_rewards(infos)
            for key, value in zip(
                keys, (obs, true_next, skills, actions, terminated, dones.astype(np.float32), reach, safety)
            ):
                buf[key].append(np.asarray(value, dtype=np.float32))
            contact.extend(float(info.get("contact", np.nan)) for info in infos)
            violations.extend(float(info.get("safety_violation", np.nan)) for info in infos)
            if dones.any():
                skills = skills.copy()
                skills[dones] = self.prior.sample(self.rng, int(dones.sum()))
            obs = next_obs
            self.num_steps += vec.num_envs
            if not hooks.on_step(self.num_steps, [info["episode"] for info in infos if "episode" in info]):
                running = False
                break
        t = {k: torch.as_tensor(np.stack(v), device=self.device) for k, v in buf.items()}
        rollout = Rollout(
            t["obs"],
            t["next_obs"],
            t["skills"],
            t["actions"],
            t["terminated"],
            t["dones"],
            {"reach": t["reach"], "safety": t["safety"]},
        )
        self.metrics.update(
            {
                "charts/contact_rate": float(np.nanmean(contact)) if contact else float("nan"),
                "charts/safety_violation_rate": float(np.nanmean(violations)) if violations else float("nan"),
            }
        )
        return rollout, obs, skills, running

    def _env_rewards(self, infos: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Reach reward (1 on contact, else 1 - tanh(scale * |ee - object|)) and safety reward -(number of safety events), per env."""
        reach = np.zeros(len(infos), dtype=np.float32)
        safety = np.zeros(len(infos), dtype=np.float32)
        for i, info in enumerate(infos):
            if "reach" in self.rewards:
                if "ee_pos" not in info or "object_pos" not in info:
                    raise ConfigError(
                        "the reach reward needs info['ee_pos'] and info['object_pos'] (embodied/Tabletop-v0 has them); set agent.weights.reach=0 for this env"
                    )
                touching = bool(
                    info.get("contact", False)
                )  # touching from the side (to push) scores as well as from above
                reach[i] = (
                    1.0
                    if touching
                    else 1.0
                    - np.tanh(
                        self.config.reach_scale
                        * np.linalg.norm(np.asarray(info["ee_pos"]) - np.asarray(info["object_pos"]))
                    )
                )
            if "safety" in self.rewards:
                if self.config.safety_key not in info:
                    raise ConfigError(
                        f"the safety reward needs info['{self.config.safety_key}'] (embodied/Tabletop-v0 has it); set agent.safety_key or agent.weights.safety=0"
                    )
                safety[i] = -float(info[self.config.safety_key])
        return reach, safety

    def discovery_inputs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., self.config.discovery_obs]

    def reward_columns(self, rollout: Rollout) -> torch.Tensor:
        """Fit the skill model on the rollout, then return the (T, N, K) rewards in `self.rewards` order."""
        columns = []
        for name in self.rewards:
            if name == "discovery":
                s, s_next = self.discovery_inputs(rollout.obs), self.discovery_inputs(rollout.next_obs)
                self._fit_skill_model(s, s_next, rollout.skills)
                self.skill_model.eval()  # no power-iteration step while scoring: one phi for the whole rollout
                with torch.no_grad():
                    columns.append(self.skill_model.reward(s, s_next, rollout.skills))
                self.skill_model.train()
            else:
                columns.append(rollout.env_rewards[name])
        rewards = torch.stack(columns, dim=-1)
        for k, name in enumerate(self.rewards):
            self.metrics[f"charts/reward_{name}"] = float(rewards[..., k].mean())
        return rewards

    def _fit_skill_model(self, s: torch.Tensor, s_next: torch.Tensor, z: torch.Tensor) -> None:
        s, s_next, z = s.reshape(-1, s.shape[-1]), s_next.reshape(-1, s_next.shape[-1]), z.reshape(-1, z.shape[-1])
        losses = []
        for _ in range(self.config.skill_epochs):
            for idx in torch.randperm(len(s), generator=self.generator).to(self.device).split(self.config.batch_size):
                loss = self.skill_model.loss(s[idx], s_next[idx], z[idx])
                self.skill_optimizer.zero_grad()
                loss.backward()
                self.skill_optimizer.step()
                losses.append(float(loss.detach()))
        if losses:
            self.metrics["losses/skill_model"] = float(np.mean(losses))

    def update(self, rollout: Rollout, rewards: torch.Tensor | None = None) -> None:
        """One PPO update on `rollout` (`rewards`: the (T, N, K) reward columns; computed when None)."""
        cfg = self.config
        if rewards is None:
            rewards = self.reward_columns(rollout)
        if cfg.critics == "single":
            rewards = sum_rewards(rewards, self.reward_weights)
        policy = self.policy
        with torch.no_grad():
            x = policy.inputs(rollout.obs, rollout.skills)
            values = policy.critic(x)
            next_values = policy.critic(policy.inputs(rollout.next_obs, rollout.skills))
            advantages, returns = gae(
                rewards, values, next_values, rollout.terminated, rollout.dones, cfg.gamma, cfg.gae_lambda
            )
            x, actions = x.reshape(-1, x.shape[-1]), rollout.actions.reshape(-1, self.action_dim)
            old_log_prob = policy.distribution(x).log_prob(actions).sum(-1)
            advantage = combine_advantages(advantages.reshape(-1, self.num_critics), self.advantage_weights)
            returns = returns.reshape(-1, self.num_critics)
        stats: dict[str, list[float]] = {"policy": [], "value": [], "entropy": [], "approx_kl": [], "clip_fraction": []}
        for _ in range(cfg.n_epochs):
            for idx in torch.randperm(len(x), generator=self.generator).to(self.device).split(cfg.batch_size):
                dist = policy.distribution(x[idx])
                log_ratio = dist.log_prob(actions[idx]).sum(-1) - old_log_prob[idx]
                ratio = log_ratio.exp()
                policy_loss = -torch.min(
                    ratio * advantage[idx], ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range) * advantage[idx]
                ).mean()
                entropy = dist.entropy().sum(-1).mean()
                value_loss = policy.critic.loss(x[idx], returns[idx])
                self.optimizer.zero_grad()
                (policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss).backward()
                self._clip_gradients()
                self.optimizer.step()
                for key, value in (
                    ("policy", policy_loss),
                    ("value", value_loss),
                    ("entropy", entropy),
                    ("approx_kl", (ratio - 1 - log_ratio).mean()),
                    ("clip_fraction", ((ratio - 1).abs() > cfg.clip_range).float().mean()),
                ):
                    stats[key].append(float(value.detach()))
        self.metrics.update({f"losses/{k}": float(np.mean(v)) for k, v in stats.items()})
        self.metrics["charts/action_std"] = float(policy.log_std.detach().exp().mean())

    def _clip_gradients(self) -> None:
        """Clip the actor's and each critic's gradients separately, so no critic's step depends on another's reward."""
        actor = [*self.policy.actor.parameters(), self.policy.log_std]
        for group in (actor, *(head.parameters() for head in self.policy.critic.heads)):
            nn.utils.clip_grad_norm_(list(group), self.config.max_grad_norm)

    def training_metrics(self) -> dict[str, float]:
        return dict(self.metrics)

    # --- after training: skill metrics, skill video, planner ------------------------------
    def final_report(self, factory: Any, run_dir: Path) -> dict[str, float]:
        """Measure the learned skills (coverage, contact, safety), write videos/skills_grid.mp4 and run the planner."""
        from embodied.agents.slim.skills import report

        self.final_metrics = report(self, factory, Path(run_dir))
        return self.final_metrics

    # --- checkpoints ---------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, **({"skill_model": self.skill_model} if self.skill_model is not None else {})}

    def save(self, directory: Path) -> None:
        from embodied.checkpoint import write_agent_files

        tensors = {f"{name}.{k}": v for name, module in self._modules().items() for k, v in module.state_dict().items()}
        meta = {
            "agent": self.config.name,
            "config": dataclasses.asdict(self.config),
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "num_steps": self.num_steps,
        }
        optimizers = {
            "policy": self.optimizer.state_dict(),
            **({"skill_model": self.skill_optimizer.state_dict()} if self.skill_optimizer else {}),
        }
        state = {
            "optimizers": optimizers,
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "num_steps": self.num_steps,
            "final_metrics": self.final_metrics,
        }
        write_agent_files(directory, tensors, meta, state)

    def load(self, directory: Path) -> None:
        from embodied.checkpoint import read_agent_files

        meta, tensors, state = read_agent_files(directory, self.config.name)
        if (meta["obs_dim"], meta["action_dim"]) != (self.obs_dim, self.action_dim):
            raise CheckpointError(
                f"checkpoint '{directory}' was trained on {meta['obs_dim']}-d observations and {meta['action_dim']}-d actions; this env gives {self.obs_dim} and {self.action_dim}"
            )
        for name, module in self._modules().items():
            prefix = f"{name}."
            weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(weights)
            except RuntimeError as err:
                raise CheckpointError(
                    f"checkpoint '{directory}' does not fit this {name} ({str(err).splitlines()[0][:120]}); check agent.critics, weights, discovery and the sizes match the run's"
                ) from None
        try:
            self.optimizer.load_state_dict(state["optimizers"]["policy"])
            if self.skill_optimizer is not None:
                self.skill_optimizer.load_state_dict(state["optimizers"]["skill_model"])
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"checkpoint '{directory}' optimiser state does not fit this agent ({err})") from None
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        self.num_steps = int(state["num_steps"])
        self.final_metrics = dict(state.get("final_metrics") or {})
