"""Skills and the mutual-information skill-discovery rewards (LSD and DIAYN).

- `SkillPrior`: draws the skill of an episode, as the vector the policy sees.
- `LSD` (Park et al., 2022): a 1-Lipschitz phi (spectral-normalised MLP, ReLU) trained
  to maximise (phi(s') - phi(s))^T z; that product is the reward. Lipschitz in the
  raw state (metres, for the Tabletop object), so phi can only grow by moving the object.
- `DIAYN` (Eysenbach et al., 2019): a discriminator q(z|s'); the reward is
  log q(z|s') - log p(z). For continuous skills q is a Gaussian of fixed std.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from embodied.agents.slim.critics import mlp


class SkillPrior:
    """p(z): continuous N(0, I) of `dim`, or `dim` discrete skills (given to the policy as vectors)."""

    def __init__(self, kind: str, dim: int, centred: bool) -> None:
        """`centred`: discrete skills as zero-centred one-hots (LSD's form) instead of plain one-hots."""
        self.kind, self.dim, self.centred = kind, dim, centred

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, dim) float32 skill vectors."""
        if self.kind == "continuous":
            return rng.standard_normal((n, self.dim)).astype(np.float32)
        return self.vectors(rng.integers(self.dim, size=n))

    def vectors(self, index: np.ndarray) -> np.ndarray:
        """Discrete skill indices -> the vectors the policy sees."""
        onehot = np.eye(self.dim, dtype=np.float32)[np.asarray(index)]
        return (onehot * self.dim - 1) / (self.dim - 1) if self.centred else onehot

    def index(self, z: torch.Tensor) -> torch.Tensor:
        """Discrete skill vectors -> indices."""
        return z.argmax(dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "continuous":
            return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return torch.full(z.shape[:-1], -math.log(self.dim), device=z.device)


class LSD(nn.Module):
    """phi: discovery state -> skill space, 1-Lipschitz; reward (phi(s') - phi(s))^T z."""

    def __init__(self, in_dim: int, skill_dim: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [in_dim, *hidden, skill_dim]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(spectral_norm(nn.Linear(a, b)))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.phi = nn.Sequential(*layers)

    def reward(self, s: torch.Tensor, s_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return ((self.phi(s_next) - self.phi(s)) * z).sum(-1)

    def loss(self, s: torch.Tensor, s_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -self.reward(s, s_next, z).mean()


class DIAYN(nn.Module):
    """q(z|s'): Gaussian mean (continuous skills) or logits (discrete); reward log q(z|s') - log p(z)."""

    def __init__(self, in_dim: int, prior: SkillPrior, hidden: list[int], std: float) -> None:
        super().__init__()
        self.prior, self.std = prior, std
        self.net = mlp([in_dim, *hidden, prior.dim], nn.ReLU)

    def log_q(self, s_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = self.net(s_next)
        if self.prior.kind == "discrete":
            return torch.log_softmax(out, -1).gather(-1, self.prior.index(z)[..., None]).squeeze(-1)
        var = self.std**2
        return -0.5 * ((z - out) ** 2).sum(-1) / var - 0.5 * self.prior.dim * math.log(2 * math.pi * var)

    def reward(self, s: torch.Tensor, s_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.log_q(s_next, z) - self.prior.log_prob(z)

    def loss(self, s: torch.Tensor, s_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -self.log_q(s_next, z).mean()
