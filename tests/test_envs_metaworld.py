"""Tests of the Meta-World v3 envs registered as `embodied/MetaWorld-<task>-v0`.

Covers Gymnasium API conformance (`check_env` on every registered id), seeding,
`info["success"]`, the TimeLimit cap, pixel observation modes and camera
orientation, the scripted experts, and the one-line errors for bad input.

Software rendering (OSMesa) costs ~60 ms per camera image on a 2-core machine,
whatever the image size, so the pixel tests use one or two cameras and few frames.
"""

from __future__ import annotations

import re
import warnings
from typing import Callable

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied  # noqa: F401  (must come before mujoco: it chooses MUJOCO_GL)
import embodied.envs
from embodied.envs.manipulation.metaworld import CAMERAS, OBS_MODES, TASKS, MetaWorldEnv
from embodied.errors import ConfigError

GOAL = slice(36, 39)  # goal position inside the 39-d state
# Single-task ids; the multi-task ones (MetaWorld-MT15-v0, ...) are tested in test_envs_metaworld_multitask.py.
ALL_IDS = [
    env_id
    for env_id in embodied.envs.REGISTERED
    if env_id.removeprefix("embodied/MetaWorld-").removesuffix("-v0") in TASKS
]


def _id(task: str) -> str:
    return f"embodied/MetaWorld-{task}-v0"


# --- check_env with strict warnings ---------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The 14 object-pose dimensions (x2 for the frame stack) are unbounded in Meta-World.
_INF_BOUND = re.compile(r"Box observation space (minimum|maximum) value is -?infinity")
_EQUAL_BOUND = re.compile(r"Box observation space maximum and minimum values are equal")


def _degenerate_dims(env: gym.Env) -> set[int]:
    """Indices of state dimensions whose low bound equals their high bound."""
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict):
        if "state" not in space.spaces:
            return set()
        space = space["state"]
    return set(np.flatnonzero(space.low == space.high).tolist())


def _unexpected_checker_warnings(
    make: Callable[[], gym.Env], skip_render_check: bool, skip_close_check: bool = False
) -> list[str]:
    """Build an env (through `make`), step it through its wrappers, run `check_env` on
    the unwrapped env, and return every warning except the expected ones.

    Expected: the infinite object-pose bounds, and equal low/high bounds as long as
    they are confined to the goal dimensions (Meta-World fixes e.g. the goal height of
    plate-slide; the goal is then a constant there, which is correct).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = make()
        try:
            env.reset(seed=0)
            env.step(env.action_space.sample())
            check_env(env.unwrapped, skip_render_check=skip_render_check, skip_close_check=skip_close_check)
            equal_ok = _degenerate_dims(env) <= set(range(GOAL.start, GOAL.stop))
        finally:
            env.close()
    unexpected = []
    for w in caught:
        text = _ANSI.sub("", str(w.message))
        if _INF_BOUND.search(text) or (equal_ok and _EQUAL_BOUND.search(text)):
            continue
        unexpected.append(f"{w.category.__name__}: {text}")
    return unexpected


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_state_all_tasks(env_id: str) -> None:
    """Every registered id passes `check_env`; the render and close checks, which build
    extra envs, run on all tasks under `slow` and on two tasks below."""
    unexpected = _unexpected_checker_warnings(lambda: gym.make(env_id), skip_render_check=True, skip_close_check=True)
    assert unexpected == []


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_state_all_tasks_with_render_check(env_id: str) -> None:
    """The full check, including `check_env`'s render-mode check, on every task (~0.8 s each)."""
    assert _unexpected_checker_warnings(lambda: gym.make(env_id), skip_render_check=False) == []


# plate-slide-back: two goal dimensions with equal bounds (an allowed checker warning).
@pytest.mark.parametrize("env_id", [_id("pick-place"), _id("plate-slide-back")])
def test_check_env_state_with_render_check(env_id: str) -> None:
    assert _unexpected_checker_warnings(lambda: gym.make(env_id), skip_render_check=False) == []


