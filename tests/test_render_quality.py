"""Render profiles (embodied.rendering): `full` is MuJoCo's own picture, `fast` shows the same things.

The picture check renders one state in both profiles as segmentation maps and asserts
that what a policy must see (the gripper, every task object) lands on the same pixels,
so `fast` can never hide the goal, the object or the hand.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import embodied.envs  # noqa: F401  (registers the envs)
from embodied.errors import ConfigError
from embodied.rendering import Cameras, Renderer, resolve_quality, simplify_meshes, software_rendering

pytestmark = pytest.mark.skipif(
    __import__("embodied.rendering", fromlist=["rendering_problem"]).rendering_problem() is not None,
    reason="no offscreen GL",
)

GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)


def _model_data(env: gym.Env) -> tuple[mujoco.MjModel, mujoco.MjData]:
    inner = getattr(env, "_env", env)
    return inner.model, inner.data


def _groups(model: mujoco.MjModel) -> dict[str, list[int]]:
    """Geoms by what they show: `gripper` (the subtree of body `hand`), and each other body
    hanging off the world (an arm, a task object); the world's own geoms (table, floor) are left out."""
    hand = model.body("hand").id
    groups: dict[str, list[int]] = {}
    for geom in range(model.ngeom):
        body = int(model.geom_bodyid[geom])
        if body == 0:
            continue
        chain = [body]
        while model.body_parentid[chain[-1]] != 0:
            chain.append(int(model.body_parentid[chain[-1]]))
        name = "gripper" if hand in chain else model.body(chain[-1]).name
        groups.setdefault(name, []).append(geom)
    return groups


SCENES = [
    ("embodied/MetaWorld-reach-v0", "corner"),
    ("embodied/MetaWorld-pick-place-v0", "corner"),
    ("embodied/MetaWorld-door-open-v0", "corner"),
    ("embodied/MemoryPickPlace-v0", "front"),
    ("embodied/Tabletop-v0", "front"),
]


@pytest.mark.parametrize(("env_id", "camera"), SCENES)
@pytest.mark.parametrize("size", [(64, 64), (128, 128)])
def test_fast_shows_the_gripper_and_objects_where_full_does(env_id: str, camera: str, size: tuple[int, int]) -> None:
    env = gym.make(env_id).unwrapped
    env.reset(seed=1)
    expert = getattr(env, "expert_action", None)  # Tabletop has none: a fixed push instead
    for _ in range(30):  # the hand moves towards the object
        env.step(expert() if expert else np.full(env.action_space.shape, 0.5, dtype=np.float32))
    full = env.camera_image(camera, size, "full", segmentation=True)
    fast = env.camera_image(camera, size, "fast", segmentation=True)
    model, _ = _model_data(env)
    env.close()
    assert (full == fast).all(-1).mean() >= 0.98, "fast and full label under 98% of the pixels alike"
    seen = 0
    for name, geoms in _groups(model).items():
        a = (full[..., 1] == GEOM) & np.isin(full[..., 0], geoms)
        b = (fast[..., 1] == GEOM) & np.isin(fast[..., 0], geoms)
        if not a.any():
            continue
        seen += 1
        assert b.any(), f"{name} is visible in full but hidden in fast"
        if a.sum() >= 20:
            iou = (a & b).sum() / (a | b).sum()
            assert iou >= 0.8, f"{name}: fast and full masks overlap by IoU {iou:.2f} < 0.8"
        else:
            assert abs(int(a.sum()) - int(b.sum())) <= 2, f"{name}: {a.sum()} pixels in full, {b.sum()} in fast"
    assert seen >= 2, "the check saw fewer than two objects: it proves nothing"


def test_full_is_mujocos_own_picture() -> None:
    env = gym.make("embodied/MetaWorld-pick-place-v0").unwrapped
    env.reset(seed=0)
    model, data = _model_data(env)
    reference = mujoco.Renderer(model, 48, 64)
    reference.update_scene(data, camera="corner")
    expected = reference.render()
    reference.close()
    ours = Renderer(model, (48, 64), "full")
    np.testing.assert_array_equal(ours.render(data, "corner"), expected)
    fast = Renderer(model, (48, 64), "fast").render(data, "corner")
    assert not np.array_equal(fast, expected)  # the profiles differ, so the test above is not vacuous
    env.close()


