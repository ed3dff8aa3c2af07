"""ACT-JEPA and ACT: shapes and masks, the EMA target, overfitting, determinism, save/load/resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.agents.act_jepa.agent import ACTAgent, masked_l1
from embodied.agents.act_jepa.config import ACTConfig, ACTJEPAConfig
from embodied.collect import CollectConfig, collect
from embodied.envs.factory import EnvFactory
from embodied.envs.manipulation.configs import MetaWorldConfig
from embodied.errors import ConfigError, DatasetError

TINY_NET = dict(
    dim=32,
    heads=4,
    ffn=64,
    encoder_layers=2,
    predictor_dim=16,
    predictor_heads=2,
    predictor_ffn=32,
    predictor_layers=1,
    chunk=8,
    batch_size=16,
    latent_dim=4,
    cvae_layers=1,
    val_every=0,
)


class Hooks:
    """What embodied.train passes to learn, minus logging and checkpoints."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.losses: list[float] = []
        self.agent: ACTAgent | None = None
        self.stop_at = stop_at

    def on_step(self, step: int, episodes=None) -> bool:
        self.losses.append(self.agent.metrics["losses/loss"])
        return step != self.stop_at

    def log(self, step: int, metrics: dict) -> None:
        pass


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory) -> Path:
    """Three scripted-expert episodes of Meta-World reach."""
    out = tmp_path_factory.mktemp("demos") / "reach"
    return collect(CollectConfig(env="embodied/MetaWorld-reach-v0", episodes=3, out=str(out)))


def factory() -> EnvFactory:
    return EnvFactory(MetaWorldConfig(task="reach", id="embodied/MetaWorld-reach-v0"))


def make_agent(dataset: Path, cls=ACTJEPAConfig, seed: int = 0, **overrides) -> ACTAgent:
    torch.manual_seed(seed)
    env = factory().make()
    config = cls(dataset=str(dataset), **{**TINY_NET, **overrides})
    return ACTAgent(config, env.observation_space, env.action_space, torch.device("cpu"), seed)


def train(agent: ACTAgent, steps: int, stop_at: int | None = None) -> Hooks:
    hooks = Hooks(stop_at)
    hooks.agent = agent
    agent.learn(factory(), steps, hooks)
    return hooks


def fake_batch(agent: ACTAgent, b: int = 5) -> dict[str, torch.Tensor]:
    t, s, a = agent.config.chunk, agent.obs_shapes["state"][0], agent.action_dim
    return {
        "obs/state": torch.randn(b, 1, s),
        "action": torch.randn(b, t, a),
        "action_is_pad": torch.zeros(b, t, dtype=torch.bool),
        "future/state": torch.randn(b, t, s),
        "future_is_pad": torch.zeros(b, t, dtype=torch.bool),
    }


def test_shapes(reach_demos: Path) -> None:
    agent = make_agent(reach_demos)
    model, cfg = agent.model, agent.config
    task, state, images = agent.inputs(fake_batch(agent))
    memory = model.encoder(task, state, images)
    assert memory.shape == (5, 2, cfg.dim)  # task and state tokens
    assert model.action_decoder(memory).shape == (5, cfg.chunk, 4)
    assert model.predictor(memory).shape == (5, cfg.chunk, cfg.dim)
    future = torch.randn(5, cfg.chunk, 39)
    assert model.target.encode_sequence(task, future, torch.zeros(5, cfg.chunk, dtype=torch.bool)).shape == (
        5,
        cfg.chunk,
        cfg.dim,
    )
    cvae = make_agent(reach_demos, cls=ACTConfig, cvae=True)
    assert cvae.model.target is None and cvae.model.predictor is None
    assert cvae.model.encoder(task, state, latent=torch.randn(5, 4)).shape == (5, 3, cfg.dim)  # + latent token


def test_pixel_tokens() -> None:
    import gymnasium as gym

    obs = gym.spaces.Dict(
        {
            "state": gym.spaces.Box(-1, 1, (39,)),
            "corner": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
            "task": gym.spaces.Box(0, 1, (3,)),
        }
    )
    agent = ACTAgent(ACTJEPAConfig(dataset="unused", **TINY_NET), obs, gym.spaces.Box(-1, 1, (4,)), torch.device("cpu"))
    assert agent.cameras == ["corner"] and agent.n_tasks == 3
    batch = {
        "obs/state": torch.randn(2, 1, 39),
        "obs/corner": torch.randint(0, 256, (2, 1, 64, 64, 3), dtype=torch.uint8),
        "obs/task": torch.eye(3)[[2, 0]][:, None],
    }
    task, state, images = agent.inputs(batch)
    assert task.tolist() == [2, 0]
    memory = agent.model.encoder(task, state, images)
    h, w = agent.model.encoder.image_encoder.feature_shape()
    assert memory.shape == (2, 2 + h * w, 32)
    assert agent.model.encoder.image_encoder.crop_size == (58, 58)  # 0.9 x 64, random crop in training


