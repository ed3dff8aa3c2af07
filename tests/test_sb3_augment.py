"""DrQ's random shift for SAC from pixels: what the updates see, and what acting does not."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from embodied.agents.sb3.agent import SB3Agent
from embodied.agents.sb3.augment import ShiftedReplayBuffer, image_keys, random_shift
from embodied.agents.sb3.config import SACConfig
from embodied.errors import ConfigError

SPACE = gym.spaces.Dict(
    {
        "corner": gym.spaces.Box(0, 255, (3, 16, 16), np.uint8),
        "state": gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
    }
)


def test_a_shift_is_a_crop_of_the_edge_padded_image():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    out = random_shift(images, 4)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    padded = torch.nn.functional.pad(images.float(), (4, 4, 4, 4), mode="replicate").to(torch.uint8)
    offsets = set()
    for i in range(len(images)):
        (match,) = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(out[i], padded[i, :, dy : dy + 16, dx : dx + 16])
        ]
        offsets.add(match)
    assert len(offsets) > 20, "offsets vary image by image"
    assert torch.equal(random_shift(images, 0), images)


def test_replay_samples_are_shifted_independently_and_the_state_is_not():
    buffer = ShiftedReplayBuffer(100, SPACE, gym.spaces.Box(-1, 1, (2,)), device="cpu", pad=4)
    rng = np.random.default_rng(0)
    for _ in range(50):
        obs = {"corner": rng.integers(0, 256, (1, 3, 16, 16), dtype=np.uint8), "state": rng.random((1, 4), np.float32)}
        buffer.add(obs, obs, np.zeros((1, 2)), np.zeros(1), np.zeros(1), [{}])
    torch.manual_seed(1)
    batch = buffer._get_samples(np.arange(50))
    stored = torch.as_tensor(buffer.observations["corner"][:50, 0])
    assert torch.equal(batch.observations["state"], torch.as_tensor(buffer.observations["state"][:50, 0]))
    assert not torch.equal(batch.observations["corner"], stored), "images are shifted"
    assert not torch.equal(batch.observations["corner"], batch.next_observations["corner"]), (
        "obs and next obs (the same images here) get their own offsets"
    )
    assert image_keys(SPACE) == ["corner"]


def test_sac_uses_the_shifting_buffer_and_acts_on_unshifted_images():
    from stable_baselines3.common.vec_env import DummyVecEnv

    agent = SB3Agent(SACConfig(image_shift=4), PIXELS, gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
    agent._build(DummyVecEnv([_PixelEnv]), buffer_size=100)
    assert isinstance(agent.model.replay_buffer, ShiftedReplayBuffer) and agent.model.replay_buffer.pad == 4
    obs = _PixelEnv().reset(seed=0)[0]
    torch.manual_seed(0)
    first = agent.act(obs)
    torch.manual_seed(1)
    assert np.array_equal(first, agent.act(obs)), "acting is deterministic: no augmentation there"


def test_image_shift_without_images_is_one_line():
    with pytest.raises(ConfigError, match="image_shift augments image observations .* env.obs_mode=pixels"):
        SB3Agent(SACConfig(image_shift=4), SPACE["state"], gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
    with pytest.raises(ConfigError, match="image_shift must be >= 0"):
        SACConfig(image_shift=-1)


PIXELS = gym.spaces.Dict({"corner": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)})


class _PixelEnv(gym.Env):
    """64x64 HWC images, as our envs give them (SB3's CNN needs at least 36x36)."""

    observation_space, action_space = PIXELS, gym.spaces.Box(-1, 1, (2,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"corner": self.np_random.integers(0, 256, (64, 64, 3), dtype=np.uint8)}, {}

    def step(self, action):
        return self.reset()[0], 0.0, False, False, {}
