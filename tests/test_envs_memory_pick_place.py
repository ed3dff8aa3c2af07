"""Tests of `embodied/MemoryPickPlace-v0` (envs/manipulation/memory_pick_place.py).

Covers registration and Gymnasium conformance (state and state+pixels, with the render
check), the config schema and YAML, seeding, the cue lamp, the scripted expert (clean
and with action noise 0.1), the memory property by construction (forced targets 0 and 1
give identical observations after the cue for the same actions; the wrong pad is no
success), the one-line errors, and `embodied-collect` on this env.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied  # noqa: F401  (must come before mujoco: it chooses MUJOCO_GL)
import embodied.envs
from embodied.config import EnvConfig
from embodied.data import DemoDataset
from embodied.envs.manipulation.configs import MemoryPickPlaceConfig
from embodied.envs.manipulation.memory_pick_place import ENV_ID, LAMP_RGBA, PADS, MemoryPickPlaceEnv
from embodied.errors import ConfigError
from helpers import run_cli

CUE = slice(10, 12)


def _no_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


# --- registration, API conformance, config ---------------------------------------------
def test_registered_and_check_env_state() -> None:
    assert ENV_ID in embodied.envs.REGISTERED
    env = embodied.envs.make(ENV_ID)
    assert env.spec.max_episode_steps == 80
    assert env.observation_space.shape == (12,) and env.observation_space.dtype == np.float32
    assert np.isfinite(env.observation_space.low).all() and np.isfinite(env.observation_space.high).all()
    assert env.action_space.shape == (4,)
    assert _no_warnings(lambda: check_env(env.unwrapped, skip_render_check=True)) == []
    env.close()


def test_check_env_state_pixels_with_render_check() -> None:
    env = gym.make(
        ENV_ID,
        obs_mode="state+pixels",
        cameras=["front", "top"],
        image_size=[32, 40],
        render_mode="rgb_array",
        render_size=[24, 32],
    )
    assert set(env.observation_space.spaces) == {"state", "front", "top"}
    assert _no_warnings(lambda: check_env(env.unwrapped)) == []
    obs, _ = env.reset(seed=0)
    assert obs["front"].shape == (32, 40, 3) and obs["front"].dtype == np.uint8 and obs["front"].std() > 0
    assert env.render().shape == (24, 32, 3)
    env.close()


def test_pixels_mode_and_render() -> None:
    env = gym.make(ENV_ID, obs_mode="pixels", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"front"} and obs["front"].shape == (64, 64, 3)
    assert env.render().shape == (256, 256, 3)
    plain = MemoryPickPlaceEnv()
    plain.reset(seed=0)
    assert plain.render() is None
    env.close()


def test_constructor_matches_the_config_schema() -> None:
    common = {f.name for f in dataclasses.fields(EnvConfig)}
    schema = {
        f.name: getattr(MemoryPickPlaceConfig(), f.name)
        for f in dataclasses.fields(MemoryPickPlaceConfig)
        if f.name not in common
    }
    params = inspect.signature(MemoryPickPlaceEnv).parameters
    assert set(params) == set(schema) | {"render_mode"}
    for name, default in schema.items():
        expected = params[name].default
        assert (list(expected) if isinstance(expected, tuple) else expected) == default, name


def test_yaml_composes_and_builds_the_env() -> None:
    from hydra.core.global_hydra import GlobalHydra

    from embodied.cli import compose, to_dataclass
    from embodied.envs.factory import env_kwargs

    try:
        cfg = to_dataclass(
            compose("config", ["~experiment", "env=memory_pick_place", "env.cue_steps=5", "env.obs_mode=state+pixels"])
        )
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(cfg.env, MemoryPickPlaceConfig) and cfg.env.id == ENV_ID
    env = embodied.envs.make(cfg.env.id, **env_kwargs(cfg.env))
    assert env.unwrapped.cue_steps == 5 and set(env.observation_space.spaces) == {"state", "front"}
    env.close()


# --- seeding, cue, info ----------------------------------------------------------------
def _rollout(env: gym.Env, seed: int, actions: np.ndarray, target: int | None = None) -> tuple[list, list]:
    obs, info = env.reset(seed=seed, options=None if target is None else {"target": target})
    observations, infos = [obs], [info]
    for action in actions:
        obs, _, _, _, info = env.step(action)
        observations.append(obs)
        infos.append(info)
    return observations, infos


def test_same_seed_same_observations_and_different_seeds_differ() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 4)).astype(np.float32)
    env_a, env_b = MemoryPickPlaceEnv(), MemoryPickPlaceEnv()
    first, _ = _rollout(env_a, 7, actions)
    for again in (_rollout(env_b, 7, actions)[0], _rollout(env_a, 7, actions)[0]):
        assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], first[-1])  # the actions did move something
    starts = [env_a.reset(seed=seed)[0][4:6] for seed in range(5)]
    assert len({tuple(s) for s in starts}) == 5
    # plain resets continue the seeded stream
    sequences = [[env.reset(seed=1)[0][4:6]] + [env.reset()[0][4:6] for _ in range(3)] for env in (env_a, env_b)]
    np.testing.assert_array_equal(sequences[0], sequences[1])


def test_target_drawn_from_the_seed_and_both_occur() -> None:
    env = MemoryPickPlaceEnv()
    targets = [env.reset(seed=seed)[1]["target"] for seed in range(20)]
    assert set(targets) == {0, 1}
    assert targets == [env.reset(seed=seed)[1]["target"] for seed in range(20)]


@pytest.mark.parametrize("target", [0, 1])
def test_cue_lit_for_cue_steps_then_grey(target: int) -> None:
    env = MemoryPickPlaceEnv(cue_steps=5)
    lamp = env.model.geom("lamp").id
    obs, info = env.reset(seed=0, options={"target": target})
    colour = ("red", "blue")[target]
    for t in range(8):
        lit = t < 5
        assert info["cue_visible"] is lit and info["target"] == target
        np.testing.assert_array_equal(obs[CUE], np.eye(2)[target] if lit else np.zeros(2))
        np.testing.assert_array_equal(env.model.geom_rgba[lamp], np.float32(LAMP_RGBA[colour if lit else "off"]))
        obs, _, _, _, info = env.step(np.zeros(4, dtype=np.float32))
    assert {type(info[k]) for k in ("success", "cue_visible", "grasped")} == {bool} and type(info["target"]) is int
    assert info["object_pos"].shape == (3,)


def test_constructed_success_only_on_the_correct_pad() -> None:
    env = MemoryPickPlaceEnv()
    open_hand = np.array([0, 0, 0, -1], dtype=np.float32)
    for target in (0, 1):
        for pad in (0, 1):
            env.reset(seed=0, options={"target": target})
            env.place_object(PADS[pad] + [0.02, -0.01])
            *_, reward, _, _, info = env.step(open_hand)
            assert info["success"] is (pad == target) and reward == float(pad == target)
    env.reset(seed=0, options={"target": 0})
    env.place_object([0.0, 0.18 + 0.06])  # just off the pad (radius 5 cm)
    assert env.step(open_hand)[4]["success"] is False


# --- scripted expert ------------------------------------------------------------------
def _expert_episodes(seeds: range, noise: float) -> tuple[float, list[int]]:
    """Success rate at the end of the 80-step episode; the step at which each carry started."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(0)
    successes, carry_steps = 0, []
    for seed in seeds:
        env.reset(seed=seed)
        truncated, step, carry = False, 0, None
        while not truncated:
            if carry is None and env.unwrapped.expert_phase() == "carry":
                carry = step
            action = env.unwrapped.expert_action()
            if noise:
                action = np.clip(action + rng.normal(0.0, noise, size=4), -1.0, 1.0).astype(np.float32)
            _, _, _, truncated, info = env.step(action)
            step += 1
        successes += info["success"]
        carry_steps.append(carry)
    env.close()
    return successes / len(seeds), carry_steps


