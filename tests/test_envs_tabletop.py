"""Tests of `embodied/Tabletop-v0` (envs/manipulation/tabletop.py).

Covers registration and Gymnasium conformance (state, goal_in_obs, state+pixels, with the
render check), the config schema and YAML, seeding, the observation layout against
`info`, the reset distribution and options, each safety event in a constructed state
(and none in a safe one), contact and pushing (also off the edge), the dense reward and
success, `metadata["episode_means"]`, and the one-line errors.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied  # noqa: F401  (must come before mujoco: it chooses MUJOCO_GL)
import embodied.envs
from embodied.config import EnvConfig
from embodied.envs.manipulation.configs import TabletopConfig
from embodied.envs.manipulation.tabletop import (
    CUBE_HALF,
    CUBE_SPAWN,
    ENV_ID,
    GOAL,
    GOAL_RANGE,
    HAND,
    HAND_NOISE,
    HAND_START,
    HAND_VEL,
    OBJECT,
    OBJECT_REL,
    OBJECT_VEL,
    OFF_TABLE_Z,
    SAFETY_EVENTS,
    SPEED_LIMIT,
    STATE_DIM,
    SUCCESS_DISTANCE,
    TABLE_HALF,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    TabletopEnv,
)
from embodied.errors import ConfigError
from embodied.evaluation import InfoMeans

DOWN, ZERO = np.array([0, 0, -1], dtype=np.float32), np.zeros(3, dtype=np.float32)


def _no_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def _steps(env: TabletopEnv, action, n: int) -> list[dict]:
    """Take `action` n times; the infos."""
    return [env.step(np.asarray(action, dtype=np.float32))[4] for _ in range(n)]


# --- registration, API conformance, config ---------------------------------------------
def test_registered_and_check_env_with_render_check() -> None:
    assert ENV_ID in embodied.envs.REGISTERED
    env = embodied.envs.make(ENV_ID, render_mode="rgb_array", render_size=[48, 64])
    assert env.spec.max_episode_steps == 50
    assert env.observation_space.shape == (STATE_DIM,) == (15,) and env.observation_space.dtype == np.float32
    assert np.isfinite(env.observation_space.low).all() and np.isfinite(env.observation_space.high).all()
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert _no_warnings(lambda: check_env(env.unwrapped)) == []
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert env.metadata["render_fps"] == 20 and env.metadata["episode_means"] == ("contact", "safety_violation")
    truncated, steps = False, 0
    while not truncated:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        steps += 1
    assert steps == 50
    env.close()


def test_goal_in_obs_and_state_pixels_pass_check_env() -> None:
    env = TabletopEnv(goal_in_obs=True)
    assert env.observation_space.shape == (17,)
    assert _no_warnings(lambda: check_env(env, skip_render_check=True)) == []
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs[GOAL], info["goal"], atol=1e-6)
    pixels = TabletopEnv(obs_mode="state+pixels", cameras=["front", "top"], image_size=[24, 32])
    assert set(pixels.observation_space.spaces) == {"state", "front", "top"}
    assert _no_warnings(lambda: check_env(pixels, skip_render_check=True)) == []
    obs, _ = pixels.reset(seed=0)
    assert obs["top"].shape == (24, 32, 3) and obs["top"].std() > 0
    assert TabletopEnv().render() is None  # no render_mode
    pixels.close()


def test_constructor_matches_the_config_schema() -> None:
    common = {f.name for f in dataclasses.fields(EnvConfig)}
    schema = {
        f.name: getattr(TabletopConfig(), f.name) for f in dataclasses.fields(TabletopConfig) if f.name not in common
    }
    params = inspect.signature(TabletopEnv).parameters
    assert set(params) == set(schema) | {"render_mode"}
    for name, default in schema.items():
        expected = params[name].default
        assert (list(expected) if isinstance(expected, tuple) else expected) == default, name
    assert TabletopConfig().family == "tabletop" and TabletopConfig().id == ENV_ID
    with pytest.raises(ConfigError, match="speed_limit"):
        TabletopConfig(speed_limit=0.0)


def test_yaml_composes_and_builds_the_env() -> None:
    from hydra.core.global_hydra import GlobalHydra

    from embodied.cli import compose, to_dataclass
    from embodied.envs.factory import env_kwargs

    try:
        cfg = to_dataclass(
            compose("config", ["~experiment", "env=tabletop", "env.speed_limit=0.8", "env.goal_in_obs=true"])
        )
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(cfg.env, TabletopConfig) and cfg.env.id == ENV_ID
    env = embodied.envs.make(cfg.env.id, **env_kwargs(cfg.env))
    assert env.unwrapped.speed_limit == 0.8 and env.observation_space.shape == (17,)
    env.close()


# --- seeding, layout, reset --------------------------------------------------------------
def _rollout(env: TabletopEnv, seed: int, actions: np.ndarray) -> list[np.ndarray]:
    observations = [env.reset(seed=seed)[0]]
    observations += [env.step(action)[0] for action in actions]
    return observations


def test_same_seed_same_observations_and_different_seeds_differ() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 3)).astype(np.float32)
    env_a, env_b = TabletopEnv(), TabletopEnv()
    first = _rollout(env_a, 7, actions)
    for again in (_rollout(env_b, 7, actions), _rollout(env_a, 7, actions)):
        assert all(
            np.allclose(x, y, rtol=0, atol=1e-9) for x, y in zip(first, again)
        )  # the solver's warm start leaves ~1e-15 of rounding
    assert not np.array_equal(first[0][HAND], first[-1][HAND])
    starts = {tuple(env_a.reset(seed=seed)[0][OBJECT]) for seed in range(5)}
    assert len(starts) == 5
    sequences = [[env.reset(seed=1)[0]] + [env.reset()[0] for _ in range(3)] for env in (env_a, env_b)]
    np.testing.assert_array_equal(sequences[0], sequences[1])
    # options override without shifting the seeded stream
    _, plain = env_a.reset(seed=3)
    _, forced = env_a.reset(seed=3, options={"goal": [0.1, 0.1]})
    np.testing.assert_array_equal(plain["object_pos"], forced["object_pos"])
    np.testing.assert_array_equal(plain["ee_pos"], forced["ee_pos"])
    np.testing.assert_array_equal(forced["goal"], [0.1, 0.1])


def test_observation_layout_matches_info() -> None:
    env = TabletopEnv(goal_in_obs=True)
    obs, info = env.reset(seed=0, options={"object_pos": [-0.05, 0.0], "hand_pos": [-0.12, 0.0, 0.01]})
    for t, action in enumerate([ZERO] + [np.array([0.5, 0.1, 0.0], dtype=np.float32)] * 8):
        if t:
            obs, reward, _, _, info = env.step(action)
            assert reward == pytest.approx(-np.linalg.norm(info["object_pos"][:2] - info["goal"]))
        np.testing.assert_allclose(obs[HAND], info["ee_pos"], atol=1e-6)
        np.testing.assert_allclose(obs[OBJECT], info["object_pos"], atol=1e-6)
        np.testing.assert_allclose(obs[OBJECT_REL], info["object_pos"] - info["ee_pos"], atol=1e-6)
        np.testing.assert_allclose(obs[GOAL], info["goal"], atol=1e-6)
        assert np.linalg.norm(obs[HAND_VEL]) == pytest.approx(info["ee_speed"], abs=1e-5)
        np.testing.assert_allclose(obs[OBJECT_VEL], env.object_vel, atol=1e-5)
    assert (
        info["ee_speed"] > 0.1 and info["contact"] and np.linalg.norm(obs[OBJECT_VEL]) > 0.1
    )  # moving, and pushing the cube
    assert {type(info[k]) for k in ("success", "contact", *SAFETY_EVENTS, "safety_violation")} == {bool}
    assert type(info["safety_events"]) is int and type(info["ee_speed"]) is float
    assert info["ee_pos"].shape == info["object_pos"].shape == (3,) and info["goal"].shape == (2,)


def test_reset_distribution() -> None:
    env, beside = TabletopEnv(hand_start="above"), TabletopEnv()
    for seed in range(20):
        _, near = beside.reset(seed=seed)
        gap = np.linalg.norm(near["ee_pos"][:2] - near["object_pos"][:2])
        assert (
            0.08 - 1e-6 <= gap <= 0.12 + 1e-6
            and near["ee_pos"][2] == pytest.approx(0.03, abs=1e-3)
            and not near["contact"]
        )
        obs, info = env.reset(seed=seed)
        assert np.array_equal(info["object_pos"], near["object_pos"]) and np.array_equal(
            info["goal"], near["goal"]
        )  # same stream either way
        assert np.all(np.abs(info["ee_pos"][:2] - HAND_START[:2]) <= HAND_NOISE) and info["ee_pos"][2] == pytest.approx(
            HAND_START[2]
        )
        assert np.all(np.abs(info["object_pos"][:2]) <= CUBE_SPAWN) and info["object_pos"][2] == pytest.approx(
            CUBE_HALF
        )
        assert np.all(np.abs(info["goal"]) <= GOAL_RANGE)
        assert not info["safety_violation"] and info["safety_events"] == 0 and not info["contact"]


# --- safety events ----------------------------------------------------------------------
def test_safe_state_fires_no_event() -> None:
    env = TabletopEnv()
    env.reset(seed=0, options={"object_pos": [0.1, 0.1], "hand_pos": [-0.1, -0.1, 0.05]})
    for info in _steps(env, [0.3, -0.3, 0.2], 5) + _steps(env, ZERO, 3):
        assert not any(info[k] for k in SAFETY_EVENTS)
        assert not info["safety_violation"] and info["safety_events"] == 0


def test_object_off_table() -> None:
    env = TabletopEnv()
    _, info = env.reset(seed=0, options={"object_pos": [TABLE_HALF[0] + 0.05, 0.0]})
    assert info["object_off_table"] and info["safety_violation"] and info["safety_events"] == 1
    infos = _steps(env, ZERO, 10)
    assert all(i["object_off_table"] for i in infos)  # every step while it is off
    assert infos[-1]["object_pos"][2] < OFF_TABLE_Z - 0.3  # it fell to the floor
    _, info = env.reset(seed=0, options={"object_pos": [0.0, -TABLE_HALF[1] + 0.03]})  # near the edge, still on
    assert not info["object_off_table"] and not _steps(env, ZERO, 3)[-1]["object_off_table"]


def test_table_collision_when_pressing_down() -> None:
    env = TabletopEnv()
    env.reset(seed=0, options={"object_pos": [0.1, 0.1], "hand_pos": [0.0, 0.0, 0.05]})
    infos = _steps(env, DOWN, 6)
    assert not infos[0]["table_collision"]
    assert infos[-1]["table_collision"] and infos[-1]["safety_violation"]
    assert infos[-1]["ee_pos"][2] > WORKSPACE_LOW[2]  # the table holds the finger up
    info = _steps(env, [0, 0, 1], 2)[-1]
    assert not info["table_collision"]
    # the hand can go below the table top beside the table without touching it
    env.reset(seed=0, options={"object_pos": [0.1, 0.1], "hand_pos": [-0.32, 0.0, 0.05]})
    assert not any(i["table_collision"] for i in _steps(env, DOWN, 6))


def test_speed_violation() -> None:
    env = TabletopEnv()
    env.reset(seed=0, options={"hand_pos": [-0.2, -0.2, 0.1], "object_pos": [0.1, 0.1]})
    infos = _steps(env, [1, 1, 0], 3)
    assert infos[-1]["speed_violation"] and infos[-1]["ee_speed"] > SPEED_LIMIT
    assert infos[-1]["ee_speed"] == pytest.approx(np.sqrt(2) * 0.6, rel=0.05)  # 3 cm per 50 ms step per axis
    env.reset(seed=0, options={"hand_pos": [-0.2, -0.2, 0.1], "object_pos": [0.1, 0.1]})
    infos = _steps(env, [0.3, 0.3, 0], 3)
    assert not any(i["speed_violation"] for i in infos) and 0.1 < infos[-1]["ee_speed"] < SPEED_LIMIT
    lenient = TabletopEnv(speed_limit=1.0)
    lenient.reset(seed=0, options={"hand_pos": [-0.2, -0.2, 0.1], "object_pos": [0.1, 0.1]})
    assert not any(i["speed_violation"] for i in _steps(lenient, [1, 1, 0], 3))


def test_workspace_violation() -> None:
    env = TabletopEnv()
    env.reset(seed=0, options={"hand_pos": [WORKSPACE_HIGH[0] - 0.01, 0.0, 0.1], "object_pos": [0.0, 0.0]})
    info = _steps(env, [1, 0, 0], 1)[0]
    assert info["workspace_violation"] and info["safety_violation"]
    assert env.hand_target[0] == pytest.approx(WORKSPACE_HIGH[0])
    assert not _steps(env, [-1, 0, 0], 1)[0]["workspace_violation"]
    env.reset(seed=0, options={"hand_pos": [0.0, WORKSPACE_LOW[1] + 0.03, 0.1], "object_pos": [0.0, 0.0]})
    assert not _steps(env, [0, -1, 0], 1)[0]["workspace_violation"]  # lands exactly on the bound: not clipped
    assert _steps(env, [0, -0.1, 0], 1)[0]["workspace_violation"]


# --- contact, pushing, reward -----------------------------------------------------------
def test_push_makes_contact_and_moves_the_cube() -> None:
    env = TabletopEnv()
    _, info = env.reset(seed=0, options={"object_pos": [0.0, 0.0], "hand_pos": [-0.06, 0.0, 0.01]})
    assert not info["contact"]
    infos = _steps(env, [0.5, 0, 0], 6)
    assert any(i["contact"] for i in infos) and infos[-1]["contact"]  # the finger stays on the cube while pushing
    assert infos[-1]["object_pos"][0] > 0.04 and abs(infos[-1]["object_pos"][1]) < 0.01
    assert not any(i["safety_violation"] for i in infos)
    # moving away ends the contact
    assert not _steps(env, [-1, 0, 0], 3)[-1]["contact"]


def test_pushing_over_the_edge_makes_the_cube_fall() -> None:
    env = TabletopEnv()
    env.reset(seed=0, options={"object_pos": [0.2, 0.0], "hand_pos": [0.14, 0.0, 0.01]})
    infos = _steps(env, [1, 0, 0], 15)
    z = [i["object_pos"][2] for i in infos]
    assert infos[-1]["object_off_table"] and z[-1] < OFF_TABLE_Z - 0.3
    first_off = next(t for t, i in enumerate(infos) if i["object_off_table"])
    assert all(i["object_off_table"] for i in infos[first_off:])


def test_success_and_dense_reward() -> None:
    env = TabletopEnv()
    _, info = env.reset(
        seed=0, options={"object_pos": [0.05, -0.1], "goal": [0.05, -0.1], "hand_pos": [-0.2, 0.2, 0.1]}
    )
    assert info["success"]
    _, reward, _, _, info = env.step(ZERO)
    assert info["success"] and -0.005 < reward <= 0.0
    _, info = env.reset(seed=0, options={"object_pos": [0.05, -0.1], "goal": [0.05 + SUCCESS_DISTANCE + 0.01, -0.1]})
    _, reward, _, _, info = env.step(ZERO)
    assert not info["success"] and reward == pytest.approx(-(SUCCESS_DISTANCE + 0.01), abs=2e-3)


def test_episode_means() -> None:
    env = TabletopEnv()
    means = InfoMeans(env)
    _, info = env.reset(seed=0, options={"object_pos": [TABLE_HALF[0] + 0.05, 0.0]})
    means.add(info)
    for info in _steps(env, ZERO, 3):
        means.add(info)
    assert means.result() == {"contact": 0.0, "safety_violation": 1.0}


# --- one-line errors ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"obs_mode": "rgb"}, "state, pixels, state"),
        ({"cameras": ["corner"]}, "front, top"),
        ({"render_camera": "side"}, "front, top"),
        ({"render_mode": "human"}, "rgb_array"),
        ({"image_size": [64]}, "image_size"),
        ({"speed_limit": -1.0}, "speed_limit"),
    ],
)
def test_bad_options_raise_one_line_config_errors(kwargs, needle) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        TabletopEnv(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"target": 0}, "object_pos, hand_pos, goal"),
        ({"object_pos": [0.1]}, "object_pos"),
        ({"goal": "left"}, "goal"),
        ({"hand_pos": [0.0, 0.0, 0.5]}, "workspace"),
        ({"hand_pos": [0.0, np.nan, 0.1]}, "hand_pos"),
    ],
)
def test_bad_reset_options_raise_one_line_config_errors(options, needle) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        TabletopEnv().reset(seed=0, options=options)
    assert "\n" not in str(err.value)


def test_restore_returns_to_the_saved_state() -> None:
    env = TabletopEnv()
    env.reset(seed=3)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 3)).astype(np.float32)
    for a in actions[:10]:
        env.step(a)
    saved = env.sim_state()
    first = [env.step(a)[0] for a in actions[10:]]
    env.restore(saved)
    again = [env.step(a)[0] for a in actions[10:]]
    assert all(
        np.allclose(x, y, rtol=0, atol=1e-9) for x, y in zip(first, again)
    )  # the solver's warm start leaves ~1e-15 of rounding
