"""Dataset storage: writer/reader round trip and one-line errors for bad datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import zarr

from embodied.data import DatasetWriter, DemoDataset, describe_space
from embodied.errors import DatasetError, OutputError

LENGTHS = [3, 5, 2]
OBS_SPACE = gym.spaces.Dict(
    {
        "state": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
        "corner": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
    }
)
ACT_SPACE = gym.spaces.Box(-1000.0, 1000.0, (3,), np.float32)


def make_episode(e: int, length: int) -> dict:
    """Values encode (episode, step) as 100 * e + t so every slice can be checked."""
    code = 100 * e + np.arange(length)
    return {
        "obs": {
            "state": np.stack([code, -code], 1).astype(np.float64),
            "corner": np.broadcast_to((code % 256).astype(np.uint8)[:, None, None, None], (length, 8, 8, 3)).copy(),
        },
        "actions": np.stack([code + 0.5, code + 0.25, -code], 1).astype(np.float32),
        "rewards": code.astype(np.float32) / 10,
        "successes": np.arange(length) == length - 1 if e != 1 else np.zeros(length, bool),
        "seed": 1000 + e,
    }


def write(path: Path, lengths=LENGTHS, **kwargs) -> Path:
    with DatasetWriter(
        path, env_id="toy-v0", observation_space=OBS_SPACE, action_space=ACT_SPACE, collector="scripted", **kwargs
    ) as w:
        for e, n in enumerate(lengths):
            w.add_episode(**make_episode(e, n))
        return w.close({"success_rate": 0.5, "note": np.float32(2.0)})


def raises_one_line(fn, match: str) -> str:
    with pytest.raises(DatasetError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture()
def ds_path(tmp_path: Path) -> Path:
    return write(tmp_path / "demo.zarr")


# --------------------------------------------------------------------------- round trip


def test_round_trip(ds_path: Path) -> None:
    ds = DemoDataset.open(ds_path)
    assert ds.num_episodes == 3 and ds.num_steps == 10
    assert ds.episode_ends.tolist() == [3, 8, 10]
    assert ds.obs_keys == ["corner", "state"]
    assert ds.env_id == "toy-v0"
    eps = [make_episode(e, n) for e, n in enumerate(LENGTHS)]
    np.testing.assert_array_equal(
        ds.array("obs/state"), np.concatenate([e["obs"]["state"] for e in eps]).astype(np.float32)
    )
    assert ds.array("obs/state").dtype == np.float32
    assert ds.array("obs/corner").dtype == np.uint8
    np.testing.assert_array_equal(ds.array("obs/corner"), np.concatenate([e["obs"]["corner"] for e in eps]))
    np.testing.assert_array_equal(ds.array("action"), np.concatenate([e["actions"] for e in eps]))
    np.testing.assert_array_equal(ds.array("reward"), np.concatenate([e["rewards"] for e in eps]))
    assert ds.array("success").dtype == bool
    ep1 = ds.episode(1)
    np.testing.assert_array_equal(ep1["obs/state"][:, 0], [100, 101, 102, 103, 104])
    np.testing.assert_array_equal(ds.episode(-1)["action"][:, 2], [-200, -201])
    assert set(ep1) == {"obs/corner", "obs/state", "action", "reward", "success"}
    a = ds.attrs
    assert a["format_version"] == 1 and a["complete"] is True and a["collector"] == "scripted"
    assert a["episode_seeds"] == [1000, 1001, 1002]
    assert a["episode_success"] == [True, False, True]
    assert a["success_rate"] == 0.5 and a["note"] == 2.0
    assert a["observation_space"] == describe_space(OBS_SPACE)
    assert a["action_space"] == {"type": "Box", "shape": [3], "dtype": "float32", "low": -1000.0, "high": 1000.0}
    assert a["observation_space"]["spaces"]["state"]["low"] == "-inf"  # strict JSON
    ds.check_compatible(OBS_SPACE, ACT_SPACE)


def test_box_observation_is_stored_as_state(tmp_path: Path) -> None:
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    with DatasetWriter(tmp_path / "d", env_id="e", observation_space=space, action_space=ACT_SPACE, collector="c") as w:
        w.add_episode({"state": np.zeros((2, 4))}, np.zeros((2, 3)), np.zeros(2), np.zeros(2))
    ds = DemoDataset.open(tmp_path / "d")
    assert ds.obs_keys == ["state"] and ds.array("obs/state").shape == (2, 4)
    assert ds.attrs["success_rate"] == 0.0  # default: kept episodes only


def test_overwrite_replaces_only_on_close(ds_path: Path) -> None:
    w = DatasetWriter(
        ds_path, env_id="new-v0", observation_space=OBS_SPACE, action_space=ACT_SPACE, collector="c", overwrite=True
    )
    w.add_episode(**make_episode(7, 4))
    assert DemoDataset.open(ds_path).env_id == "toy-v0"  # old one intact until close
    assert w.close() == ds_path
    ds = DemoDataset.open(ds_path)
    assert ds.env_id == "new-v0" and ds.num_steps == 4
    assert [p.name for p in ds_path.parent.iterdir()] == [ds_path.name]


# --------------------------------------------------------------------------- writer errors


def test_existing_path_without_overwrite(ds_path: Path) -> None:
    before = DemoDataset.open(ds_path).array("action").copy()
    msg = raises_one_line(lambda: write(ds_path), "already exists")
    assert "overwrite=true" in msg
    np.testing.assert_array_equal(DemoDataset.open(ds_path).array("action"), before)
    assert [p.name for p in ds_path.parent.iterdir()] == [ds_path.name]


def test_overwrite_refuses_non_dataset(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    raises_one_line(lambda: write(tmp_path, overwrite=True), "not a dataset")
    assert (tmp_path / "keep.txt").exists()


def test_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out" / "demo.zarr"
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(path, env_id="e", observation_space=OBS_SPACE, action_space=ACT_SPACE, collector="c") as w:
            w.add_episode(**make_episode(0, 3))
            raise RuntimeError("boom")
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_unwritable_parent_is_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a dir")
    with pytest.raises(OutputError) as info:
        write(tmp_path / "file" / "demo.zarr")
    assert "\n" not in str(info.value)


def test_add_episode_validates_shapes(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "d", env_id="e", observation_space=OBS_SPACE, action_space=ACT_SPACE, collector="c")
    ep = make_episode(0, 3)
    bad_actions = dict(ep, actions=np.zeros((3, 7), np.float32))
    raises_one_line(lambda: w.add_episode(**bad_actions), r"actions have shape \(3, 7\)")
    bad_len = dict(ep, rewards=np.zeros(2))
    raises_one_line(lambda: w.add_episode(**bad_len), "rewards have shape")
    bad_keys = dict(ep, obs={"state": ep["obs"]["state"]})
    raises_one_line(lambda: w.add_episode(**bad_keys), "observation keys")
    nan = dict(ep, actions=np.full((3, 3), np.nan, np.float32))
    raises_one_line(lambda: w.add_episode(**nan), "NaN")
    assert w.num_episodes == 0
    raises_one_line(w.close, "no episodes")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- reader errors


def test_missing_path(tmp_path: Path) -> None:
    msg = raises_one_line(lambda: DemoDataset.open(tmp_path / "nope"), "no dataset at")
    assert "embodied-collect" in msg


def test_not_a_zarr_group(tmp_path: Path) -> None:
    raises_one_line(lambda: DemoDataset.open(tmp_path), "not a zarr dataset")


def test_missing_complete_flag(ds_path: Path) -> None:
    del zarr.open_group(ds_path, mode="r+").attrs["complete"]
    raises_one_line(lambda: DemoDataset.open(ds_path), "incomplete .*'complete' flag")


def test_missing_array(ds_path: Path) -> None:
    shutil.rmtree(ds_path / "data" / "reward")
    raises_one_line(lambda: DemoDataset.open(ds_path), "missing array 'data/reward'")


def test_truncated_arrays(ds_path: Path) -> None:
    zarr.open_group(ds_path, mode="r+")["meta/episode_ends"][-1] = 12
    raises_one_line(lambda: DemoDataset.open(ds_path), "has 10 steps but episode_ends says 12")


def test_non_increasing_episode_ends(ds_path: Path) -> None:
    zarr.open_group(ds_path, mode="r+")["meta/episode_ends"][:] = [3, 3, 10]
    raises_one_line(lambda: DemoDataset.open(ds_path), "not strictly increasing")


def test_missing_chunk_file(ds_path: Path) -> None:
    (ds_path / "data" / "action" / "c" / "0" / "0").unlink()
    raises_one_line(lambda: DemoDataset.open(ds_path), "'data/action' is missing 1 of 1 chunk")


@pytest.mark.parametrize("corrupt", ["garbage", "flip_byte"])
def test_corrupted_chunk(ds_path: Path, corrupt: str) -> None:
    chunk = ds_path / "data" / "action" / "c" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    if corrupt == "garbage":
        raw = bytearray(b"\x13garbage" * 8)
    else:  # a valid zstd frame with one payload byte changed: only the checksum notices
        raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    ds = DemoDataset.open(ds_path)
    ds.array("reward")  # other arrays still load
    raises_one_line(lambda: ds.array("action"), "array 'data/action' is unreadable")


def test_check_compatible_mismatches(ds_path: Path) -> None:
    ds = DemoDataset.open(ds_path)
    msg = raises_one_line(
        lambda: ds.check_compatible(OBS_SPACE, gym.spaces.Box(-1, 1, (7,))),
        "dataset action dim 3 does not match env action dim 7",
    )
    assert "toy-v0" in msg
    other_obs = gym.spaces.Dict({"state": OBS_SPACE["state"]})
    raises_one_line(lambda: ds.check_compatible(other_obs, ACT_SPACE), "observation keys")
    wider = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (5,)), "corner": OBS_SPACE["corner"]})
    raises_one_line(lambda: ds.check_compatible(wider, ACT_SPACE), "'state' shape")


def test_unknown_array_key(ds_path: Path) -> None:
    raises_one_line(lambda: DemoDataset.open(ds_path).array("obs/wrist"), "no array 'obs/wrist'")
