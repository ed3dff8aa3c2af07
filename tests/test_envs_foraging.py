"""Tests of `embodied/HomeostaticForaging-v0` (envs/navigation/foraging.py).

Covers Gymnasium conformance, the internal-state dynamics in constructed states (decay,
consumption under both mappings, the four deaths), both rewards computed by hand, the
concept shift across resets, seeding, success at the TimeLimit cap, rendering, the
config schema and the one-line errors. Constructed states use
`reset(options={"internal": ..., "mapping": ...})`, `place_robot` and `place_resource`;
with a zero action the robot stays where it was placed.
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
from embodied.envs.navigation.configs import ForagingConfig
from embodied.envs.navigation.foraging import DEATH_CAUSES, ENV_ID, SPAWN_GAP, HomeostaticForagingEnv
from embodied.errors import ConfigError

ZERO = np.zeros(2, dtype=np.float32)
# Parking spots far from the robot (kept at the centre) for items a test does not use.
_ROWS = (-0.85, -0.5, -0.15, 0.15, 0.5, 0.85)
PARK = {"food": [(-0.85, y) for y in _ROWS], "water": [(0.85, y) for y in _ROWS]}


def _constructed(env: HomeostaticForagingEnv, internal=None, mapping="normal", seed=0) -> HomeostaticForagingEnv:
    """Reset to a known internal state and mapping, robot at the centre, every item parked."""
    options = {"mapping": mapping}
    if internal is not None:
        options["internal"] = internal
    env.reset(seed=seed, options=options)
    env.place_robot([0.0, 0.0])
    for kind, spots in PARK.items():
        for index, xy in enumerate(spots):
            env.place_resource(kind, index, xy)
    return env


def _drive(internal, setpoint=(0.6, 0.6), n=4.0, m=3.0) -> float:
    return (abs(setpoint[0] - internal[0]) ** n + abs(setpoint[1] - internal[1]) ** n) ** (1.0 / m)


# --- registration, API conformance, config ---------------------------------------------
def test_registered_and_check_env_without_warnings():
    assert ENV_ID in embodied.envs.REGISTERED
    env = embodied.envs.make(ENV_ID)
    assert env.unwrapped.episode_cap == 1000 and env.spec.max_episode_steps == 1000
    assert env.observation_space.shape == (30,) and env.action_space.shape == (2,)  # 6 + 4 x 6 items
    assert set(env.unwrapped.metadata["death_causes"]) == set(DEATH_CAUSES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def test_check_env_with_the_render_check():
    env = gym.make(ENV_ID, render_mode="rgb_array", render_size=[32, 32])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_constructor_matches_the_config_schema():
    common = {f.name for f in dataclasses.fields(EnvConfig)}
    schema = {
        f.name: getattr(ForagingConfig(), f.name) for f in dataclasses.fields(ForagingConfig) if f.name not in common
    }
    params = inspect.signature(HomeostaticForagingEnv).parameters
    assert set(params) == set(schema) | {"render_mode"}
    for name, default in schema.items():
        expected = params[name].default
        assert (list(expected) if isinstance(expected, tuple) else expected) == default, name


def test_yaml_composes_and_builds_the_env():
    from hydra.core.global_hydra import GlobalHydra

    from embodied.cli import compose, to_dataclass

    try:
        cfg = to_dataclass(
            compose("config", ["~experiment", "env=foraging", "env.reward=survival", "env.shift_schedule=[5,9]"])
        )
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(cfg.env, ForagingConfig) and cfg.env.id == ENV_ID
    common = {f.name for f in dataclasses.fields(EnvConfig)}
    kwargs = {f.name: getattr(cfg.env, f.name) for f in dataclasses.fields(cfg.env) if f.name not in common}
    env = embodied.envs.make(cfg.env.id, **kwargs)
    assert env.unwrapped.reward_mode == "survival" and env.unwrapped.shift_schedule == {5, 9}


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"reward": "pleasure"}, "drive, survival"),
        ({"render_mode": "human"}, "rgb_array"),
        ({"setpoint": [0.6, 1.6]}, "setpoint"),
        ({"reward_scale": -1.0}, "reward_scale > 0"),
        ({"decay": [0.003]}, "decay"),
        ({"resources_per_type": 0}, "resources_per_type"),
        ({"shift_schedule": [10, 0]}, "shift_schedule"),
    ],
)
def test_bad_options_raise_one_line_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        HomeostaticForagingEnv(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_reward_through_make_names_the_allowed_rewards():
    with pytest.raises(ConfigError, match="unknown reward 'pleasure'.*choose from: drive, survival"):
        embodied.envs.make(ENV_ID, reward="pleasure")


def test_bad_reset_options_raise_config_errors():
    env = HomeostaticForagingEnv()
    with pytest.raises(ConfigError, match="normal, swapped"):
        env.reset(options={"mapping": "inverted"})
    with pytest.raises(ConfigError, match="strictly inside"):
        env.reset(options={"internal": [0.5, 1.5]})
    with pytest.raises(ConfigError, match="internal, mapping"):
        env.reset(options={"energy": 0.5})


# --- internal-state dynamics -----------------------------------------------------------
def test_decay_per_step_is_exact():
    env = _constructed(HomeostaticForagingEnv(decay=[0.01, 0.02]), internal=[0.5, 0.7])
    expected = np.array([0.5, 0.7])
    for _ in range(5):
        obs, _, terminated, _, info = env.step(ZERO)
        expected = expected - np.array([0.01, 0.02])
        assert not terminated and info["consumed"] == [] and info["death_cause"] is None
        np.testing.assert_array_equal(info["internal"], expected)
        np.testing.assert_array_equal(obs[4:6], expected.astype(np.float32))
    np.testing.assert_allclose(info["internal"], [0.45, 0.6], atol=1e-12)


@pytest.mark.parametrize(
    "mapping, kind, restored",
    [("normal", "food", 0), ("normal", "water", 1), ("swapped", "food", 1), ("swapped", "water", 0)],
)
def test_consumption_restores_the_mapped_variable(mapping, kind, restored):
    env = _constructed(HomeostaticForagingEnv(), internal=[0.4, 0.4], mapping=mapping)
    env.place_resource(kind, 1, [0.05, 0.05])  # within the 0.15 m reach
    _, _, terminated, _, info = env.step(ZERO)
    expected = np.array([0.4 - 0.003, 0.4 - 0.003])
    expected[restored] += 0.25
    assert info["consumed"] == [kind] and info["mapping"] == mapping and not terminated
    np.testing.assert_allclose(info["internal"], expected, atol=1e-12)
    respawned = env.resource_pos[kind][1]
    assert np.linalg.norm(respawned - info["robot_pos"]) >= SPAWN_GAP  # moved away, not eaten again
    _, _, _, _, info = env.step(ZERO)
    assert info["consumed"] == []


def test_several_items_in_one_step_are_all_consumed():
    env = _constructed(HomeostaticForagingEnv(restore=0.1), internal=[0.3, 0.3])
    env.place_resource("food", 0, [0.05, 0.0])
    env.place_resource("food", 2, [0.0, -0.1])
    env.place_resource("water", 1, [-0.05, 0.05])
    _, _, _, _, info = env.step(ZERO)
    assert sorted(info["consumed"]) == ["food", "food", "water"]
    np.testing.assert_allclose(info["internal"], [0.3 - 0.003 + 0.2, 0.3 - 0.003 + 0.1], atol=1e-12)


@pytest.mark.parametrize(
    "internal, eat, cause",
    [
        ([0.002, 0.6], None, "energy_depleted"),
        ([0.6, 0.003], None, "hydration_depleted"),  # reaching the bound exactly is death too
        ([0.9, 0.6], "food", "energy_overload"),
        ([0.6, 0.9], "water", "hydration_overload"),
    ],
)
def test_each_death_cause_in_a_constructed_state(internal, eat, cause):
    env = _constructed(HomeostaticForagingEnv(viable=[0.0, 1.0]), internal=internal)
    if eat:
        env.place_resource(eat, 0, [0.0, 0.0])
    obs, _, terminated, truncated, info = env.step(ZERO)
    assert terminated and not truncated
    assert info["death_cause"] == cause and cause in DEATH_CAUSES and info["success"] is False
    assert env.observation_space.contains(obs)


# --- rewards ---------------------------------------------------------------------------
def test_drive_reward_is_the_drive_reduction():
    env = _constructed(HomeostaticForagingEnv(reward="drive"), internal=[0.5, 0.7])
    _, reward, _, _, info = env.step(ZERO)  # decay only: both variables drift down
    assert info["drive"] == pytest.approx(_drive([0.497, 0.697]), abs=1e-12)
    assert reward == pytest.approx(_drive([0.5, 0.7]) - _drive([0.497, 0.697]), abs=1e-12)
    env.place_resource("food", 0, [0.0, 0.0])
    _, reward, _, _, info = env.step(ZERO)  # eat: energy overshoots the setpoint
    after = [0.497 - 0.003 + 0.25, 0.694]
    assert info["drive"] == pytest.approx(_drive(after), abs=1e-12)
    assert reward == pytest.approx(_drive([0.497, 0.697]) - _drive(after), abs=1e-12)
    assert reward < 0  # overshooting by 0.144 is worse than undershooting by 0.103


def test_reward_scale_and_death_penalty():
    env = _constructed(HomeostaticForagingEnv(reward_scale=10.0, death_penalty=1.0), internal=[0.5, 0.7])
    _, reward, terminated, _, _ = env.step(ZERO)
    assert not terminated and reward == pytest.approx(10 * (_drive([0.5, 0.7]) - _drive([0.497, 0.697])), abs=1e-12)
    env = _constructed(HomeostaticForagingEnv(reward_scale=10.0, death_penalty=1.0), internal=[0.002, 0.6])
    _, reward, terminated, _, _ = env.step(ZERO)  # starves on this step: the penalty comes on top
    assert terminated and reward == pytest.approx(10 * (_drive([0.002, 0.6]) - _drive([-0.001, 0.597])) - 1.0)
    with pytest.raises(ConfigError, match="reward_scale > 0"):
        HomeostaticForagingEnv(reward_scale=0.0)


@pytest.mark.parametrize(("below", "pays"), [(0.2, True), (0.15, True), (0.1, False), (0.0, False), (-0.1, False)])
def test_eating_pays_only_when_far_enough_below_the_setpoint(below, pays):
    """Drive reduction rewards eating when it brings energy closer to the setpoint: more than
    restore / 2 (0.125) below it. At or above the setpoint, eating is punished (overshoot)."""
    env = _constructed(HomeostaticForagingEnv(reward="drive", decay=[0.0, 0.0]), internal=[0.6 - below, 0.6])
    env.place_resource("food", 0, [0.0, 0.0])
    _, reward, _, _, info = env.step(ZERO)
    assert info["consumed"] == ["food"] and (reward > 0) == pays


def test_start_internal_is_drawn_from_its_range_and_checked():
    env = HomeostaticForagingEnv()
    starts = np.array([env.reset(seed=s)[1]["internal"] for s in range(50)])
    assert starts.min() >= 0.3 and starts.max() <= 0.5 and starts.std() > 0.03  # below the setpoint, varied
    fixed = HomeostaticForagingEnv(start_internal=[0.45, 0.45])
    np.testing.assert_array_equal(fixed.reset(seed=0)[1]["internal"], [0.45, 0.45])
    with pytest.raises(ConfigError, match="start_internal must be"):
        HomeostaticForagingEnv(start_internal=[0.5, 0.3])


@pytest.mark.parametrize(("actuation", "steps_to_90_percent"), [("velocity", 3), ("force", 10)])
def test_actuation_reaches_the_top_speed(actuation, steps_to_90_percent):
    env = HomeostaticForagingEnv(actuation=actuation)
    env.reset(seed=0)
    env.place_robot([-0.8, -0.8])
    speeds = []
    for _ in range(15):
        env.step(np.array([1.0, 0.0], dtype=np.float32))
        speeds.append(env.data.qvel[0])
    assert int(np.argmax(np.array(speeds) >= 0.9)) + 1 == steps_to_90_percent and max(speeds) <= 1.0 + 1e-6


def test_survival_reward_is_minus_one_on_the_terminal_step_only():
    env = _constructed(HomeostaticForagingEnv(reward="survival"), internal=[0.01, 0.6])
    rewards, terminated = [], False
    while not terminated:
        _, reward, terminated, _, info = env.step(ZERO)
        rewards.append(reward)
    assert rewards == [0.0, 0.0, 0.0, -1.0]  # 0.01 -> 0.007, 0.004, 0.001, -0.002
    assert info["death_cause"] == "energy_depleted"


# --- concept shift ---------------------------------------------------------------------
def _mappings(env: HomeostaticForagingEnv, steps: int, reset_every: int) -> list[str]:
    """info["mapping"] after each of `steps` zero-action steps, resetting every `reset_every`."""
    seen = []
    env.reset(seed=0)
    for k in range(1, steps + 1):
        seen.append(env.step(ZERO)[4]["mapping"])
        if k % reset_every == 0:
            _, info = env.reset()
            assert info["mapping"] == seen[-1]  # reset keeps the mapping and the step count
    return seen


def test_shift_every_swaps_at_multiples_of_the_total_steps_across_resets():
    env = HomeostaticForagingEnv(decay=[0.0, 0.0], shift_every=3)
    seen = _mappings(env, 9, reset_every=2)
    # the mapping after total step k governs step k + 1
    assert seen == ["normal", "normal", "swapped", "swapped", "swapped", "normal", "normal", "normal", "swapped"]
    assert env.total_steps == 9


def test_shift_schedule_swaps_exactly_at_the_listed_counts():
    env = HomeostaticForagingEnv(decay=[0.0, 0.0], shift_every=2, shift_schedule=[2, 5, 6])  # the schedule wins
    seen = _mappings(env, 8, reset_every=3)
    assert seen == ["normal", "swapped", "swapped", "swapped", "normal", "swapped", "swapped", "swapped"]


def test_after_a_shift_food_restores_hydration():
    env = _constructed(HomeostaticForagingEnv(shift_every=2), internal=[0.4, 0.4])
    env.step(ZERO)
    env.step(ZERO)
    env.place_resource("food", 0, [0.0, 0.0])
    _, _, _, _, info = env.step(ZERO)
    assert info["consumed"] == ["food"]
    np.testing.assert_allclose(info["internal"], [0.4 - 0.009, 0.4 - 0.009 + 0.25], atol=1e-12)


# --- seeding, success, rendering ------------------------------------------------------
def test_same_seed_same_trajectory_and_different_seeds_differ():
    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 2)).astype(np.float32)

    def rollout(seed: int) -> list[np.ndarray]:
        env = HomeostaticForagingEnv()
        obs, _ = env.reset(seed=seed)
        trajectory = [obs]
        for action in actions:
            obs, reward, terminated, _, _ = env.step(action)
            trajectory.append(np.append(obs, reward))
            if terminated:
                obs, _ = env.reset()
        return trajectory

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_observation_lists_items_nearest_first():
    env = _constructed(HomeostaticForagingEnv(), internal=[0.5, 0.5])
    env.place_resource("food", 2, [0.3, 0.0])
    obs, *_ = env.step(ZERO)
    food = obs[6:12].reshape(3, 2)
    np.testing.assert_allclose(food[0], [0.3, 0.0], atol=1e-3)
    assert np.all(np.diff(np.linalg.norm(food, axis=1)) >= 0)


def test_success_when_alive_at_the_cap_made_through_make():
    env = embodied.envs.make(ENV_ID, max_episode_steps=5, decay=[0.0, 0.0])
    assert env.unwrapped.episode_cap == 5
    env.reset(seed=0)
    for step in range(1, 6):
        _, _, terminated, truncated, info = env.step(ZERO)
        assert not terminated and truncated == (step == 5) and info["success"] == (step == 5)
    plain = HomeostaticForagingEnv(decay=[0.0, 0.0])  # no cap told: never a success
    plain.reset(seed=0)
    assert not any(plain.step(ZERO)[4]["success"] for _ in range(6))


def test_render_shape_dtype_and_internal_state_bars():
    env = HomeostaticForagingEnv(render_mode="rgb_array", render_size=[48, 64], viable=[0.0, 1.0])
    env.reset(seed=0, options={"internal": [0.9, 0.2]})
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    # bars: pad 2, height 2, width 21; energy row 2, hydration row 6 (green / blue fill)
    assert tuple(frame[2, 3]) == (40, 190, 40) and tuple(frame[6, 3]) == (50, 100, 240)
    assert tuple(frame[2, 2 + 18]) == (40, 190, 40) and tuple(frame[6, 2 + 18]) == (30, 30, 30)
    assert HomeostaticForagingEnv().render() is None
    env.close()
    env.close()


def test_rendering_does_not_change_the_trajectory():
    actions = np.random.default_rng(1).uniform(-1, 1, size=(6, 2)).astype(np.float32)
    plain, filmed = HomeostaticForagingEnv(), HomeostaticForagingEnv(render_mode="rgb_array", render_size=[24, 24])
    plain.reset(seed=5)
    filmed.reset(seed=5)
    for action in actions:
        filmed.render()
        np.testing.assert_array_equal(plain.step(action)[0], filmed.step(action)[0])
    filmed.close()
