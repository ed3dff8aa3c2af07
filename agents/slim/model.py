"""SLIM's networks: a skill-conditioned Gaussian actor, the critics, and a running observation normaliser."""

from __future__ import annotations

import torch
from torch import nn

from embodied.agents.slim.critics import MultiCritic, mlp


class RunningNorm(nn.Module):
    """Running mean / variance of observations (parallel-variance update); normalises and clips to +-clip."""

    def __init__(self, dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        mean, var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = mean - self.mean, self.count + n
        self.var.copy_((self.var * self.count + var * n + delta**2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (x - self.mean.float()) / torch.sqrt(self.var.float() + 1e-8)
        return out.clamp(-self.clip, self.clip)


class SkillPolicy(nn.Module):
    """pi(a | s, z) (Gaussian, state-independent std) and K critics V_k(s, z)."""

    def __init__(
        self, obs_dim: int, skill_dim: int, action_dim: int, hidden: list[int], num_critics: int, log_std_init: float
    ) -> None:
        super().__init__()
        self.obs_norm = RunningNorm(obs_dim)
        self.actor = mlp([obs_dim + skill_dim, *hidden, action_dim])
        self.log_std = nn.Parameter(torch.full((action_dim,), log_std_init))
        self.critic = MultiCritic(obs_dim + skill_dim, num_critics, hidden)

    def inputs(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.obs_norm(obs), z], dim=-1)

    def distribution(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.actor(x), self.log_std.exp())