def test_expert_succeeds_and_commits_while_the_cue_is_in_a_16_step_history() -> None:
    rate, carry_steps = _expert_episodes(range(20), noise=0.0)
    assert rate >= 0.9
    # The decision at step t sees observations t-15 .. t with a 16-step history; one of them must be lit (< cue_steps).
    cue_steps = MemoryPickPlaceEnv().cue_steps
    assert max(carry_steps) - 15 < cue_steps and max(carry_steps) <= 12


def test_expert_with_action_noise() -> None:
    rate, _ = _expert_episodes(range(100, 120), noise=0.1)
    assert rate >= 0.8


# --- memory by construction -------------------------------------------------------------
def test_targets_differ_only_during_the_cue_and_the_wrong_pad_fails() -> None:
    """The expert's actions for target 0, replayed with target 1 (same seed): identical
    states after the cue, different during it; the cube lands on the left pad, which is
    a success for target 0 only."""
    env_left = MemoryPickPlaceEnv(cue_steps=3)
    env_left.reset(seed=4, options={"target": 0})
    actions = []
    for _ in range(40):
        actions.append(env_left.expert_action())
        env_left.step(actions[-1])
    left, left_infos = _rollout(env_left, 4, actions, target=0)
    right, right_infos = _rollout(MemoryPickPlaceEnv(cue_steps=3), 4, actions, target=1)
    for t, (a, b) in enumerate(zip(left, right)):
        if t < 3:
            np.testing.assert_array_equal(a[:10], b[:10])
            assert not np.array_equal(a[CUE], b[CUE])
        else:
            np.testing.assert_array_equal(a, b)
    assert left_infos[-1]["success"] and not any(info["success"] for info in right_infos)
    assert np.linalg.norm(right_infos[-1]["object_pos"][:2] - PADS[0]) < 0.02  # it is on the left pad


