"""ACT-JEPA's networks: context encoder, EMA target encoder, latent predictor, action decoder, CVAE.

Shapes (B batch, T = chunk, d = dim):
- context encoder: tokens [task, (CVAE latent), proprio state, image patches...] -> (B, N, d)
- target encoder (EMA copy, no gradient): [task, s_t+1 ... s_t+T] -> (B, T, d) latents
- predictor: T learned queries (width predictor_dim) cross-attend to the context -> (B, T, d)
- action decoder: T learned queries cross-attend to the context -> (B, T, action_dim)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from embodied.agents.act_jepa.config import ACTConfig
from embodied.nn import ImageEncoder, sinusoidal_1d, sinusoidal_2d, transformer_decoder, transformer_encoder


class ContextEncoder(nn.Module):
    """Transformer encoder over the current observation's tokens; `encode_sequence` is the
    target-encoder path over a sequence of proprioceptive states."""

    def __init__(
        self,
        cfg: ACTConfig,
        n_tasks: int,
        proprio_dim: int,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (64, 64),
    ) -> None:
        super().__init__()
        d = cfg.dim
        self.task_embed = nn.Embedding(n_tasks, d)
        self.state_proj = nn.Linear(proprio_dim, d)
        self.latent_proj = nn.Linear(cfg.latent_dim, d) if cfg.cvae else None
        self.slot_pos = nn.Parameter(torch.randn(3 if cfg.cvae else 2, d) * 0.02)
        self.cameras = list(cameras)
        if self.cameras:
            self.image_encoder = ImageEncoder(image_size, cfg.crop_fraction)
            self.image_proj = nn.Conv2d(self.image_encoder.backbone.out_channels, d, 1)
            self.camera_pos = nn.Parameter(torch.randn(len(self.cameras), d) * 0.02)
            self.register_buffer("image_pos", sinusoidal_2d(*self.image_encoder.feature_shape(), d), persistent=False)
        self.register_buffer("sequence_pos", sinusoidal_1d(cfg.chunk, d), persistent=False)
        self.transformer = transformer_encoder(d, cfg.encoder_layers, cfg.heads, cfg.ffn, cfg.dropout)

    def forward(
        self,
        task: torch.Tensor,
        state: torch.Tensor,
        images: dict[str, torch.Tensor] | None = None,
        latent: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """task (B,) int64, state (B, P), images {camera: (B, H, W, 3) uint8}, latent (B, L) -> (B, N, d)."""
        slots = [self.task_embed(task)]
        if self.latent_proj is not None:
            slots.append(
                self.latent_proj(
                    latent if latent is not None else state.new_zeros(len(state), self.latent_proj.in_features)
                )
            )
        slots.append(self.state_proj(state))
        tokens = [torch.stack(slots, 1) + self.slot_pos]
        for i, camera in enumerate(self.cameras):
            features = self.image_proj(self.image_encoder(images[camera], generator))  # (B, d, h, w)
            tokens.append(features.flatten(2).transpose(1, 2) + self.image_pos + self.camera_pos[i])
        return self.transformer(torch.cat(tokens, 1))

    def encode_sequence(self, task: torch.Tensor, states: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """task (B,), states (B, T, P), pad (B, T) True where padded -> (B, T, d) latents."""
        first = (self.task_embed(task) + self.slot_pos[0])[:, None]
        tokens = torch.cat([first, self.state_proj(states) + self.sequence_pos[: states.shape[1]]], 1)
        mask = torch.cat([pad.new_zeros(len(pad), 1), pad], 1)
        return self.transformer(tokens, src_key_padding_mask=mask)[:, 1:]


class QueryDecoder(nn.Module):
    """`n` learned queries cross-attending to a memory; optional projections in and out."""

    def __init__(
        self, n: int, memory_dim: int, dim: int, layers: int, heads: int, ffn: int, dropout: float, out_dim: int
    ) -> None:
        super().__init__()
        self.in_proj = nn.Linear(memory_dim, dim) if memory_dim != dim else nn.Identity()
        self.queries = nn.Parameter(torch.randn(n, dim) * 0.02)
        self.decoder = transformer_decoder(dim, layers, heads, ffn, dropout)
        self.out_proj = nn.Linear(dim, out_dim)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(len(memory), -1, -1)
        return self.out_proj(self.decoder(queries, self.in_proj(memory)))


class CVAEEncoder(nn.Module):
    """The original ACT's style encoder: [CLS, state, a_t..a_t+T] -> (mu, logvar) of z."""

    def __init__(self, cfg: ACTConfig, proprio_dim: int, action_dim: int) -> None:
        super().__init__()
        d = cfg.dim
        self.cls = nn.Parameter(torch.randn(1, d) * 0.02)
        self.state_proj = nn.Linear(proprio_dim, d)
        self.action_proj = nn.Linear(action_dim, d)
        self.register_buffer("pos", sinusoidal_1d(cfg.chunk + 2, d), persistent=False)
        self.transformer = transformer_encoder(d, cfg.cvae_layers, cfg.heads, cfg.ffn, cfg.dropout)
        self.to_latent = nn.Linear(d, 2 * cfg.latent_dim)

    def forward(
        self, state: torch.Tensor, actions: torch.Tensor, pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b = len(state)
        tokens = torch.cat([self.cls.expand(b, 1, -1), self.state_proj(state)[:, None], self.action_proj(actions)], 1)
        mask = torch.cat([pad.new_zeros(b, 2), pad], 1)
        out = self.transformer(tokens + self.pos[: tokens.shape[1]], src_key_padding_mask=mask)[:, 0]
        mu, logvar = self.to_latent(out).chunk(2, dim=-1)
        return mu, logvar


class ACTJEPAModel(nn.Module):
    """All trainable parts plus the EMA target encoder (a buffer-like module without gradients)."""

    def __init__(
        self,
        cfg: ACTConfig,
        n_tasks: int,
        proprio_dim: int,
        action_dim: int,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (64, 64),
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ContextEncoder(cfg, n_tasks, proprio_dim, cameras, image_size)
        self.action_decoder = QueryDecoder(
            cfg.chunk, cfg.dim, cfg.dim, cfg.decoder_layers, cfg.heads, cfg.ffn, cfg.dropout, action_dim
        )
        self.cvae = CVAEEncoder(cfg, proprio_dim, action_dim) if cfg.cvae else None
        self.predictor = self.target = None
        if cfg.jepa:
            self.predictor = QueryDecoder(
                cfg.chunk,
                cfg.dim,
                cfg.predictor_dim,
                cfg.predictor_layers,
                cfg.predictor_heads,
                cfg.predictor_ffn,
                cfg.dropout,
                cfg.dim,
            )
            # The target sees states only, so it is a context encoder without the image branch.
            self.target = ContextEncoder(cfg, n_tasks, proprio_dim, cameras=())
            self.target.load_state_dict(self.encoder.state_dict(), strict=False)
            self.target.requires_grad_(False)
            self.target.eval()

    def train(self, mode: bool = True) -> ACTJEPAModel:
        super().train(mode)
        if self.target is not None:
            self.target.eval()  # the target never uses dropout
        return self

    def target_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(target params, matching context-encoder params), for the EMA update."""
        assert self.target is not None
        online = dict(self.encoder.named_parameters())
        names = [name for name, _ in self.target.named_parameters()]
        return [p for _, p in self.target.named_parameters()], [online[n] for n in names]

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * context encoder."""
        targets, online = self.target_pairs()
        torch._foreach_mul_(targets, momentum)
        torch._foreach_add_(targets, [p.detach() for p in online], alpha=1.0 - momentum)

    def predict_actions(
        self, task: torch.Tensor, state: torch.Tensor, images: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Inference: (B, T, action_dim) normalised actions (the CVAE latent is its prior mean, 0)."""
        return self.action_decoder(self.encoder(task, state, images))
