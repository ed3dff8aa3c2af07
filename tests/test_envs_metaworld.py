"""Meta-World envs: checker on every registered id, seeding, caps, observation modes, experts, errors."""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied.envs
from embodied.envs import REGISTERED
from embodied.envs.manipulation.metaworld import MetaWorldEnv
from embodied.errors import ConfigError

# Meta-World's state space has infinite bounds for some dims, and 7 tasks (assembly,
# box-close, plate-slide*, ...) never randomise one or two goal coordinates, whose
# bounds are therefore equal; the checker warns about both, correctly, for these dims.
_EXPECTED = ("minimum value is -infinity", "maximum value is infinity", "maximum and minimum values are equal")
FAST = ["embodied/MetaWorld-reach-v0", "embodied/MetaWorld-door-open-v0", "embodied/MetaWorld-pick-place-v0", "embodied/MetaWorld-assembly-v0"]


def _check(env: gym.Env, **kwargs) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    unexpected = [str(w.message) for w in caught if not any(e in str(w.message) for e in _EXPECTED)]
    assert not unexpected, unexpected


def test_all_fifty_tasks_registered() -> None:
    assert len([i for i in REGISTERED if i.startswith("embodied/MetaWorld-")]) == 50


@pytest.mark.parametrize("env_id", FAST)
def test_check_env_fast_subset(env_id: str) -> None:
    env = gym.make(env_id)
    _check(env.unwrapped)
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [i for i in REGISTERED if i not in FAST])
def test_check_env_every_task(env_id: str) -> None:
    env = gym.make(env_id)
    _check(env.unwrapped)
    env.close()


@pytest.mark.parametrize("obs_mode", ["pixels", "state+pixels"])
def test_check_env_pixel_modes(obs_mode: str) -> None:
    env = gym.make("embodied/MetaWorld-reach-v0", obs_mode=obs_mode, cameras=["corner", "gripperPOV"], image_size=[32, 48], render_mode="rgb_array", render_size=[48, 64])
    _check(env.unwrapped, skip_render_check=False)
    obs, _ = env.reset(seed=0)
    assert obs["corner"].shape == (32, 48, 3) and obs["corner"].dtype == np.uint8
    assert ("state" in obs) == (obs_mode == "state+pixels")
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 1.0
    env.close()


def _trajectory(seed: int, steps: int = 20) -> np.ndarray:
    env = gym.make("embodied/MetaWorld-pick-place-v0")
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, 4)).astype(np.float32)
    out = [obs] + [env.step(a)[0] for a in actions]
    env.close()
    return np.stack(out)


def test_same_seed_same_trajectory() -> None:
    np.testing.assert_array_equal(_trajectory(3), _trajectory(3))
    assert not np.allclose(_trajectory(3)[0, 36:39], _trajectory(4)[0, 36:39]), "goal must depend on the seed"


def test_unseeded_resets_differ() -> None:
    env = gym.make("embodied/MetaWorld-reach-v0")
    first, _ = env.reset(seed=1)
    second, _ = env.reset()
    assert not np.allclose(first[36:39], second[36:39])


def test_success_is_bool_and_time_limit() -> None:
    env = gym.make("embodied/MetaWorld-reach-v0")
    env.reset(seed=0)
    for t in range(200):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(info["success"], bool) and isinstance(reward, float)
        assert truncated == (t == 199) and not terminated
    long = gym.make("embodied/MetaWorld-reach-v0", max_episode_steps=600)
    long.reset(seed=0)
    for t in range(600):  # past Meta-World's internal 500-step limit, which would raise
        truncated = long.step(long.action_space.sample())[3]
    assert truncated


def test_corner_camera_is_flipped_upright() -> None:
    import mujoco

    env = MetaWorldEnv("reach", render_mode="rgb_array")
    env.reset(seed=0)
    ours = env.camera_image("corner", (32, 32))
    renderer = mujoco.Renderer(env._env.model, 32, 32)
    renderer.update_scene(env._env.data, camera="corner")
    np.testing.assert_array_equal(ours, renderer.render()[::-1])
    renderer.close()
    env.close()


@pytest.mark.parametrize("task", ["reach", "button-press-topdown", "door-open"])
def test_scripted_expert_succeeds(task: str) -> None:
    env = gym.make(f"embodied/MetaWorld-{task}-v0")
    wins = 0
    for seed in range(5):
        env.reset(seed=seed)
        for _ in range(200):
            if env.step(env.unwrapped.expert_action())[4]["success"]:
                wins += 1
                break
    assert wins >= 4, f"{task}: expert succeeded {wins}/5"


def test_bad_names_fail_with_suggestions() -> None:
    with pytest.raises(ConfigError, match="did you mean reach") as err:
        MetaWorldEnv("reech")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="state, pixels, state\\+pixels"):
        MetaWorldEnv("reach", obs_mode="rgb")
    with pytest.raises(ConfigError, match="gripperPOV"):
        MetaWorldEnv("reach", obs_mode="pixels", cameras=["front"])
    with pytest.raises(ConfigError, match="did you mean embodied/MetaWorld-reach-v0"):
        embodied.envs.make("embodied/MetaWorld-reech-v0")
    with pytest.raises(ConfigError, match="it accepts: .*obs_mode"):
        embodied.envs.make("embodied/MetaWorld-reach-v0", obs_mod="pixels")
