"""One critic per reward, and how their advantages become one policy signal.

This part of SLIM does not depend on the actor-critic algorithm: `MultiCritic` holds
K independent value networks (no shared parameters, so critic k is trained only on
reward k), `gae` computes one advantage and return per reward column, and
`combine_advantages` normalises each critic's advantages separately before the
weighted sum that the actor ascends. A single critic on the summed reward is the
same code with K = 1 and the rewards summed first (`sum_rewards`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers of `sizes` with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MultiCritic(nn.Module):
    """K value functions V_k(x), one network each: (B, in_dim) -> (B, K)."""

    def __init__(self, in_dim: int, num_critics: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(mlp([in_dim, *hidden, 1]) for _ in range(num_critics))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=-1)

    def loss(self, x: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """Sum over critics of each critic's MSE to its own return column (B, K)."""
        return ((self(x) - returns) ** 2).mean(dim=0).sum()


def sum_rewards(rewards: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(..., K) reward columns -> (..., 1) weighted sum: the naive single-critic reward."""
    return (rewards * weights).sum(dim=-1, keepdim=True)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, one column per critic.

    Args:
        rewards, values, next_values: (T, N, K): reward of step t, V(s_t) and V(s_{t+1})
            (s_{t+1} is the true next state, also when the env was reset after it).
        terminated: (T, N) 1 where s_{t+1} is terminal (no bootstrap); a time-limit
            truncation bootstraps from V(s_{t+1}).
        dones: (T, N) 1 where the episode ended at step t, either way (the recursion stops).
    Returns:
        advantages, returns: (T, N, K).
    """
    deltas = rewards + gamma * (1.0 - terminated).unsqueeze(-1) * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * (1.0 - dones[t]).unsqueeze(-1) * running
        advantages[t] = running
    return advantages, advantages + values


def normalize(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Standardise each column of (B, K) advantages on its own."""
    return (advantages - advantages.mean(dim=0)) / (advantages.std(dim=0) + eps)


def combine_advantages(advantages: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, K) per-critic advantages -> (B,) weighted sum of the per-critic normalised ones."""
    return (normalize(advantages) * weights).sum(dim=-1)