def test_simplified_meshes_keep_small_meshes_and_shrink_the_sawyer() -> None:
    env = gym.make("embodied/MetaWorld-reach-v0").unwrapped
    model, _ = _model_data(env)
    simple, before, after = simplify_meshes(model, min_faces=2000)
    assert before == model.nmeshface and after < before / 3
    small = model.mesh_facenum < 2000
    np.testing.assert_array_equal(simple.mesh_facenum[small], model.mesh_facenum[small])
    assert (simple.mesh_facenum[~small] < model.mesh_facenum[~small]).all()
    assert model.mesh_facenum.sum() == before  # the env's own model is untouched
    env.close()


def test_closing_one_renderer_leaves_the_others_working() -> None:
    """Each renderer frees its GL objects under its own context: freeing them under another
    context deletes that context's buffers, and its frames turn to garbage."""
    env = gym.make("embodied/Tabletop-v0").unwrapped
    env.reset(seed=0)
    model, data = _model_data(env)
    cameras = Cameras()
    before = cameras.render(model, data, "front", (64, 64), "fast").copy()
    Renderer(model, (32, 32), "full").close()
    cameras.render(model, data, "front", (48, 48), "full")
    np.testing.assert_array_equal(cameras.render(model, data, "front", (64, 64), "fast"), before)
    cameras.close()
    env.close()


def test_observations_use_render_quality_and_videos_stay_full() -> None:
    env = gym.make("embodied/Tabletop-v0", obs_mode="pixels", render_mode="rgb_array", render_quality="fast").unwrapped
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["front"], env.camera_image("front", env.image_size, "fast"))
    assert env.video_quality == "full"
    np.testing.assert_array_equal(env.render(), env.camera_image("front", env.render_size, "full"))
    env.close()


def test_auto_is_fast_on_software_gl_and_bad_values_fail_in_one_line() -> None:
    assert resolve_quality("auto") == ("fast" if software_rendering() else "full")
    assert resolve_quality("full") == "full"
    with pytest.raises(ConfigError, match="render_quality must be one of auto, fast, full"):
        resolve_quality("pretty")
    with pytest.raises(ConfigError, match="video_quality"):
        gym.make("embodied/MetaWorld-reach-v0", video_quality="hd")


# --- the profile travels with the data ------------------------------------------------------
def test_datasets_record_their_profile_and_training_refuses_another(tmp_path) -> None:
    from embodied.collect import CollectConfig, collect
    from embodied.data import DemoDataset
    from embodied.errors import DatasetError
    from embodied.imitation import check_dataset

    env_id = "embodied/MemoryPickPlace-v0"
    kwargs = dict(obs_mode="state+pixels", image_size=[16, 16])
    path = collect(CollectConfig(env=env_id, episodes=1, out=str(tmp_path / "d"), render_quality="fast", **kwargs))
    dataset = DemoDataset.open(path)
    assert dataset.attrs["render_quality"] == "fast"
    check_dataset(dataset, gym.make(env_id, render_quality="fast", **kwargs), env_id)
    with pytest.raises(DatasetError, match="rendered with render_quality=fast but env .* renders full"):
        check_dataset(dataset, gym.make(env_id, render_quality="full", **kwargs), env_id)
    dataset.attrs.pop("render_quality")  # a dataset from before the profiles: drawn full
    with pytest.raises(DatasetError, match="render_quality=full but env .* renders fast"):
        check_dataset(dataset, gym.make(env_id, render_quality="fast", **kwargs), env_id)


def test_a_run_config_names_the_resolved_profile() -> None:
    from omegaconf import OmegaConf

    from embodied.rendering import record_qualities

    env = OmegaConf.create({"id": "x", "render_quality": "auto", "video_quality": "full"})
    record_qualities(env)
    assert env.render_quality == resolve_quality("auto") and env.video_quality == "full"
    record_qualities(OmegaConf.create({"id": "crafter"}))  # envs without the option are left alone
