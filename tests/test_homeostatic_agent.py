"""homeostatic_ppo: η as internal state of a PPO agent on the foraging arena."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import embodied.envs as envs
from embodied.agents.homeostatic.agent import HomeostaticPPOAgent
from embodied.agents.homeostatic.config import HomeostaticPPOConfig
from embodied.agents.sb3.agent import SB3Agent
from embodied.agents.sb3.config import PPOConfig
from embodied.envs.factory import EnvFactory
from embodied.errors import CheckpointError, ConfigError
from helpers import run_cli

SMALL = dict(n_steps=32, batch_size=32, n_epochs=2, net_arch=[16, 16])


class _Hooks:
    def on_step(self, step, metrics=None):
        return True

    def log(self, step, metrics):
        pass


def _factory(num_envs: int = 2) -> EnvFactory:
    from embodied.envs.navigation.configs import ForagingConfig

    return EnvFactory(ForagingConfig(num_envs=num_envs, max_episode_steps=100), seed=0)


def _agent(cls=HomeostaticPPOAgent, config=None, seed=0):
    env = envs.make("embodied/HomeostaticForaging-v0")
    config = config or HomeostaticPPOConfig(**SMALL)
    return cls(config, env.observation_space, env.action_space, torch.device("cpu"), seed=seed)


def test_constant_plasticity_is_exactly_ppo():
    """Same seed, same env: homeostatic_ppo with plasticity=constant trains the same weights as ppo."""
    weights = []
    for cls, config in (
        (HomeostaticPPOAgent, HomeostaticPPOConfig(plasticity="constant", **SMALL)),
        (SB3Agent, PPOConfig(**SMALL)),
    ):
        torch.manual_seed(0)
        np.random.seed(0)
        agent = _agent(cls, config)
        agent.learn(_factory(), 192, _Hooks())
        weights.append([p.detach().clone() for p in agent.model.policy.parameters()])
    for a, b in zip(*weights):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _fill_buffer(agent: HomeostaticPPOAgent, value: float) -> None:
    agent._build(DummyVecEnv([lambda: envs.make("embodied/HomeostaticForaging-v0")]), 1)
    buffer = agent.model.rollout_buffer
    buffer.observations[:] = np.random.default_rng(0).normal(size=buffer.observations.shape)
    buffer.values[:] = value
    buffer.returns[:] = value


@pytest.mark.parametrize("drives, expected_sign", [((0.2, 0.3), +1), ((0.3, 0.2), -1)])
def test_rising_need_is_excitatory_and_falling_need_inhibitory(drives, expected_sign):
    config = HomeostaticPPOConfig(plasticity="random", **SMALL)
    agent = _agent(config=config)
    _fill_buffer(agent, 0.0)
    coin = np.random.default_rng(0)
    coin.choice(32, 32, replace=False)  # the agent's first draw: its (obs, returns) sample
    coin.choice(32, 32, replace=False)
    takes = coin.random() > 0.5
    agent.rollout_event([drives[0]])
    assert (
        agent.stats["events"] == 0 and agent.plasticity.eta == config.learning_rate
    )  # no event before a comparison exists
    agent.rollout_event([drives[1]])
    step = config.plasticity_step * config.learning_rate
    assert agent.stats["events"] == 1
    assert agent.plasticity.eta == pytest.approx(config.learning_rate + (expected_sign * step if takes else 0.0))


def test_homeostatic_rule_scores_by_the_critic_and_leaves_weights_untouched():
    agent = _agent(config=HomeostaticPPOConfig(plasticity="homeostatic", plasticity_step=0.5, **SMALL))
    _fill_buffer(agent, 1.0)
    agent.rollout_event([0.2])
    before = [p.detach().clone() for p in agent.model.policy.parameters()]
    agent.model.rollout_buffer.values[:] = 0.0  # the critic's expectation fell: it predicts rising need
    agent.rollout_event([0.3])
    for a, b in zip(before, agent.model.policy.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    eta0, step = agent.config.learning_rate, agent.config.plasticity_step * agent.config.learning_rate
    assert agent.stats["events"] == 1
    assert agent.plasticity.eta in (pytest.approx(eta0), pytest.approx(eta0 + step))


def test_plasticity_config_errors():
    with pytest.raises(ConfigError, match="plasticity"):
        HomeostaticPPOConfig(plasticity="sometimes")
    with pytest.raises(ConfigError, match="plasticity_step"):
        HomeostaticPPOConfig(plasticity_step=2.0)


def test_save_load_round_trip_keeps_the_internal_state(tmp_path):
    agent = _agent(config=HomeostaticPPOConfig(plasticity="random", plasticity_step=0.5, **SMALL))
    agent.learn(_factory(), 256, _Hooks())
    agent.save(tmp_path)
    twin = _agent(config=HomeostaticPPOConfig(plasticity="random", plasticity_step=0.5, **SMALL), seed=5)
    twin.load(tmp_path)
    assert twin.plasticity.eta == agent.plasticity.eta and twin.stats == agent.stats
    assert twin.rng.bit_generator.state == agent.rng.bit_generator.state
    torch.testing.assert_close(twin.previous["sample"][0], agent.previous["sample"][0])
    obs = envs.make("embodied/HomeostaticForaging-v0").reset(seed=3)[0]
    np.testing.assert_array_equal(twin.act(obs), agent.act(obs))


def test_train_command_on_foraging_writes_checkpoint_video_and_drive_metrics(tmp_path):
    run_dir = tmp_path / "run"
    run_cli(
        "embodied.train",
        "experiment=homeostatic_ppo_foraging",
        "total_steps=512",
        "env.num_envs=2",
        "agent.n_steps=128",
        "agent.batch_size=64",
        "agent.n_epochs=1",
        "env.max_episode_steps=60",
        "env.render_size=[64,64]",
        "eval.episodes=2",
        "eval.video_episodes=1",
        "log_every=256",
        "checkpoint.every=256",
        f"run_dir={run_dir}",
        check=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["agent"] == "homeostatic_ppo" and summary["status"] == "complete"
    assert "eval/mean/drive" in summary["metrics"] and "eval/death_rate/energy_depleted" in summary["metrics"]
    assert list((run_dir / "videos").glob("*.mp4"))
    assert (run_dir / "checkpoints" / "last" / "plasticity.safetensors").exists()
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "charts/plasticity_eta" in header and "charts/mean/drive" in header


def test_normalized_observations_are_saved_loaded_and_applied_in_act(tmp_path):
    """normalize_obs/normalize_reward (VecNormalize): act() sees what the policy was trained on,
    and the running statistics travel with the checkpoint."""
    config = PPOConfig(normalize_obs=True, normalize_reward=True, **SMALL)
    agent = _agent(SB3Agent, config)
    agent.learn(_factory(), 128, _Hooks())
    assert agent.obs_rms.count > 128 and agent.ret_rms.count > 0
    obs = envs.make("embodied/HomeostaticForaging-v0").reset(seed=3)[0]
    expected = np.clip((obs - agent.obs_rms.mean) / np.sqrt(agent.obs_rms.var + 1e-8), -10, 10)
    np.testing.assert_array_equal(
        agent.act(obs), agent.model.predict(expected.astype(np.float32), deterministic=True)[0]
    )
    agent.save(tmp_path)
    twin = _agent(SB3Agent, config, seed=5)
    twin.load(tmp_path)
    np.testing.assert_array_equal(twin.obs_rms.mean, agent.obs_rms.mean)
    assert twin.ret_rms.var == agent.ret_rms.var
    np.testing.assert_array_equal(twin.act(obs), agent.act(obs))
    twin.learn(_factory(), 256, _Hooks())  # resuming keeps updating the loaded statistics
    assert twin.obs_rms.count > agent.obs_rms.count

    plain = _agent(SB3Agent, PPOConfig(**SMALL))
    plain.learn(_factory(), 64, _Hooks())
    (tmp_path / "plain").mkdir()
    plain.save(tmp_path / "plain")
    with pytest.raises(CheckpointError, match="no normalizer statistics"):
        _agent(SB3Agent, config).load(tmp_path / "plain")


def test_normalize_obs_needs_flat_observations():
    env = envs.make("embodied/HomeostaticForaging-v0")
    import gymnasium as gym

    image = gym.spaces.Box(0, 255, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match="flat vector observations"):
        SB3Agent(PPOConfig(normalize_obs=True), image, env.action_space, torch.device("cpu"))


def test_a_normalized_checkpoint_refuses_an_agent_without_normalization(tmp_path):
    agent = _agent(SB3Agent, PPOConfig(normalize_obs=True, **SMALL))
    agent.learn(_factory(), 64, _Hooks())
    agent.save(tmp_path)
    with pytest.raises(CheckpointError, match="normalize_obs/normalize_reward it was trained with"):
        _agent(SB3Agent, PPOConfig(**SMALL)).load(tmp_path)