def test_expert_told_the_wrong_pad_never_succeeds() -> None:
    env = MemoryPickPlaceEnv()
    env.reset(seed=2, options={"target": 1})
    for _ in range(40):
        _, _, _, _, info = env.step(env.expert_action(pad=0))
        assert info["success"] is False
    assert np.linalg.norm(info["object_pos"][:2] - PADS[0]) < 0.02 and not info["grasped"]


def test_pixels_identical_after_the_cue() -> None:
    actions = np.tile(np.array([[0.3, -0.2, -0.5, -1.0]], dtype=np.float32), (5, 1))
    kwargs = {"obs_mode": "state+pixels", "cameras": ["front", "top"], "image_size": [48, 48]}
    left, _ = _rollout(MemoryPickPlaceEnv(cue_steps=2, **kwargs), 3, actions, target=0)
    right, _ = _rollout(MemoryPickPlaceEnv(cue_steps=2, **kwargs), 3, actions, target=1)
    for t, (a, b) in enumerate(zip(left, right)):
        for cam in ("front", "top"):
            assert np.array_equal(a[cam], b[cam]) == (t >= 2), (t, cam)
        np.testing.assert_array_equal(a["state"][:10], b["state"][:10])


# --- one-line errors ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"obs_mode": "rgb"}, re.escape("state, pixels, state+pixels")),
        ({"cameras": ["corner"]}, "front, top"),
        ({"render_camera": "side"}, "front, top"),
        ({"cue_steps": 0}, "cue_steps"),
        ({"render_mode": "human"}, "rgb_array"),
        ({"image_size": [64]}, "image_size"),
    ],
)
def test_bad_options_raise_one_line_config_errors(kwargs, needle) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        MemoryPickPlaceEnv(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "options, needle",
    [({"target": 2}, "0 .left pad. or 1"), ({"target": "left"}, "0 .left pad. or 1"), ({"goal": 0}, "target")],
)
def test_bad_reset_options_raise_one_line_config_errors(options, needle) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        MemoryPickPlaceEnv().reset(seed=0, options=options)
    assert "\n" not in str(err.value)


def test_bad_cue_steps_in_the_config() -> None:
    with pytest.raises(ConfigError, match="cue_steps"):
        MemoryPickPlaceConfig(cue_steps=0)


# --- embodied-collect -----------------------------------------------------------------
def test_collect_writes_three_successful_episodes(tmp_path: Path) -> None:
    out = tmp_path / "memory"
    run_cli("embodied.collect", f"env={ENV_ID}", "episodes=3", f"out={out}", check=True)
    ds = DemoDataset.open(out)
    assert ds.num_episodes == 3 and ds.num_steps == 3 * 80 and ds.obs_keys == ["state"]
    assert ds.attrs["success_rate"] == 1.0 and ds.attrs["episode_success"] == [True, True, True]