@pytest.mark.parametrize(
    ("task", "obs_mode", "cameras"),
    [("reach", "pixels", ("corner",)), ("door-open", "state+pixels", ("corner4",))],
)
def test_check_env_pixel_modes(task: str, obs_mode: str, cameras: tuple[str, ...]) -> None:
    def make() -> gym.Env:
        return gym.make(
            _id(task),
            obs_mode=obs_mode,
            cameras=cameras,
            image_size=(32, 40),
            render_mode="rgb_array",
            render_size=(24, 32),
        )

    assert _unexpected_checker_warnings(make, skip_render_check=False) == []


def test_checker_helper_reports_a_broken_env() -> None:
    """The strict-warning helper does fail: an env whose `step` obs dtype disagrees with its space."""

    class Float64StepObs(MetaWorldEnv):
        def step(self, action):
            obs, *rest = super().step(action)
            return (obs.astype(np.float64), *rest)

    unexpected = _unexpected_checker_warnings(lambda: Float64StepObs("reach"), skip_render_check=True)
    assert any("float64" in message for message in unexpected), unexpected


# --- seeding -----------------------------------------------------------------------
def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list:
    obs, info = env.reset(seed=seed)
    out = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info["success"]))
    return out


def _assert_same_rollout(a: list, b: list) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    for sa, sb in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(sa[0], sb[0])
        assert sa[1:] == sb[1:]


@pytest.mark.parametrize("task", ["reach", "pick-place", "door-open"])
def test_same_seed_same_observations_and_trajectory(task: str) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 4)).astype(np.float32)
    env_a, env_b = gym.make(_id(task)), gym.make(_id(task))
    first = _rollout(env_a, 7, actions)
    _assert_same_rollout(first, _rollout(env_b, 7, actions))  # a fresh instance
    _assert_same_rollout(first, _rollout(env_a, 7, actions))  # the same instance, reseeded
    assert not np.array_equal(first[0], first[-1][0])  # the actions did move something
    env_a.close()
    env_b.close()


@pytest.mark.parametrize("task", ["reach", "pick-place", "door-open"])
def test_different_seeds_different_goal_and_object(task: str) -> None:
    env = gym.make(_id(task))
    goals, objects = [], []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_allclose(obs[GOAL], env.unwrapped._env._target_pos, rtol=1e-6)
        goals.append(obs[GOAL])
        objects.append(obs[4:7])
    env.close()
    for i in range(5):
        for j in range(i):
            assert not np.allclose(goals[i], goals[j]), (task, i, j)
            assert not np.allclose(objects[i], objects[j]), (task, i, j)


def test_unseeded_resets_continue_the_seeded_stream() -> None:
    """After reset(seed=s), plain reset() draws new, but reproducible, positions."""
    goal_sequences = []
    for _ in range(2):
        env = gym.make(_id("reach"))
        goals = [env.reset(seed=1)[0][GOAL]] + [env.reset()[0][GOAL] for _ in range(3)]
        goal_sequences.append(np.array(goals))
        env.close()
    np.testing.assert_array_equal(goal_sequences[0], goal_sequences[1])
    assert len({tuple(g) for g in goal_sequences[0]}) == 4


def test_first_reset_without_seed() -> None:
    env = gym.make(_id("reach"))
    obs, info = env.reset()
    assert env.observation_space.contains(obs)
    assert info["success"] is False
    env.close()


# --- info, TimeLimit ---------------------------------------------------------------
def _steps_until_truncated(env: gym.Env, limit: int) -> int:
    env.reset(seed=0)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert type(info["success"]) is bool
        assert terminated is False
        if truncated:
            return t
    return -1


def test_success_is_a_python_bool() -> None:
    env = gym.make(_id("reach"))
    _, info = env.reset(seed=0)
    assert info["success"] is False
    seen_true = False
    for _ in range(120):
        *_, info = env.step(env.unwrapped.expert_action())
        assert type(info["success"]) is bool
        seen_true |= info["success"]
    assert seen_true
    env.close()


def test_time_limit_default_200() -> None:
    env = gym.make(_id("reach"))
    assert env.spec.max_episode_steps == 200
    assert _steps_until_truncated(env, 250) == 200
    env.close()


def test_time_limit_custom() -> None:
    env = gym.make(_id("door-open"), max_episode_steps=37)
    assert _steps_until_truncated(env, 100) == 37
    env.close()


