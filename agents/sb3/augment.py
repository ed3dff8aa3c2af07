"""DrQ's random shift for SAC from pixels (Yarats et al., 2021), applied where it belongs: replay batches.

Each image in a sampled batch is padded by `pad` pixels (edge replicated) and cropped back to
its size at a random offset, the observation and the next observation independently. The
policy acting in the env sees the images as they are; only the updates see shifted ones.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import DictReplayBufferSamples


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Batch (N, C, H, W) shifted by up to `pad` pixels each way, one random offset per image; same dtype."""
    n, c, h, w = images.shape
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols].to(images.dtype)


def image_keys(space: gym.Space) -> list[str]:
    """Keys of a Dict observation space that SB3 treats as images (what its CNN encodes)."""
    if not isinstance(space, gym.spaces.Dict):
        return []
    return [key for key, sub in space.spaces.items() if is_image_space(sub, check_channels=False)]


class ShiftedReplayBuffer(DictReplayBuffer):
    """SB3's dict replay buffer whose samples carry randomly shifted images (DrQ)."""

    def __init__(self, *args: Any, pad: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pad = pad
        self.images = image_keys(self.observation_space)

    def _get_samples(self, batch_inds: Any, env: Any = None) -> DictReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)

        def shifted(obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {key: random_shift(value, self.pad) if key in self.images else value for key, value in obs.items()}

        return samples._replace(
            observations=shifted(samples.observations), next_observations=shifted(samples.next_observations)
        )
