"""Checkpoint atomicity and integrity; SB3 agent save -> load -> identical actions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.agents.sb3.agent import SB3Agent
from embodied.agents.sb3.config import PPOConfig, SACConfig
from embodied.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint, verify_checkpoint
from embodied.config import EvalConfig  # noqa: F401  (import check: config module loads without Hydra)
from embodied.envs.factory import EnvFactory
from embodied.envs.manipulation.configs import MetaWorldConfig
from embodied.errors import CheckpointError


class _Hooks:
    def on_step(self, step: int, episodes=None) -> bool:
        return True

    def log(self, step: int, metrics) -> None:
        pass


def _factory(num_envs: int = 1) -> EnvFactory:
    return EnvFactory(
        MetaWorldConfig(id="embodied/MetaWorld-reach-v0", max_episode_steps=50, num_envs=num_envs), seed=0
    )


def _trained(config, steps: int = 200, num_envs: int = 1) -> SB3Agent:
    factory = _factory(num_envs)
    env = factory.make()
    agent = SB3Agent(config, env.observation_space, env.action_space, torch.device("cpu"), seed=0)
    agent.learn(factory, steps, _Hooks())
    return agent


@pytest.mark.parametrize(
    "config",
    [SACConfig(net_arch=[32, 32], learning_starts=50, batch_size=32), PPOConfig(n_steps=64, batch_size=32, n_epochs=2)],
    ids=["sac", "ppo"],
)
def test_save_load_gives_identical_actions(tmp_path: Path, config) -> None:
    agent = _trained(config, num_envs=2 if config.name == "ppo" else 1)
    path = save_checkpoint(tmp_path, agent.num_steps, agent)
    fresh = SB3Agent(config, agent.observation_space, agent.action_space, torch.device("cpu"), seed=123)
    load_checkpoint(path, fresh)
    obs = np.random.default_rng(0).normal(size=(16, 39)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), fresh.act(obs))
    torch.manual_seed(5)
    sampled = agent.act(obs, deterministic=False)
    torch.manual_seed(5)
    np.testing.assert_array_equal(sampled, fresh.act(obs, deterministic=False))
    assert fresh.num_steps == agent.num_steps
    for name, opt in agent._optimizers().items():
        a, b = opt.state_dict()["state"], fresh._optimizers()[name].state_dict()["state"]
        for idx in a:
            for key in a[idx]:
                torch.testing.assert_close(a[idx][key], b[idx][key])


def test_replay_buffer_round_trip(tmp_path: Path) -> None:
    agent = _trained(SACConfig(net_arch=[16], learning_starts=20, batch_size=8), steps=120)
    path = save_checkpoint(tmp_path, agent.num_steps, agent)
    fresh = SB3Agent(agent.config, agent.observation_space, agent.action_space, torch.device("cpu"))
    load_checkpoint(path, fresh)
    a, b = agent.model.replay_buffer, fresh.model.replay_buffer
    assert a.buffer_size == 120  # capped at total_steps
    assert (a.pos, a.full) == (b.pos, b.full) == (0, True)
    np.testing.assert_array_equal(a.observations[:120], b.observations[:120])
    np.testing.assert_array_equal(a.rewards[:120], b.rewards[:120])


class _FailingAgent:
    class config:  # noqa: N801 - mimics a dataclass config
        name = "sac"

    def save(self, directory: Path) -> None:
        (Path(directory) / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")


def test_failed_save_keeps_last_on_complete_checkpoint(tmp_path: Path) -> None:
    agent = _trained(SACConfig(net_arch=[16], learning_starts=20, batch_size=8), steps=60)
    good = save_checkpoint(tmp_path, 60, agent)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 120, _FailingAgent())
    assert find_checkpoint(tmp_path) == good
    assert not (tmp_path / "checkpoints" / "00000120").exists()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_keep_prunes_old_checkpoints(tmp_path: Path) -> None:
    agent = _trained(SACConfig(net_arch=[16], learning_starts=20, batch_size=8), steps=40)
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, agent, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["00000030", "00000040", "last"]


def test_verify_detects_damage(tmp_path: Path) -> None:
    agent = _trained(SACConfig(net_arch=[16], learning_starts=20, batch_size=8), steps=40)
    path = save_checkpoint(tmp_path, 40, agent)
    verify_checkpoint(path, "sac")
    with pytest.raises(CheckpointError, match="agent 'sac', not 'ppo'|written by agent 'sac'"):
        verify_checkpoint(path, "ppo")
    (path / "algo_state.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="algo_state.safetensors"):
        verify_checkpoint(path)
    (path / "trainer_state.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        verify_checkpoint(path)


def test_checkpoint_holds_no_pickles(tmp_path: Path) -> None:
    agent = _trained(SACConfig(net_arch=[16], learning_starts=20, batch_size=8), steps=40)
    path = save_checkpoint(tmp_path, 40, agent)
    for file in path.iterdir():
        assert file.suffix in (".safetensors", ".json"), file.name
        if file.suffix == ".json":
            json.loads(file.read_text())