def test_time_limit_beyond_metaworld_500_steps() -> None:
    """Meta-World raises after its internal 500 steps; our env must only truncate, at 600."""
    env = gym.make(_id("reach"), max_episode_steps=600)
    assert _steps_until_truncated(env, 700) == 600
    env.close()


# --- observation modes, rendering, camera orientation --------------------------------
def test_pixels_mode_shapes_and_dtypes() -> None:
    cams = ("corner", "topview", "gripperPOV")
    env = gym.make(_id("reach"), obs_mode="pixels", cameras=cams, image_size=(24, 40))
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(cams) == set(env.observation_space.spaces)
    for cam in cams:
        assert obs[cam].shape == (24, 40, 3) and obs[cam].dtype == np.uint8
        assert obs[cam].std() > 0  # an actual picture, not a blank buffer
    assert env.observation_space.contains(obs)
    assert not np.array_equal(obs["corner"], obs["topview"])
    env.close()


def test_state_pixels_mode_shapes_and_dtypes() -> None:
    cams = ("corner2", "behindGripper")
    env = gym.make(_id("door-open"), obs_mode="state+pixels", cameras=cams, image_size=(30, 20))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state", *cams} == set(env.observation_space.spaces)
    assert obs["state"].shape == (39,) and obs["state"].dtype == np.float32
    for cam in cams:
        assert obs[cam].shape == (30, 20, 3) and obs[cam].dtype == np.uint8
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    env.close()


def test_render_returns_rgb_at_render_size() -> None:
    env = gym.make(_id("reach"), render_mode="rgb_array", render_size=(36, 52), render_camera="topview")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (36, 52, 3) and frame.dtype == np.uint8
    env.close()
    plain = gym.make(_id("reach"))
    plain.reset(seed=0)
    assert plain.render() is None  # no render_mode: no frame
    plain.close()


def _raw_render(env: MetaWorldEnv, camera: str, size: tuple[int, int]) -> np.ndarray:
    """What a plain `mujoco.Renderer` returns for `camera`, without the wrapper's fix-ups."""
    renderer = mujoco.Renderer(env._env.model, height=size[0], width=size[1])
    try:
        renderer.update_scene(env._env.data, camera=camera)
        return renderer.render().copy()
    finally:
        renderer.close()


@pytest.mark.parametrize(("camera", "rotated"), [("corner", True), ("corner3", True), ("topview", False)])
def test_corner_images_are_raw_render_rotated_180(camera: str, rotated: bool) -> None:
    """Contract: the upside-down corner cameras are the raw render turned 180 degrees,
    other cameras pass through; `test_fixed_cameras_are_upright_and_not_mirrored`
    checks that the result is upright and unmirrored."""
    env = gym.make(_id("reach")).unwrapped
    env.reset(seed=0)
    size = (48, 64)
    raw = _raw_render(env, camera, size)
    assert not np.array_equal(raw, raw[::-1])  # else the comparison below proves nothing
    expected = raw[::-1, ::-1] if rotated else raw
    np.testing.assert_array_equal(env.camera_image(camera, size, "full"), expected)
    env.close()


_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "rows reversed": lambda a: a[::-1],
    "columns reversed": lambda a: a[:, ::-1],
    "rotated 180": lambda a: a[::-1, ::-1],
}


def _hand_centroid(env: MetaWorldEnv, camera: str, segmenter: mujoco.Renderer, transform) -> np.ndarray:
    """(row, column) of the gripper's pixels as the wrapper would present them."""
    model = env._env.model
    hand = model.body("hand").id

    def in_hand(body: int) -> bool:
        while body != 0:
            if body == hand:
                return True
            body = model.body_parentid[body]
        return False

    segmenter.update_scene(env._env.data, camera=camera)
    seg = segmenter.render()
    ids, types = seg[..., 0], seg[..., 1]
    hand_geoms = [g for g in range(model.ngeom) if in_hand(model.geom_bodyid[g])]
    mask = transform((types == mujoco.mjtObj.mjOBJ_GEOM) & np.isin(ids, hand_geoms))
    if mask.sum() < 5:
        pytest.fail(f"gripper not visible from camera {camera!r}")
    return np.argwhere(mask).mean(axis=0)


