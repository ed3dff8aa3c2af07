"""Networks of the `ptp` diffusion policy: a per-frame observation encoder and a DiT head.

FrameEncoder: one observation frame -> one embedding (what stage 2 caches). Each camera
goes through its own ResNet-18-GN (random crop in training), global-average pooled, and
is concatenated with the low-dimensional observations; an MLP maps that to `embed_dim`.

DiffusionTransformer (Diffusion Policy's transformer, Chi et al. 2023): the noisy action
tokens are the decoder's queries, with causal self-attention; the condition tokens are
[diffusion timestep, frame embeddings t-To+1 .. t] (cross-attention). Action token i
(time t-To+1+i) may read the frames up to its own time, so a past action is predicted
from what the policy had seen when it acted, never from the frame that shows its effect.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from embodied.nn import ImageEncoder, sinusoidal, transformer_decoder


class FrameEncoder(nn.Module):
    """Dict of (N, ...) observation tensors -> (N, embed_dim)."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], embed_dim: int, crop_fraction: float) -> None:
        super().__init__()
        self.cameras = sorted(k for k, shape in obs_shapes.items() if len(shape) == 3)
        self.lowdim = sorted(k for k, shape in obs_shapes.items() if len(shape) == 1)
        self.images = nn.ModuleDict({c: ImageEncoder(obs_shapes[c][:2], crop_fraction) for c in self.cameras})
        width = 512 * len(self.cameras) + sum(obs_shapes[k][0] for k in self.lowdim)
        self.mlp = nn.Sequential(nn.Linear(width, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, obs: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        parts = [self.images[c](obs[f"obs/{c}"], generator).mean(dim=(-2, -1)) for c in self.cameras]
        parts += [obs[f"obs/{k}"].float() for k in self.lowdim]
        return self.mlp(torch.cat(parts, dim=-1))


class DiffusionTransformer(nn.Module):
    """ε-prediction head: (noisy actions (B, T, A), timesteps (B,), frames (B, To, E)) -> (B, T, A)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        n_obs_steps: int,
        embed_dim: int,
        dim: int,
        layers: int,
        heads: int,
        attn_dropout: float,
        emb_dropout: float,
    ) -> None:
        super().__init__()
        self.horizon, self.n_obs_steps, self.dim = horizon, n_obs_steps, dim
        self.action_in = nn.Linear(action_dim, dim)
        self.action_pos = nn.Parameter(torch.randn(1, horizon, dim) * 0.02)
        self.cond_in = nn.Linear(embed_dim, dim)
        self.cond_pos = nn.Parameter(torch.randn(1, 1 + n_obs_steps, dim) * 0.02)
        self.cond_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(emb_dropout)
        self.decoder = transformer_decoder(dim, layers, heads, 4 * dim, attn_dropout)
        self.action_out = nn.Linear(dim, action_dim)
        # True = may not attend. Queries are action tokens; keys the causal past / the condition tokens.
        token = torch.arange(horizon)
        self.register_buffer("causal_mask", token[None, :] > token[:, None], persistent=False)
        frame = torch.arange(n_obs_steps)  # frame j and action token j share a time step
        sees = torch.cat([torch.ones(horizon, 1, dtype=torch.bool), frame[None, :] <= token[:, None]], dim=1)
        self.register_buffer("memory_mask", ~sees, persistent=False)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        time_token = sinusoidal(timesteps.reshape(-1).expand(len(actions)), self.dim)[:, None]
        cond = torch.cat([time_token.to(frames.dtype), self.cond_in(frames)], dim=1) + self.cond_pos
        memory = self.cond_mlp(self.drop(cond))
        x = self.drop(self.action_in(actions) + self.action_pos)
        x = self.decoder(x, memory, tgt_mask=self.causal_mask, memory_mask=self.memory_mask)
        return self.action_out(x)


class PTPNetworks(nn.Module):
    """The encoder, the long-context head and (multistage only) the short-context stage-1 head."""

    def __init__(
        self, obs_shapes: dict[str, tuple[int, ...]], action_dim: int, cfg, stage1_obs_steps: int | None
    ) -> None:
        super().__init__()
        self.encoder = FrameEncoder(obs_shapes, cfg.embed_dim, cfg.crop_fraction)
        head = dict(
            action_dim=action_dim,
            embed_dim=cfg.embed_dim,
            dim=cfg.dim,
            layers=cfg.layers,
            heads=cfg.heads,
            attn_dropout=cfg.attn_dropout,
            emb_dropout=cfg.emb_dropout,
        )
        self.head = DiffusionTransformer(horizon=cfg.horizon, n_obs_steps=cfg.n_obs_steps, **head)
        self.stage1_head = None
        if stage1_obs_steps is not None:  # same future, shorter past
            horizon = cfg.horizon - (cfg.n_obs_steps - stage1_obs_steps)
            self.stage1_head = DiffusionTransformer(horizon=horizon, n_obs_steps=stage1_obs_steps, **head)


class PTPPolicy(nn.Module):
    """The trained networks (`net`) and, when enabled, their EMA copy (`ema`) used for acting."""

    def __init__(self, net: PTPNetworks, ema: bool) -> None:
        super().__init__()
        self.net = net
        self.ema = copy.deepcopy(net).requires_grad_(False) if ema else None

    def acting(self) -> PTPNetworks:
        """The networks that act and write embedding caches: the EMA copy if there is one."""
        return self.ema if self.ema is not None else self.net

    @torch.no_grad()
    def update_ema(self, decay: float, modules: Sequence[str] = ("encoder", "head", "stage1_head")) -> None:
        if self.ema is None:
            return
        for name in modules:
            live, avg = getattr(self.net, name), getattr(self.ema, name)
            if live is None:
                continue
            for p_avg, p in zip(avg.parameters(), live.parameters()):
                p_avg.lerp_(p.detach(), 1.0 - decay)
