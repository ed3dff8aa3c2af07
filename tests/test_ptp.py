"""The `ptp` diffusion policy: the PTP loss mask, self-verification, EMA, determinism,
save/load/resume, and the multistage embedding cache (equal to the live encoder, stale ones refused)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.agents.ptp import cache
from embodied.agents.ptp.agent import PTPAgent, loss_mask, select_by_past
from embodied.agents.ptp.config import PTPConfig
from embodied.collect import CollectConfig, collect
from embodied.envs.factory import EnvFactory
from embodied.envs.manipulation.configs import MemoryPickPlaceConfig
from embodied.errors import ConfigError, DatasetError

TINY = dict(
    dim=32,
    heads=4,
    layers=2,
    embed_dim=32,
    n_obs_steps=4,
    horizon=10,
    n_action_steps=3,
    batch_size=16,
    val_every=0,
    inference_steps=4,
)


class Hooks:
    def __init__(self, agent: PTPAgent, stop_at: int | None = None) -> None:
        self.agent, self.stop_at, self.losses = agent, stop_at, []

    def on_step(self, step: int, metrics=None) -> bool:
        self.losses.append(self.agent.metrics["losses/loss"])
        return step != self.stop_at

    def log(self, step: int, metrics: dict) -> None:
        pass


def factory(obs_mode: str = "state") -> EnvFactory:
    return EnvFactory(MemoryPickPlaceConfig(obs_mode=obs_mode, image_size=[32, 32]))


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    """Four scripted-expert episodes of MemoryPickPlace with state and 32x32 pixels."""
    out = tmp_path_factory.mktemp("demos") / "memory"
    return collect(
        CollectConfig(
            env="embodied/MemoryPickPlace-v0", episodes=4, out=str(out), obs_mode="state+pixels", image_size=[32, 32]
        )
    )


@pytest.fixture(scope="module")
def state_demos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "memory_state"
    return collect(CollectConfig(env="embodied/MemoryPickPlace-v0", episodes=4, out=str(out)))


def make_agent(dataset: Path, obs_mode: str = "state", seed: int = 0, **overrides) -> PTPAgent:
    torch.manual_seed(seed)
    env = factory(obs_mode).make()
    return PTPAgent(
        PTPConfig(dataset=str(dataset), **{**TINY, **overrides}),
        env.observation_space,
        env.action_space,
        torch.device("cpu"),
        seed,
    )


def train(agent: PTPAgent, steps: int, obs_mode: str = "state", stop_at: int | None = None) -> Hooks:
    hooks = Hooks(agent, stop_at)
    agent.learn(factory(obs_mode), steps, hooks)
    return hooks


# --- Past-Token Prediction ----------------------------------------------------------------
def test_loss_mask_against_a_hand_built_example() -> None:
    # 3 past tokens, the current one (index 3) and 2 future ones; sample 1 starts at its episode's
    # second step, so its first 2 past tokens are padding; its last future token is end padding.
    pad = torch.tensor([[0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1]], dtype=torch.bool)
    off = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    last_one = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    every = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(loss_mask(pad, 3, 0), off)
    assert torch.equal(loss_mask(pad, 3, 1), last_one)
    assert torch.equal(loss_mask(pad, 3, 3), every)


@pytest.mark.parametrize("ptp, past_steps_reg, graded", [(False, -1, []), (True, -1, [0, 1, 2]), (True, 1, [2])])
def test_loss_gradient_reaches_exactly_the_kept_past_tokens(state_demos: Path, ptp, past_steps_reg, graded) -> None:
    agent = make_agent(state_demos, ptp=ptp, past_steps_reg=past_steps_reg)
    train_windows, _ = agent.open_data(factory())
    batch = train_windows.batch(np.arange(10, 26))  # steps >= 3: no padding before the start
    assert not batch["action_is_pad"][:, :3].any()
    outputs = []

    def keep(module, args, out) -> None:
        out.retain_grad()
        outputs.append(out)

    agent.model.net.head.register_forward_hook(keep)
    loss, metrics = agent.compute_loss(batch)
    loss.backward()
    grad = outputs[0].grad.abs().sum(dim=(0, 2))
    assert [i for i in range(3) if grad[i] > 0] == graded
    assert (grad[3:] > 0).all() and "losses/past_mse" in metrics


def test_select_by_past_picks_the_candidate_whose_past_matches() -> None:
    torch.manual_seed(0)
    candidates = torch.randn(5, 8, 2)
    executed = candidates[3, 1:4] + 0.01  # tokens 1..3 are the past (past_tokens=4, 3 executed)
    assert select_by_past(candidates, executed, past_tokens=4) == 3
    assert select_by_past(candidates, executed[:0], past_tokens=4) == 0


def test_self_verification_executes_the_best_candidates_future(state_demos: Path, monkeypatch) -> None:
    agent = make_agent(state_demos, verify_samples=4)
    train(agent, 2)
    env = factory().make()
    obs, _ = env.reset(seed=0)
    agent.reset()
    batches = []
    for _ in range(3):  # the first query is a single sample: the history is not full yet
        obs, *_ = env.step(agent.act(obs))
    assert len(agent.executed) == 3 and not agent.queue

    def fake_sample(frames, generator=None, sampler=None):
        batches.append(len(frames))
        out = torch.full((len(frames), 10, agent.action_dim), 0.9)
        out[2, :3] = torch.stack(list(agent.executed))  # candidate 2 reproduces the executed past
        out[2, 3:] = -0.5
        return out

    monkeypatch.setattr(agent, "sample", fake_sample)
    action = agent.act(obs)
    assert batches == [4]
    expected = agent.normalizer.unnormalize("action", torch.full((agent.action_dim,), -0.5)).numpy()
    np.testing.assert_allclose(action, np.clip(expected, -1, 1), atol=1e-6)


# --- training, determinism, checkpoints ------------------------------------------------
def test_same_seed_same_losses_and_ema_lags(state_demos: Path) -> None:
    a = make_agent(state_demos, seed=3)  # seeds the global RNG too (attention dropout draws from it)
    losses = train(a, 6).losses
    assert train(make_agent(state_demos, seed=3), 6).losses == losses
    live, ema = a.model.net.head.action_out.weight, a.model.ema.head.action_out.weight
    assert not torch.equal(live, ema) and not ema.requires_grad


def test_save_load_gives_identical_samples_and_resume_is_exact(state_demos: Path, tmp_path: Path) -> None:
    # No dropout: its global RNG is the trainer's to restore (tested with embodied-train's resume).
    straight = make_agent(state_demos, seed=1, attn_dropout=0.0)
    train(straight, 8)
    first = make_agent(state_demos, seed=1, attn_dropout=0.0)
    train(first, 8, stop_at=4)
    first.save(tmp_path)
    resumed = make_agent(state_demos, seed=1, attn_dropout=0.0)
    resumed.load(tmp_path)
    train(resumed, 8)
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    straight.save(tmp_path)
    loaded = make_agent(state_demos, seed=7, attn_dropout=0.0)
    loaded.load(tmp_path)
    frames = torch.randn(2, 4, 32)
    for agent in (straight, loaded):
        agent.sample_generator.manual_seed(11)
    torch.testing.assert_close(
        straight.sample(frames, straight.sample_generator),
        loaded.sample(frames, loaded.sample_generator),
        rtol=0,
        atol=0,
    )
    ddpm = loaded.sample(frames, torch.Generator().manual_seed(0), sampler="ddpm")
    assert ddpm.shape == (2, 10, loaded.action_dim) and ddpm.abs().max() <= 1.0 + 1e-6


def test_config_errors(state_demos: Path) -> None:
    with pytest.raises(ConfigError, match="only Past-Token Prediction trains"):
        make_agent(state_demos, ptp=False, verify_samples=4)
    with pytest.raises(ConfigError, match="stage1_steps"):
        PTPConfig(multistage=True)
    with pytest.raises(ConfigError, match="n_action_steps"):
        PTPConfig(n_obs_steps=16, horizon=20, n_action_steps=8)
    with pytest.raises(ConfigError, match="sampler"):
        PTPConfig(sampler="euler")
    agent = make_agent(state_demos, multistage=True, stage1_steps=5)
    with pytest.raises(ConfigError, match="must exceed agent.stage1_steps"):
        train(agent, 5)


# --- multistage and the embedding cache ---------------------------------------------------
PIXEL = dict(multistage=True, stage1_steps=4, stage1_obs_steps=2, crop_fraction=0.875)


def test_multistage_cache_equals_the_frozen_encoder_and_resumes(demos: Path, tmp_path: Path) -> None:
    agent = make_agent(demos, "state+pixels", **PIXEL)
    hooks = train(agent, 6, "state+pixels", stop_at=3)  # stopped inside stage 1
    assert agent.num_steps == 3 and agent.cache is None
    agent.save(tmp_path)
    resumed = make_agent(demos, "state+pixels", **PIXEL)
    resumed.load(tmp_path)
    hooks = train(resumed, 6, "state+pixels")
    assert resumed.num_steps == 6 and len(hooks.losses) == 3
    encoder = resumed.model.net.encoder
    assert not any(p.requires_grad for p in encoder.parameters())
    checksum = cache.encoder_checksum(resumed)
    folder = Path(demos) / "embeddings" / checksum[:16]
    assert json.loads((folder / "meta.json").read_text())["encoder_checksum"] == checksum
    assert not list(folder.parent.glob(".*tmp*"))
    embeddings = np.load(folder / "embeddings.npy")
    rows = np.array([0, 17, 40, len(embeddings) - 1])
    from embodied.data import DemoDataset

    data = DemoDataset.open(demos)
    live = {}
    for key in resumed.obs_keys:
        x = torch.from_numpy(data.array(f"obs/{key}")[rows])
        live[f"obs/{key}"] = x if x.dtype == torch.uint8 else resumed.normalizer.normalize(f"obs/{key}", x.float())
    with torch.no_grad():
        expected = resumed.model.acting().encoder.eval()(live).numpy()
    np.testing.assert_allclose(embeddings[rows], expected, rtol=1e-5, atol=1e-5)


def test_a_stale_cache_is_refused(demos: Path, tmp_path: Path) -> None:
    agent = make_agent(demos, "state+pixels", **PIXEL, embedding_cache=str(tmp_path / "cache"))
    train(agent, 6, "state+pixels")
    assert (tmp_path / "cache" / "meta.json").exists()
    other = make_agent(
        demos, "state+pixels", seed=5, **PIXEL, embedding_cache=str(tmp_path / "cache")
    )  # another encoder
    with pytest.raises(DatasetError, match="is stale: written by encoder"):
        train(other, 6, "state+pixels")
    (tmp_path / "junk").mkdir()
    junk = make_agent(demos, "state+pixels", **PIXEL, embedding_cache=str(tmp_path / "junk"))
    with pytest.raises(DatasetError, match="not an embedding cache"):
        train(junk, 6, "state+pixels")