@pytest.mark.parametrize("camera", ["corner", "corner2", "corner3", "corner4"])
def test_fixed_cameras_are_upright_and_not_mirrored(camera: str) -> None:
    """Move the gripper up, then to the camera's right: in an upright, unmirrored image
    it must move up (row decreases), then right (column increases)."""
    env = gym.make(_id("reach")).unwrapped
    env.reset(seed=0)
    size = (160, 160)
    raw = _raw_render(env, camera, size)
    shown = env.camera_image(camera, size, "full")
    applied = [name for name, fn in _TRANSFORMS.items() if np.array_equal(fn(raw), shown)]
    if len(applied) != 1:
        pytest.fail(f"camera {camera!r}: the wrapper's image is no flip/rotation of the raw render")
    transform = _TRANSFORMS[applied[0]]

    cam_axes = env._env.data.camera(camera).xmat.reshape(3, 3)
    right = np.cross(-cam_axes[:, 2], [0.0, 0.0, 1.0])  # view direction x world-up
    right /= np.linalg.norm(right)

    segmenter = mujoco.Renderer(env._env.model, height=size[0], width=size[1])
    segmenter.enable_segmentation_rendering()
    start = _hand_centroid(env, camera, segmenter, transform)
    for _ in range(15):
        env.step(np.array([0, 0, 1, 0], dtype=np.float32))
    raised = _hand_centroid(env, camera, segmenter, transform)
    for _ in range(15):
        env.step(np.array([right[0], right[1], 0, 0], dtype=np.float32))
    moved_right = _hand_centroid(env, camera, segmenter, transform)
    segmenter.close()
    env.close()
    assert raised[0] < start[0] - 2, f"{camera} ({applied[0]}): gripper moved up but went down in the image"
    assert moved_right[1] > raised[1] + 2, f"{camera} ({applied[0]}): gripper moved right but went left (mirrored)"


# --- scripted experts --------------------------------------------------------------
@pytest.mark.parametrize("task", ["reach", "button-press-topdown", "door-open"])
def test_expert_succeeds(task: str) -> None:
    """~0.3 s per task: 5 episodes, stopped at the first success (after 40-90 steps)."""
    env = gym.make(_id(task))
    successes = 0
    for seed in range(5):
        env.reset(seed=seed)
        for _ in range(200):
            _, _, _, truncated, info = env.step(env.unwrapped.expert_action())
            if info["success"] or truncated:
                break
        successes += info["success"]
    env.close()
    assert successes >= 4, f"{task}: expert succeeded on {successes}/5 seeds"


# --- bad input ---------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_task_suggests_close_match() -> None:
    with pytest.raises(ConfigError) as err:
        MetaWorldEnv(task="reech")
    message = _one_line(err)
    assert "'reech'" in message and "did you mean reach" in message


def test_unknown_obs_mode_lists_choices() -> None:
    with pytest.raises(ConfigError) as err:
        gym.make(_id("reach"), obs_mode="pixel")
    message = _one_line(err)
    assert "'pixel'" in message and all(mode in message for mode in OBS_MODES)


@pytest.mark.parametrize("kwargs", [{"cameras": ("corner", "cornr")}, {"render_camera": "top"}])
def test_unknown_camera_lists_choices(kwargs: dict) -> None:
    with pytest.raises(ConfigError) as err:
        gym.make(_id("reach"), obs_mode="pixels", **kwargs)
    message = _one_line(err)
    assert all(cam in message for cam in CAMERAS)


def test_make_unknown_id_suggests_close_match() -> None:
    with pytest.raises(ConfigError) as err:
        embodied.envs.make("embodied/MetaWorld-reech-v0")
    message = _one_line(err)
    assert "did you mean embodied/MetaWorld-reach-v0" in message


def test_make_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError) as err:
        embodied.envs.make(_id("reach"), obs_mod="pixels")
    message = _one_line(err)
    assert "obs_mod" in message and "obs_mode" in message and "max_episode_steps" in message


def test_all_tasks_registered() -> None:
    assert len(TASKS) == 50
    assert ALL_IDS == [_id(t) for t in TASKS]
    assert all(env_id in gym.registry for env_id in ALL_IDS)
