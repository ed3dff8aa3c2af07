"""Tests of the multi-task Meta-World env `embodied/MetaWorld-<suite>-v0` and of its
multi-task plumbing: per-task collection in embodied-collect and per-task success
rates in the evaluation metrics.

Building an env builds one `MetaWorldEnv` per task (~0.1 s each), so the tests share
one MT15 env and otherwise use two-task envs.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from test_envs_metaworld import _unexpected_checker_warnings

import embodied  # noqa: F401  (must come before mujoco: it chooses MUJOCO_GL)
import embodied.envs
from embodied.config import EnvConfig
from embodied.data import DemoDataset
from embodied.envs.manipulation.configs import MetaWorldMultiTaskConfig
from embodied.envs.manipulation.metaworld import TASKS, MetaWorldEnv
from embodied.envs.manipulation.metaworld_multitask import SUITES, MetaWorldMultiTaskEnv
from embodied.errors import ConfigError, DatasetError
from embodied.evaluation import EpisodeResult, episode_metrics, run_episodes, summarize
from embodied.wrappers import EpisodeStatistics
from helpers import run_cli

GENERIC = "embodied/MetaWorld-multitask-v0"
TWO = ["coffee-button", "reach"]  # fast experts: success after ~40 steps


@pytest.fixture(scope="module")
def mt15():
    env = gym.make("embodied/MetaWorld-MT15-v0")
    yield env
    env.close()


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- registration, suites, Gymnasium API ----------------------------------------------
def test_suites_and_registered_ids() -> None:
    assert SUITES["MT15"] == (
        "button-press-topdown",
        "button-press-topdown-wall",
        "button-press",
        "button-press-wall",
        "coffee-button",
        "coffee-pull",
        "coffee-push",
        "drawer-open",
        "faucet-open",
        "faucet-close",
        "disassemble",
        "door-open",
        "door-close",
        "window-open",
        "window-close",
    )
    assert len(SUITES["MT10"]) == 10 and set(SUITES["MT10"]) <= set(TASKS)
    assert SUITES["MT50"] == TASKS and list(TASKS) == sorted(TASKS)
    for name in ("MT10", "MT15", "MT50", "multitask"):
        env_id = f"embodied/MetaWorld-{name}-v0"
        assert env_id in embodied.envs.REGISTERED and gym.spec(env_id).max_episode_steps == 200


def test_check_env_mt15_state() -> None:
    unexpected = _unexpected_checker_warnings(
        lambda: gym.make("embodied/MetaWorld-MT15-v0"), skip_render_check=True, skip_close_check=True
    )
    assert unexpected == []


@pytest.mark.parametrize("obs_mode", ["pixels", "state+pixels"])
def test_check_env_pixel_modes(obs_mode: str) -> None:
    def make() -> gym.Env:
        return gym.make(
            GENERIC,
            tasks=TWO,
            obs_mode=obs_mode,
            cameras=("corner",),
            image_size=(24, 32),
            render_mode="rgb_array",
            render_size=(24, 32),
        )

    assert _unexpected_checker_warnings(make, skip_render_check=obs_mode != "pixels") == []


def test_observation_keys_per_mode() -> None:
    for obs_mode, keys in [
        ("state", {"state", "task"}),
        ("pixels", {"corner", "topview", "task"}),
        ("state+pixels", {"state", "corner", "topview", "task"}),
    ]:
        env = gym.make(GENERIC, tasks=TWO, obs_mode=obs_mode, cameras=("corner", "topview"), image_size=(16, 20))
        obs, _ = env.reset(seed=0)
        assert set(obs) == set(env.observation_space.spaces) == keys, obs_mode
        assert obs["task"].dtype == np.float32 and obs["task"].shape == (2,)
        if "state" in keys:
            assert obs["state"].shape == (39,) and obs["state"].dtype == np.float32
        if "corner" in keys:
            assert obs["corner"].shape == (16, 20, 3) and obs["corner"].dtype == np.uint8
        assert env.observation_space.contains(obs)
        env.close()


# --- task choice and seeding -----------------------------------------------------------
def test_consecutive_seeds_cycle_through_tasks(mt15: gym.Env) -> None:
    """Evaluation seeds seed+offset+i: 15 k consecutive seeds give k episodes of every task."""
    tasks = mt15.unwrapped.tasks
    start = 1_000_000
    seen = [mt15.reset(seed=start + i)[1]["task"] for i in range(30)]
    assert seen == [tasks[(start + i) % 15] for i in range(30)]
    assert Counter(seen) == {task: 2 for task in tasks}


def test_options_task_overrides_the_seed_and_matches_the_single_task_env(mt15: gym.Env) -> None:
    obs, info = mt15.reset(seed=5, options={"task": "door-open"})
    assert info["task"] == mt15.unwrapped.task == "door-open" and info["success"] is False
    single = MetaWorldEnv("door-open")
    np.testing.assert_array_equal(obs["state"], single.reset(seed=5)[0])  # same task, same seed, same start
    single.close()


def test_one_hot_matches_info_task(mt15: gym.Env) -> None:
    tasks = mt15.unwrapped.tasks
    for seed in (0, 7, 14):
        obs, info = mt15.reset(seed=seed)
        assert obs["task"].sum() == 1.0 and tasks[int(obs["task"].argmax())] == info["task"]
        assert mt15.unwrapped.task_index() == tasks.index(info["task"])
        obs, _, _, _, info = mt15.step(mt15.action_space.sample())
        assert tasks[int(obs["task"].argmax())] == info["task"] == tasks[seed % 15]


def _rollout(env: gym.Env, seed: int | None, actions: np.ndarray) -> list:
    obs, info = env.reset(seed=seed)
    out = [(info["task"], obs["state"])]
    for action in actions:
        obs, reward, *_ = env.step(action)
        out.append((obs["state"], reward))
    return out


def test_same_seed_same_trajectory_and_unseeded_resets_reproducible() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 4)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = gym.make(GENERIC, tasks=["reach", "door-open", "drawer-close"])
        episodes = [_rollout(env, 3, actions)] + [_rollout(env, None, actions) for _ in range(5)]
        runs.append(episodes)
        env.close()
    for a, b in zip(*runs):
        assert a[0][0] == b[0][0]
        for sa, sb in zip(a, b):
            np.testing.assert_array_equal(sa[1], sb[1])
    assert len({episode[0][0] for episode in runs[0]}) > 1  # unseeded resets draw different tasks
    assert len({tuple(episode[0][1]) for episode in runs[0]}) == 6  # and new positions


def test_expert_succeeds_on_two_tasks() -> None:
    env = gym.make(GENERIC, tasks=["button-press-topdown-wall", "faucet-open"])
    for seed in range(4):
        _, info = env.reset(seed=seed)
        for _ in range(200):
            _, _, _, truncated, info = env.step(env.unwrapped.expert_action())
            if info["success"] or truncated:
                break
        assert info["success"], (info["task"], seed)
    env.close()


# --- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"suite": "MT16"}, ["'MT16'", "MT15", "tasks=[...]"]),
        ({}, ["neither suite nor tasks", "tasks=["]),
        ({"suite": "MT10", "tasks": ["reach"]}, ["both suite and tasks"]),
        ({"tasks": ["reach", "reech"]}, ["'reech'", "did you mean reach"]),
        ({"tasks": []}, ["at least one"]),
        ({"tasks": ["reach", "reach"]}, ["reach more than once"]),
        ({"tasks": "reach"}, ["tasks=[reach]"]),
    ],
)
def test_bad_suite_or_tasks_one_line_error(kwargs: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        MetaWorldMultiTaskEnv(**kwargs)
    message = _one_line(err)
    assert all(needle in message for needle in needles), message


def test_generic_id_without_tasks_and_unknown_options_task(mt15: gym.Env) -> None:
    with pytest.raises(ConfigError) as err:
        gym.make(GENERIC)
    assert "tasks=" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        mt15.reset(seed=0, options={"task": "door-opne"})
    message = _one_line(err)
    assert "'door-opne'" in message and "did you mean door-open" in message and "window-close" in message


# --- config ------------------------------------------------------------------------------
def test_yaml_composes_and_builds_the_env() -> None:
    from hydra.core.global_hydra import GlobalHydra

    from embodied.cli import compose, to_dataclass

    try:
        cfg = to_dataclass(
            compose("config", ["~experiment", "env=metaworld_multitask", "env.suite=MT10", "env.obs_mode=state"])
        )
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(cfg.env, MetaWorldMultiTaskConfig) and cfg.env.id == "embodied/MetaWorld-MT10-v0"
    common = {f.name for f in dataclasses.fields(EnvConfig)}
    kwargs = {f.name: getattr(cfg.env, f.name) for f in dataclasses.fields(cfg.env) if f.name not in common}
    assert set(kwargs) == {
        "suite",
        "obs_mode",
        "cameras",
        "image_size",
        "render_size",
        "render_camera",
        "render_quality",
        "video_quality",
    }
    params = inspect.signature(MetaWorldMultiTaskEnv).parameters
    assert set(params) == set(kwargs) | {"tasks", "render_mode"}
    for name in set(kwargs) - {"suite"}:  # the schema's defaults are the env's
        default = params[name].default
        assert (list(default) if isinstance(default, tuple) else default) == getattr(
            MetaWorldMultiTaskConfig(), name
        ), name
    env = embodied.envs.make(cfg.env.id, **kwargs)
    assert env.unwrapped.tasks == SUITES["MT10"]
    env.close()


# --- evaluation metrics ------------------------------------------------------------------
def test_episode_metrics_per_task_success_rates() -> None:
    episodes = [
        {"r": 1.0, "l": 10, "success": True, "task": "reach"},
        {"r": 0.0, "l": 10, "success": False, "task": "reach"},
        {"r": 2.0, "l": 10, "success": True, "task": "push"},
    ]
    out = episode_metrics(episodes, "eval/")
    assert out["eval/success_rate/reach"] == 0.5 and out["eval/success_rate/push"] == 1.0
    assert out["eval/success_rate"] == pytest.approx(2 / 3)
    untagged = episode_metrics([{k: v for k, v in e.items() if k != "task"} for e in episodes], "eval/")
    assert not any(key.startswith("eval/success_rate/") for key in untagged)
    assert set(out) - set(untagged) == {"eval/success_rate/reach", "eval/success_rate/push"}
    result = EpisodeResult(0, 1.0, 10, True, task="reach")
    assert result.as_episode()["task"] == "reach" and EpisodeResult(0, 1.0, 10, True).as_episode()["task"] is None


def test_run_episodes_and_episode_statistics_carry_the_task() -> None:
    env = EpisodeStatistics(gym.make(GENERIC, tasks=TWO, max_episode_steps=5))
    results = run_episodes(env, lambda obs: np.zeros(4, dtype=np.float32), episodes=4, seed=10)
    assert [r.task for r in results] == ["coffee-button", "reach", "coffee-button", "reach"]
    metrics = summarize(results)
    assert {"eval/success_rate/coffee-button", "eval/success_rate/reach"} <= set(metrics)
    env.reset(seed=1)
    for _ in range(5):
        *_, info = env.step(env.action_space.sample())
    assert info["episode"]["task"] == "reach"
    env.close()


# --- embodied-collect ----------------------------------------------------------------------
def test_collect_episodes_per_task(tmp_path: Path) -> None:
    out = tmp_path / "two"
    run_cli(
        "embodied.collect",
        f"env={GENERIC}",
        f"tasks=[{','.join(TWO)}]",
        "episodes=1",
        f"out={out}",
        "max_episode_steps=80",
        check=True,
    )
    ds = DemoDataset.open(out)
    assert ds.num_episodes == 2 and ds.num_steps == 160 and set(ds.obs_keys) == {"state", "task"}
    assert ds.attrs["tasks"] == TWO and ds.attrs["episode_tasks"] == TWO
    assert ds.attrs["task_success_rate"] == {"coffee-button": 1.0, "reach": 1.0}
    assert ds.attrs["episode_seeds"] == [0, 1] and ds.attrs["env_kwargs"]["tasks"] == TWO
    onehots = ds.array("obs/task")
    assert onehots.shape == (160, 2) and onehots.sum(-1).tolist() == [1.0] * 160
    np.testing.assert_array_equal(onehots.argmax(-1), [0] * 80 + [1] * 80)


def test_collect_multitask_failure_is_one_line(tmp_path: Path) -> None:
    from embodied.collect import CollectConfig, collect

    args = CollectConfig(
        env=GENERIC,
        tasks=TWO,
        episodes=1,
        out=str(tmp_path / "noisy"),
        action_noise=5.0,
        max_attempts=2,
        max_episode_steps=20,
    )
    with pytest.raises(DatasetError) as err:
        collect(args)
    message = _one_line(err)
    assert (
        "0/2 episodes (1 per task of 2)" in message
        and "short: coffee-button 0/1" in message
        and "nothing written" in message
    )
    assert not (tmp_path / "noisy").exists()


def test_lower_gain_expert_scales_before_clipping() -> None:
    env = MetaWorldEnv("door-close")
    env.reset(seed=0)
    full, low = env.expert_action(), env.expert_action(0.3)
    raw = env._expert.get_action(env._state.astype(np.float64))
    np.testing.assert_allclose(low, np.clip(0.3 * raw, -1, 1), rtol=1e-6)
    assert (np.abs(low[:3]) == 1).sum() < (np.abs(full[:3]) == 1).sum()  # door-close's expert saturates at gain 1
    env.close()


def test_collect_expert_gain_on_some_tasks(tmp_path: Path) -> None:
    from embodied.collect import CollectConfig, collect

    common = dict(env=GENERIC, tasks=TWO, episodes=1, max_episode_steps=40, keep_failures=True)
    collect(CollectConfig(**common, out=str(tmp_path / "gain1")))
    collect(CollectConfig(**common, out=str(tmp_path / "low"), expert_gain=0.3, expert_tasks=["reach"]))
    full, low = DemoDataset.open(tmp_path / "gain1"), DemoDataset.open(tmp_path / "low")
    a_full, a_low = full.array("action"), low.array("action")
    np.testing.assert_array_equal(a_low[:40], a_full[:40])  # coffee-button: gain 1
    assert not np.allclose(a_low[40:], a_full[40:])  # reach: the lower-gain expert
    assert low.attrs["expert_gain"] == 0.3 and low.attrs["expert_tasks"] == ["reach"]
    sat_full, sat_low = full.attrs["task_action_saturation"], low.attrs["task_action_saturation"]
    assert sat_low["reach"] < sat_full["reach"] and sat_low["coffee-button"] == sat_full["coffee-button"]
    jerk = np.abs(np.diff(a_full[40:], axis=0)).mean()
    assert full.attrs["task_action_jerk"]["reach"] == pytest.approx(jerk, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(env=GENERIC, tasks=TWO, expert_gain=0.5, expert_tasks=["door-close"]), "does not have: door-close"),
        (
            dict(env="embodied/MetaWorld-reach-v0", expert_gain=0.5, expert_tasks=["reach"]),
            "needs a multi-task env",
        ),
        (dict(env="embodied/MemoryPickPlace-v0", expert_gain=0.5), "has no gain"),
        (dict(env=GENERIC, tasks=TWO, expert_gain=0.0), "expert_gain must be > 0"),
    ],
)
def test_collect_refuses_a_gain_it_cannot_apply(tmp_path: Path, overrides: dict, message: str) -> None:
    from embodied.collect import CollectConfig, collect

    with pytest.raises(ConfigError, match=message):
        collect(CollectConfig(episodes=1, out=str(tmp_path / "d"), **overrides))
    assert not (tmp_path / "d").exists()