def test_masks(reach_demos: Path) -> None:
    pred, target = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    pad = torch.tensor([[False, False, True, True], [False, True, True, True]])
    moved = pred.clone()
    moved[pad] += 100.0
    assert torch.equal(masked_l1(pred, target, pad), masked_l1(moved, target, pad))
    assert torch.isclose(masked_l1(pred, target, pad), (pred - target).abs()[~pad].mean())
    # padded future states do not change the target's latents for the real ones
    agent = make_agent(reach_demos)
    task, future = torch.zeros(2, dtype=torch.long), torch.randn(2, agent.config.chunk, 39)
    pad = torch.zeros(2, agent.config.chunk, dtype=torch.bool)
    pad[:, 5:] = True
    changed = future.clone()
    changed[:, 5:] = 1e3
    with torch.no_grad():
        a = agent.model.target.encode_sequence(task, future, pad)
        b = agent.model.target.encode_sequence(task, changed, pad)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5)


def test_ema_moves_target_without_gradients(reach_demos: Path) -> None:
    agent = make_agent(reach_demos)
    model = agent.model
    assert all(not p.requires_grad for p in model.target.parameters())
    assert torch.equal(model.target.state_proj.weight, model.encoder.state_proj.weight)
    before = model.target.state_proj.weight.clone()
    train(agent, 3)
    assert all(p.grad is None for p in model.target.parameters())
    assert not torch.equal(model.target.state_proj.weight, before)  # the EMA moved it
    assert not torch.equal(model.target.state_proj.weight, model.encoder.state_proj.weight)  # but only partly
    # the update is exactly target <- m * target + (1 - m) * online
    t0, online = model.target.state_proj.weight.clone(), model.encoder.state_proj.weight.clone()
    model.update_target(0.9)
    assert torch.allclose(model.target.state_proj.weight, 0.9 * t0 + 0.1 * online)
    agent.total_steps, agent.num_steps = 100, 0
    assert agent.ema_momentum() == pytest.approx(0.996)
    agent.num_steps = 100
    assert agent.ema_momentum() == pytest.approx(1.0)


def test_overfits_one_demo(tmp_path: Path) -> None:
    demo = collect(CollectConfig(env="embodied/MetaWorld-reach-v0", episodes=1, out=str(tmp_path / "one")))
    agent = make_agent(demo, dropout=0.0, val_fraction=0.0, lr=3e-3, warmup_fraction=0.0)
    hooks = train(agent, 300)
    assert agent.metrics["losses/action_l1"] < 0.05, agent.metrics
    assert hooks.losses[-1] < hooks.losses[0] / 5


def test_same_seed_same_losses(reach_demos: Path) -> None:
    a = train(make_agent(reach_demos, seed=3), 5).losses
    b = train(make_agent(reach_demos, seed=3), 5).losses
    c = train(make_agent(reach_demos, seed=4), 5).losses
    assert a == b and a != c


@pytest.mark.parametrize("cls,extra", [(ACTJEPAConfig, {}), (ACTConfig, {"cvae": True})])
def test_save_load_resume(reach_demos: Path, tmp_path: Path, cls, extra) -> None:
    straight = make_agent(reach_demos, cls=cls, **extra)
    train(straight, 8)
    first = make_agent(reach_demos, cls=cls, **extra)
    train(first, 8, stop_at=4)  # interrupted half-way, as a SIGTERM would
    first.save(tmp_path)
    rng = torch.get_rng_state()
    resumed = make_agent(reach_demos, cls=cls, seed=99, **extra)
    resumed.load(tmp_path)
    obs, _ = factory().make().reset(seed=5)
    assert np.array_equal(first.predict_chunk(obs), resumed.predict_chunk(obs))  # save -> load: identical actions
    torch.set_rng_state(rng)  # embodied.train restores the global RNG from the checkpoint too
    train(resumed, 8)
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_chunking_and_temporal_ensemble(reach_demos: Path, monkeypatch) -> None:
    agent = make_agent(reach_demos, n_action_steps=3)
    calls = []

    def fake_chunk(obs):
        calls.append(obs)
        return np.arange(8, dtype=np.float32)[:, None].repeat(4, 1) + 10 * len(calls)

    monkeypatch.setattr(agent, "predict_chunk", fake_chunk)
    actions = [agent.act(i)[0] for i in range(7)]
    assert actions == [10, 11, 12, 20, 21, 22, 30] and len(calls) == 3
    agent.reset()
    calls.clear()
    agent.config.temporal_ensemble, agent.config.ensemble_k = True, 0.5
    first = agent.act(0)[0]
    second = agent.act(1)[0]
    w = np.exp(-0.5 * np.arange(2))
    assert first == 10 and second == pytest.approx((w[0] * 11 + w[1] * 20) / w.sum())


