"""SLIM's pieces: per-critic GAE and advantage normalisation, critics trained only on their
own reward (checked on a real update), the single-critic baseline on exactly the weighted
sum, the skill rewards (LSD's Lipschitz phi, DIAYN), skills fixed per episode, determinism,
save -> load, and the skill metrics and planner on the real Tabletop env."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import embodied  # noqa: F401  (first: chooses MUJOCO_GL)
from embodied.agents.slim import agent as agent_module
from embodied.agents.slim.agent import Rollout, SLIMAgent
from embodied.agents.slim.config import SLIMConfig
from embodied.agents.slim.critics import MultiCritic, combine_advantages, gae, normalize
from embodied.agents.slim.discovery import DIAYN, LSD, SkillPrior
from embodied.agents.slim.skills import SkillRollouts, grid_frames, skill_metrics
from embodied.envs.factory import EnvFactory
from embodied.envs.manipulation.configs import TabletopConfig
from embodied.errors import CheckpointError, ConfigError

OBS = gym.spaces.Box(-10, 10, (15,), np.float32)
ACT = gym.spaces.Box(-1, 1, (3,), np.float32)
SMALL = dict(net_arch=[32, 32], skill_hidden=[32], batch_size=16, n_epochs=2, skill_epochs=1)


def make_agent(seed: int = 0, **overrides) -> SLIMAgent:
    config = SLIMConfig(name="slim", **{**SMALL, **overrides})
    return SLIMAgent(config, OBS, ACT, torch.device("cpu"), seed=seed)


def random_rollout(T: int = 6, N: int = 3, seed: int = 0, done_at: int = 3) -> Rollout:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(T, N, 15, generator=g)
    next_obs = torch.cat([obs[1:], torch.randn(1, N, 15, generator=g)])
    dones = torch.zeros(T, N)
    dones[done_at] = 1.0
    return Rollout(
        obs,
        next_obs,
        torch.randn(T, N, 2, generator=g),
        torch.randn(T, N, 3, generator=g),
        torch.zeros(T, N),
        dones,
        {"reach": torch.rand(T, N, generator=g), "safety": -torch.randint(0, 2, (T, N), generator=g).float()},
    )


# --- critics.py -------------------------------------------------------------------------
def test_gae_by_hand() -> None:
    r = torch.tensor([[[1.0, 0.0]], [[2.0, 1.0]], [[3.0, -1.0]]])  # (T=3, N=1, K=2)
    v = torch.tensor([[[0.5, 0.1]], [[0.2, 0.3]], [[0.4, -0.2]]])
    nv = torch.tensor(
        [[[0.2, 0.3]], [[0.9, 0.8]], [[1.0, 2.0]]]
    )  # step 1 ends (truncated): its next value is the terminal obs's
    terminated, dones = torch.zeros(3, 1), torch.tensor([[0.0], [1.0], [0.0]])
    adv, ret = gae(r, v, nv, terminated, dones, gamma=0.9, lam=0.5)
    d = r + 0.9 * nv - v
    expected = torch.stack([d[0] + 0.45 * d[1], d[1], d[2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + v)
    terminated[1] = 1.0  # a true terminal state does not bootstrap
    adv2, _ = gae(r, v, nv, terminated, dones, gamma=0.9, lam=0.5)
    torch.testing.assert_close(adv2[1], r[1] - v[1])


def test_advantages_are_normalised_per_critic() -> None:
    adv = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [0.01, 1.0, 100.0]
    ) + torch.tensor([5.0, -2.0, 0.0])
    w = torch.tensor([1.0, 0.5, 2.0])
    combined = combine_advantages(adv, w)
    by_hand = sum(w[k] * (adv[:, k] - adv[:, k].mean()) / adv[:, k].std() for k in range(3))
    torch.testing.assert_close(combined, by_hand, atol=1e-5, rtol=1e-5)
    rescaled = adv * torch.tensor([1000.0, 1.0, 1e-3])  # a critic's scale does not change its say
    torch.testing.assert_close(combine_advantages(rescaled, w), combined, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(normalize(adv).std(0), torch.ones(3))


def test_multicritic_heads_share_no_parameters() -> None:
    critic = MultiCritic(5, 3, [8])
    x, returns = torch.randn(10, 5), torch.randn(10, 3)
    returns_changed = returns.clone()
    returns_changed[:, 2] += 10
    grads = []
    for target in (returns, returns_changed):
        critic.zero_grad()
        critic.loss(x, target).backward()
        grads.append([p.grad.clone() for p in critic.parameters()])
    per_head = [len(list(h.parameters())) for h in critic.heads]
    assert all(torch.equal(a, b) for a, b in zip(grads[0][: sum(per_head[:2])], grads[1][: sum(per_head[:2])]))
    assert not all(torch.equal(a, b) for a, b in zip(grads[0][sum(per_head[:2]) :], grads[1][sum(per_head[:2]) :]))


def _after_update(agent: SLIMAgent, rollout: Rollout, rewards: torch.Tensor) -> SLIMAgent:
    agent = copy.deepcopy(agent)
    agent.update(rollout, rewards.clone())
    return agent


def test_each_critic_is_trained_only_on_its_own_reward() -> None:
    agent = make_agent()
    rollout = random_rollout()
    rewards = torch.randn(6, 3, 3, generator=torch.Generator().manual_seed(1))
    base = _after_update(agent, rollout, rewards)
    for j in range(3):
        changed = rewards.clone()
        changed[..., j] = changed[..., j] * 3 + 1
        other = _after_update(agent, rollout, changed)
        for k, (head_a, head_b) in enumerate(zip(base.policy.critic.heads, other.policy.critic.heads)):
            same = all(torch.equal(a, b) for a, b in zip(head_a.parameters(), head_b.parameters()))
            assert same == (k != j), f"critic {k} {'changed' if not same else 'did not change'} when reward {j} changed"
        assert not torch.equal(base.policy.actor[0].weight, other.policy.actor[0].weight)  # the actor sees every reward


def test_single_critic_uses_exactly_the_weighted_sum(monkeypatch) -> None:
    agent = make_agent(critics="single", weights={"discovery": 0.5, "reach": 2.0, "safety": 1.0})
    assert len(agent.policy.critic.heads) == 1
    rollout = random_rollout()
    rewards = torch.randn(6, 3, 3, generator=torch.Generator().manual_seed(2))
    seen = []
    monkeypatch.setattr(agent_module, "gae", lambda r, *a, **k: (seen.append(r.clone()), gae(r, *a, **k))[1])
    a = _after_update(agent, rollout, rewards)
    torch.testing.assert_close(seen[0], (rewards * torch.tensor([0.5, 2.0, 1.0])).sum(-1, keepdim=True))
    shuffled = rewards.clone()  # different columns, same weighted sum: the same update
    shuffled[..., 0] += 2.0
    shuffled[..., 1] -= 0.5
    b = _after_update(agent, rollout, shuffled)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5)  # equal sums up to float rounding


def test_zero_weight_drops_the_reward_and_its_critic() -> None:
    agent = make_agent(weights={"discovery": 1.0, "reach": 0.0, "safety": 0.0})
    assert agent.rewards == ["discovery"] and len(agent.policy.critic.heads) == 1
    with pytest.raises(ConfigError, match="unknown reward"):
        SLIMConfig(name="slim", weights={"discovery": 1.0, "speed": 1.0})
    with pytest.raises(ConfigError, match="critics must be multi or single"):
        SLIMConfig(name="slim", critics="both")


# --- discovery.py -------------------------------------------------------------------------
def test_lsd_reward_and_lipschitz_phi() -> None:
    torch.manual_seed(0)
    lsd = LSD(2, 2, [32, 32])
    optimizer = torch.optim.Adam(lsd.parameters(), lr=1e-2)
    s, z = torch.randn(256, 2) * 0.1, torch.randn(256, 2)
    s_next = s + 0.05 * z  # moving along z: the objective should grow
    first = float(-lsd.loss(s, s_next, z).detach())
    for _ in range(200):
        loss = lsd.loss(s, s_next, z)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(-lsd.loss(s, s_next, z).detach()) > first
    lsd.eval()  # fixed power-iteration vectors: phi is one function while scoring
    with torch.no_grad():
        torch.testing.assert_close(lsd.reward(s, s_next, z), ((lsd.phi(s_next) - lsd.phi(s)) * z).sum(-1))
        a, b = torch.randn(1000, 2), torch.randn(1000, 2)
        ratio = (lsd.phi(a) - lsd.phi(b)).norm(dim=-1) / (a - b).norm(dim=-1)
    assert float(ratio.max()) <= 1.0 + 1e-3  # spectral norm keeps phi 1-Lipschitz


def test_diayn_rewards() -> None:
    prior = SkillPrior("discrete", 4, centred=False)
    diayn = DIAYN(2, prior, [16], std=0.3)
    z = torch.as_tensor(prior.vectors(np.array([0, 3, 1])))
    s = torch.randn(3, 2)
    logits = diayn.net(s)
    torch.testing.assert_close(
        diayn.reward(s, s, z), torch.log_softmax(logits, -1)[torch.arange(3), torch.tensor([0, 3, 1])] + math.log(4)
    )
    lsd_prior = SkillPrior("discrete", 4, centred=True)
    assert np.allclose(lsd_prior.vectors(np.arange(4)).sum(1), 0, atol=1e-6)  # LSD's zero-centred one-hots
    cont = SkillPrior("continuous", 2, centred=False)
    qc = DIAYN(2, cont, [16], std=0.5)
    z = torch.randn(5, 2)
    mu = qc.net(s[:1].expand(5, 2))
    expected = torch.distributions.Normal(mu, 0.5).log_prob(z).sum(-1) - torch.distributions.Normal(0.0, 1.0).log_prob(
        z
    ).sum(-1)
    torch.testing.assert_close(qc.reward(s[:1].expand(5, 2), s[:1].expand(5, 2), z), expected)


# --- on the real env ------------------------------------------------------------------------
class _Hooks:
    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.steps = stop_at, []

    def on_step(self, step: int, episodes=None) -> bool:
        self.steps.append(step)
        return self.stop_at is None or step < self.stop_at

    def log(self, step: int, metrics) -> None:
        pass


def tabletop_factory(num_envs: int = 2, cap: int = 10) -> EnvFactory:
    return EnvFactory(TabletopConfig(num_envs=num_envs, max_episode_steps=cap), seed=0)


def test_skills_are_fixed_within_an_episode_and_redrawn_at_its_end() -> None:
    factory = tabletop_factory(num_envs=2, cap=10)
    env = factory.make()
    agent = SLIMAgent(SLIMConfig(name="slim", **SMALL), env.observation_space, env.action_space, torch.device("cpu"))

    vec = factory.make_vec()
    obs = vec.reset()
    rollout, *_ = agent.collect(vec, obs, agent.prior.sample(agent.rng, 2), 25, _Hooks())
    vec.close()
    z = rollout.skills.numpy()
    for t in range(1, 25):
        changed = ~np.all(z[t] == z[t - 1], axis=-1)
        assert np.array_equal(changed, rollout.dones[t - 1].numpy().astype(bool))
    assert rollout.dones.sum() == 4  # episodes of 10 steps end at steps 9 and 19 in both envs
    assert (rollout.env_rewards["reach"] > 0).all() and (rollout.env_rewards["reach"] <= 1).all()


def _train(seed: int, steps: int = 60, stop_at: int | None = None, agent: SLIMAgent | None = None) -> SLIMAgent:
    torch.manual_seed(seed)
    factory = tabletop_factory(num_envs=2, cap=10)
    env = factory.make()
    agent = agent or SLIMAgent(
        SLIMConfig(name="slim", n_steps=10, **SMALL),
        env.observation_space,
        env.action_space,
        torch.device("cpu"),
        seed=seed,
    )
    agent.learn(factory, steps, _Hooks(stop_at))
    return agent


def test_same_seed_same_training() -> None:
    a, b, c = _train(0), _train(0), _train(1)
    assert a.num_steps == 60 and a.metrics == b.metrics
    assert all(torch.equal(p, q) for p, q in zip(a.policy.parameters(), b.policy.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.policy.parameters(), c.policy.parameters()))


def test_save_load_round_trip_and_stop_request(tmp_path: Path) -> None:
    agent = _train(0, steps=100, stop_at=40)
    assert agent.num_steps == 40  # stopped mid-rollout, after training on what it had
    agent.save(tmp_path)
    other = make_agent(seed=5, n_steps=10)
    other.load(tmp_path)
    assert other.num_steps == 40
    for name, module in agent._modules().items():
        for (k, p), q in zip(module.state_dict().items(), other._modules()[name].state_dict().values()):
            assert torch.equal(p, q), f"{name}.{k} differs after load"
    obs = np.random.default_rng(0).normal(size=(4, 15)).astype(np.float32)
    z = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    assert np.array_equal(agent.act_batch(obs, z), other.act_batch(obs, z))
    assert agent.rng.bit_generator.state == other.rng.bit_generator.state
    _train(0, steps=60, agent=other)  # resume: trains on from step 40
    assert other.num_steps == 60
    with pytest.raises(CheckpointError, match="does not fit"):
        make_agent(critics="single").load(tmp_path)


def test_skill_metrics_by_hand() -> None:
    disp = np.array([[0.0, 0.0], [0.01, 0.01], [0.12, 0.0], [-0.07, 0.2]])
    r = SkillRollouts(
        np.zeros((4, 2)),
        disp,
        disp,
        np.array([False, True, True, True]),
        np.array([0.0, 0.1, 0.0, 0.5]),
        np.array([0, 2, 0, 5]),
        np.array([False, False, False, True]),
    )
    m = skill_metrics(r)
    assert m["skills/coverage_bins"] == 3  # (0,0) twice, (2,0), (-2,4)
    assert m["skills/on_table_coverage_bins"] == 2 and m["skills/off_table_rate"] == 0.25  # (-2,4) ended on the floor
    assert m["skills/contact_rate"] == 0.75 and m["skills/unsafe_episode_rate"] == 0.5 and m["skills/moved_rate"] == 0.5
    assert math.isclose(m["skills/safety_violation_rate"], 0.15)
    frames = grid_frames([[np.full((4, 4, 3), i, np.uint8)] * (i + 1) for i in range(5)])
    assert len(frames) == 5 and frames[0].shape == (8, 12, 3) and frames[-1][4, 4, 0] == 4


def test_planner_picks_the_skill_predicted_to_land_nearest_the_goal() -> None:
    from embodied.agents.slim.skills import SkillPlanner

    class Linear(torch.nn.Module):  # displacement = 0.1 m * z * duration, in the model's decimetres
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 3:5] * x[:, 5:6]

    planner = SkillPlanner(make_agent(), candidates=2048, seed=0)
    planner.model = Linear()
    info = {"object_pos": np.array([0.0, 0.0, 0.025]), "ee_pos": np.array([-0.05, 0.0, 0.03])}
    z, duration = planner.choose(info, np.array([0.1, -0.05]))
    assert np.linalg.norm(z * 0.1 * duration - [0.1, -0.05]) < 0.01
    assert planner.choose(info, np.array([0.0, 0.0])) is None  # already there: no skill beats staying


def test_search_planner_tries_skills_in_the_simulator_and_restores_it() -> None:
    from embodied.agents.slim.skills import SearchPlanner
    from embodied.envs.manipulation.tabletop import TabletopEnv

    class MoveAlongSkill:  # a stand-in policy: the hand moves along the skill's direction at half speed
        prior = SkillPrior("continuous", 2, centred=True)

        def set_skill(self, z: np.ndarray) -> None:
            self.z = np.asarray(z) / (np.linalg.norm(z) + 1e-9)

        def act(self, obs: np.ndarray) -> np.ndarray:
            return np.array([*0.5 * self.z, 0.0], dtype=np.float32)

    env = TabletopEnv()
    obs, info = env.reset(
        seed=0, options={"object_pos": [0.0, 0.0], "hand_pos": [-0.06, 0.0, 0.025], "goal": [0.12, 0.0]}
    )
    saved = env.sim_state()
    z, steps = SearchPlanner(MoveAlongSkill(), candidates=64, seed=0).choose(
        env, obs, info, np.array([0.12, 0.0]), steps=50
    )
    assert z[0] / np.linalg.norm(z) > 0.9 and steps in (10, 25, 50)  # push along +x, toward the goal
    after = env.sim_state()
    assert all(np.array_equal(saved[k], after[k]) for k in ("qpos", "qvel", "hand_target", "goal"))
