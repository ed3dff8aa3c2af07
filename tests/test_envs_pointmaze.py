"""Gymnasium-Robotics point mazes: registration, spaces, seeding, goal success, rewards, rendering, options."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied.envs as envs
from embodied.envs.navigation import point_maze
from embodied.envs.navigation.point_maze import MAZES, PointMazeEnv
from embodied.errors import ConfigError

# Gymnasium-Robotics declares unbounded observation boxes, as do we; check_env warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:.*infinity:UserWarning")

MAZE_NAMES = list(MAZES)


def _drive_to_goal(env: gym.Env, obs: dict, max_steps: int = 200):
    """Steer the ball with a PD controller until the episode ends or goal success; return the last step."""
    for _ in range(max_steps):
        pos, vel = obs["observation"][:2], obs["observation"][2:]
        action = np.clip(2.0 * (obs["desired_goal"] - pos) - 0.3 * vel, -1.0, 1.0).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated or info["success"]:
            return obs, reward, terminated, truncated, info
    raise AssertionError(f"the controller did not reach the goal in {max_steps} steps")


@pytest.mark.parametrize("obs_mode", ["goal", "flat"])
@pytest.mark.parametrize("maze", MAZE_NAMES)
def test_registered_and_check_env(maze, obs_mode):
    env_id = f"embodied/PointMaze-{maze}-v0"
    assert env_id in envs.REGISTERED
    env = envs.make(env_id, obs_mode=obs_mode)
    assert env.spec.max_episode_steps == MAZES[maze][1]
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert info == {"success": False}
    assert env.observation_space.contains(obs)
    env.close()


def test_caps_match_gymnasium_robotics():
    PointMazeEnv(maze="UMaze").close()  # imports gymnasium_robotics, which registers its own ids
    for maze, (_, cap) in MAZES.items():
        assert gym.spec(f"PointMaze_{maze}-v3").max_episode_steps == cap
        assert gym.spec(f"embodied/PointMaze-{maze}-v0").max_episode_steps == cap


def test_seeding_is_deterministic():
    env = envs.make("embodied/PointMaze-Medium-v0", reward="dense")
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 2)).astype(np.float32)

    def rollout(seed: int) -> list:
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for action in actions:
            obs, reward, terminated, truncated, _ = env.step(action)
            trace.append((obs, reward, terminated, truncated))
        return trace

    first, second = rollout(5), rollout(5)
    for a, b in zip(first, second):
        np.testing.assert_equal(a, b)
    firsts = [env.reset(seed=s)[0] for s in range(5)]
    assert len({tuple(obs["achieved_goal"]) for obs in firsts}) == 5  # different starts
    assert len({tuple(obs["desired_goal"]) for obs in firsts}) == 5  # different goals
    env.close()


def test_reaching_goal_terminates_with_success_sparse():
    env = envs.make("embodied/PointMaze-UMaze-v0", reward="sparse")
    obs, info = env.reset(seed=1, options={"goal_cell": (1, 1), "reset_cell": (1, 2)})
    assert info["success"] is False
    assert (
        np.linalg.norm(obs["desired_goal"] - np.array([-1.0, 1.0])) <= np.sqrt(2) * 0.25 + 1e-6
    )  # cell (1, 1)'s centre
    obs, reward, terminated, truncated, info = _drive_to_goal(env, obs)
    assert info["success"] is True and terminated and not truncated
    assert reward == 1.0
    assert np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) <= point_maze.SUCCESS_DISTANCE
    env.close()


def test_continuing_task_draws_a_new_goal():
    env = envs.make("embodied/PointMaze-UMaze-v0", continuing_task=True)
    obs, _ = env.reset(seed=2, options={"goal_cell": (3, 1), "reset_cell": (3, 2)})
    old_goal = obs["desired_goal"].copy()
    obs, reward, terminated, _, info = _drive_to_goal(env, obs)
    assert info["success"] is True and reward == 1.0 and not terminated
    np.testing.assert_array_equal(obs["desired_goal"], old_goal)  # the reaching step still shows the old goal
    obs, _, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert info["success"] is False
    assert np.linalg.norm(obs["desired_goal"] - old_goal) > point_maze.SUCCESS_DISTANCE
    env.close()


@pytest.mark.parametrize("reward", ["sparse", "dense"])
def test_compute_reward_matches_step_reward(reward):
    env = envs.make("embodied/PointMaze-Open-v0", reward=reward)
    obs, _ = env.reset(seed=3)
    rewards, achieved, desired = [], [], []
    for action in np.random.default_rng(1).uniform(-1, 1, size=(20, 2)).astype(np.float32):
        obs, r, _, _, info = env.step(action)
        assert env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == pytest.approx(
            r, abs=1e-6
        )
        rewards.append(r)
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
    batch = env.unwrapped.compute_reward(np.stack(achieved), np.stack(desired), {})
    assert batch.shape == (20,)
    np.testing.assert_allclose(batch, rewards, atol=1e-6)
    if reward == "dense":
        distance = np.linalg.norm(np.stack(achieved) - np.stack(desired), axis=-1)
        np.testing.assert_allclose(rewards, np.exp(-distance), atol=1e-6)
    env.close()


def test_flat_obs_is_observation_plus_desired_goal():
    goal_env = envs.make("embodied/PointMaze-Large-v0", obs_mode="goal")
    flat_env = envs.make("embodied/PointMaze-Large-v0", obs_mode="flat")
    assert flat_env.observation_space.shape == (6,) and flat_env.observation_space.dtype == np.float32
    g, _ = goal_env.reset(seed=4)
    f, _ = flat_env.reset(seed=4)
    np.testing.assert_array_equal(f, np.concatenate([g["observation"], g["desired_goal"]]))
    action = np.array([0.5, -0.3], dtype=np.float32)
    g, *_ = goal_env.step(action)
    f, *_ = flat_env.step(action)
    np.testing.assert_array_equal(f, np.concatenate([g["observation"], g["desired_goal"]]))
    goal_env.close()
    flat_env.close()


def test_render_shape_and_fps():
    env = envs.make("embodied/PointMaze-UMaze-v0", render_mode="rgb_array", render_size=[48, 64])
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert frame.std() > 0
    assert env.metadata["render_fps"] == round(1.0 / env.unwrapped._env.point_env.dt)
    env.close()
    no_render = envs.make("embodied/PointMaze-UMaze-v0")
    no_render.reset(seed=0)
    assert no_render.render() is None
    no_render.close()


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"maze": "Hard"}, "UMaze"),
        ({"reward": "shaped"}, "dense"),
        ({"obs_mode": "pixels"}, "flat"),
        ({"render_size": [0, 64]}, "render_size"),
    ],
)
def test_bad_options_raise_config_error_before_mujoco(monkeypatch, kwargs, named):
    def no_mujoco():
        raise AssertionError("MuJoCo work started before the options were checked")

    monkeypatch.setattr(point_maze, "_import_point_maze", no_mujoco)
    with pytest.raises(ConfigError) as err:
        PointMazeEnv(**kwargs)
    message = str(err.value)
    assert named in message and "\n" not in message