def test_probe_reports_finite_errors(reach_demos: Path) -> None:
    from embodied.agents.act_jepa.probe import world_model_probe
    from embodied.data import DemoDataset

    agent = make_agent(reach_demos)
    train(agent, 2)
    metrics = world_model_probe(agent, DemoDataset.open(reach_demos), [0, 1], [2], steps=20)
    assert set(metrics) >= {"probe/rmse", "probe/ate", "probe/rmse_static", "probe/ate_static"}
    assert all(np.isfinite(v) and v >= 0 for v in metrics.values())
    assert metrics["probe/val_samples"] == DemoDataset.open(reach_demos).episode_lengths[2]


def test_dataset_must_match_env(reach_demos: Path, tmp_path: Path) -> None:
    import gymnasium as gym

    from embodied.data import DatasetWriter

    path = tmp_path / "three_d_actions"
    with DatasetWriter(
        path,
        env_id="embodied/MetaWorld-reach-v0",
        observation_space=gym.spaces.Box(-1, 1, (39,), np.float32),
        action_space=gym.spaces.Box(-1, 1, (3,), np.float32),
        collector="test",
    ) as writer:
        writer.add_episode(
            obs={"state": np.zeros((5, 39), np.float32)},
            actions=np.zeros((5, 3), np.float32),
            rewards=np.zeros(5, np.float32),
            successes=np.zeros(5, bool),
            seed=0,
        )
    agent = make_agent(path)
    with pytest.raises(DatasetError, match="action dim 3 does not match env action dim 4"):
        train(agent, 1)
    other = EnvFactory(MetaWorldConfig(task="push", id="embodied/MetaWorld-push-v0"))
    agent = make_agent(reach_demos)
    with pytest.raises(DatasetError, match="collected on embodied/MetaWorld-reach-v0, not embodied/MetaWorld-push-v0"):
        agent.learn(other, 1, Hooks())
    assert agent.num_steps == 0


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_action_steps"):
        ACTJEPAConfig(dataset="x", chunk=5, n_action_steps=6)
    with pytest.raises(ConfigError, match="divisible"):
        ACTJEPAConfig(dataset="x", dim=30, heads=4)
    assert dataclasses.replace(ACTConfig(dataset="x")).jepa is False and ACTJEPAConfig(dataset="x").jepa is True


def test_pixel_multitask_learns_and_acts(tmp_path: Path) -> None:
    """The pixel path end to end: camera + state + task one-hot from a 2-task dataset."""
    from types import SimpleNamespace

    from embodied.envs import make

    kwargs = dict(tasks=["reach", "push"], obs_mode="state+pixels", image_size=[32, 32])
    demos = collect(
        CollectConfig(
            env="embodied/MetaWorld-multitask-v0",
            episodes=1,
            keep_failures=True,
            max_episode_steps=10,
            out=str(tmp_path / "px"),
            **kwargs,
        )
    )

    class TwoTasks:  # what learn() needs of an EnvFactory, for the generic multi-task id
        config = SimpleNamespace(id="embodied/MetaWorld-multitask-v0")

        def make(self, **_: object):
            return make("embodied/MetaWorld-multitask-v0", **kwargs)

    fac = TwoTasks()
    env = fac.make()
    agent = ACTAgent(
        ACTJEPAConfig(dataset=str(demos), proprio_dims=[0, 1, 2, 3], **TINY_NET),
        env.observation_space,
        env.action_space,
        torch.device("cpu"),
    )
    hooks = Hooks()
    hooks.agent = agent
    agent.learn(fac, 2, hooks)
    assert len(hooks.losses) == 2 and all(np.isfinite(hooks.losses))
    obs, _ = env.reset(seed=1)
    assert agent.predict_chunk(obs).shape == (agent.config.chunk, 4)
