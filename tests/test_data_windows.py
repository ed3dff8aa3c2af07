"""Training windows against hand-computed expectations, plus the normaliser."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from embodied.data import DatasetWriter, DemoDataset, Normalizer, WindowDataset

F, T = False, True


@pytest.fixture()
def tiny(tmp_path: Path) -> DemoDataset:
    """Episode lengths [4, 2]; state = 10*e + t, action = 100 + 10*e + t, camera = state."""
    obs_space = gym.spaces.Dict(
        {"state": gym.spaces.Box(-1e3, 1e3, (1,)), "cam": gym.spaces.Box(0, 255, (2, 2, 3), np.uint8)}
    )
    with DatasetWriter(
        tmp_path / "tiny",
        env_id="tiny-v0",
        observation_space=obs_space,
        action_space=gym.spaces.Box(-1e3, 1e3, (1,)),
        collector="test",
    ) as w:
        for e, n in enumerate([4, 2]):
            code = 10 * e + np.arange(n)
            w.add_episode(
                {
                    "state": code[:, None].astype(np.float32),
                    "cam": np.broadcast_to(code.astype(np.uint8)[:, None, None, None], (n, 2, 2, 3)).copy(),
                },
                (100 + code)[:, None],
                np.zeros(n),
                np.zeros(n, bool),
            )
    return DemoDataset.open(tmp_path / "tiny")


# obs_horizon=2, action_horizon=3; one row per sample (episode, step).
EXPECTED_STATE = [[0, 0], [0, 1], [1, 2], [2, 3], [10, 10], [10, 11]]
EXPECTED_OBS_PAD = [[T, F], [F, F], [F, F], [F, F], [T, F], [F, F]]
EXPECTED_ACTION_EDGE = [
    [100, 101, 102],
    [101, 102, 103],
    [102, 103, 103],
    [103, 103, 103],
    [110, 111, 111],
    [111, 111, 111],
]
EXPECTED_ACTION_ZERO = [[100, 101, 102], [101, 102, 103], [102, 103, 0], [103, 0, 0], [110, 111, 0], [111, 0, 0]]
EXPECTED_ACTION_PAD = [[F, F, F], [F, F, F], [F, F, T], [F, T, T], [F, F, T], [F, T, T]]
EXPECTED_INDEX = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]


@pytest.mark.parametrize("pad", ["edge", "zero"])
def test_windows_match_hand_computed(tiny: DemoDataset, pad: str) -> None:
    wd = WindowDataset(tiny, obs_horizon=2, action_horizon=3, action_pad=pad)
    assert len(wd) == 6
    expected_action = EXPECTED_ACTION_EDGE if pad == "edge" else EXPECTED_ACTION_ZERO
    for i in range(6):
        s = wd[i]
        assert (s["episode"], s["step"]) == EXPECTED_INDEX[i]
        assert s["obs/state"].dtype == torch.float32 and s["obs/state"].shape == (2, 1)
        assert s["obs/state"][:, 0].tolist() == EXPECTED_STATE[i], i
        assert s["obs_is_pad"].tolist() == EXPECTED_OBS_PAD[i], i
        assert s["action"].shape == (3, 1) and s["action"][:, 0].tolist() == expected_action[i], i
        assert s["action_is_pad"].tolist() == EXPECTED_ACTION_PAD[i], i
        assert s["obs/cam"].dtype == torch.uint8 and s["obs/cam"].shape == (2, 2, 2, 3)
        assert s["obs/cam"][:, 0, 0, 0].tolist() == EXPECTED_STATE[i], i


def test_second_episode_does_not_leak_first(tiny: DemoDataset) -> None:
    s = WindowDataset(tiny, obs_horizon=3, action_horizon=1)[4]
    assert s["obs/state"][:, 0].tolist() == [10, 10, 10]  # never episode 0's [2, 3]
    assert s["obs_is_pad"].tolist() == [T, T, F]


def test_edge_padding_is_normalised_and_zero_stays_zero(tiny: DemoDataset) -> None:
    norm = Normalizer.from_dataset(tiny)  # action range 100..111, state 0..11
    assert norm.keys == ["action", "obs/state"]  # the uint8 camera is skipped
    edge = WindowDataset(tiny, obs_horizon=2, action_horizon=3, normalizer=norm)[3]
    np.testing.assert_allclose(edge["action"][:, 0], norm.normalize("action", np.full(3, 103.0)))
    np.testing.assert_allclose(edge["obs/state"][:, 0], [2 / 11 * 2 - 1, 3 / 11 * 2 - 1], rtol=1e-6)
    zero = WindowDataset(tiny, obs_horizon=2, action_horizon=3, action_pad="zero", normalizer=norm)[5]
    assert zero["action"][:, 0].tolist() == [1.0, 0.0, 0.0]  # 111 is the max -> 1


def test_normalizer_must_cover_lowdim_keys(tiny: DemoDataset) -> None:
    norm = Normalizer.from_dataset(tiny, keys=["action"])
    with pytest.raises(ValueError, match="obs/state"):
        WindowDataset(tiny, normalizer=norm)
    WindowDataset(tiny, obs_keys=["cam"], normalizer=norm)  # images need no statistics


def test_episode_subset_and_split(tiny: DemoDataset) -> None:
    wd = WindowDataset(tiny, episodes=[1], obs_horizon=2, action_horizon=3)
    assert len(wd) == 2 and wd[0]["obs/state"][:, 0].tolist() == [10, 10]
    assert [wd[i]["episode"] for i in range(2)] == [1, 1]
    train, val = WindowDataset.episode_split(tiny, 0.5, seed=0)
    assert sorted(train + val) == [0, 1] and len(val) == 1
    assert WindowDataset.episode_split(10, 0.2, seed=3) == WindowDataset.episode_split(10, 0.2, 3)
    train, val = WindowDataset.episode_split(10, 0.2, seed=3)
    assert len(val) == 2 and not set(train) & set(val)
    assert WindowDataset.episode_split(1, 0.5) == ([0], [])
    with pytest.raises(ValueError, match="out of range"):
        WindowDataset(tiny, episodes=[2])


def test_dataloader_collates(tiny: DemoDataset) -> None:
    batch = next(iter(DataLoader(WindowDataset(tiny, obs_horizon=2, action_horizon=3), batch_size=4)))
    assert batch["obs/cam"].shape == (4, 2, 2, 2, 3) and batch["action"].shape == (4, 3, 1)
    assert batch["episode"].tolist() == [0, 0, 0, 0]


# --------------------------------------------------------------------------- normaliser

DATA = np.array([[0.0, 5.0, -2.0], [10.0, 5.0, 2.0], [4.0, 5.0, 0.0]], dtype=np.float32)


def test_min_max_maps_to_unit_range_and_round_trips() -> None:
    norm = Normalizer.from_arrays({"action": DATA})
    y = norm.normalize("action", DATA)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y[:, [0, 2]].min(0), [-1, -1])
    np.testing.assert_allclose(y[:, [0, 2]].max(0), [1, 1])
    np.testing.assert_allclose(y[:, 1], 0.0)  # constant dimension: centred, not NaN
    np.testing.assert_allclose(norm.unnormalize("action", y), DATA, atol=1e-6)


def test_mean_std_and_torch_inputs() -> None:
    norm = Normalizer.from_arrays({"action": DATA}, mode="mean_std")
    y = norm.normalize("action", DATA)
    np.testing.assert_allclose(y[:, [0, 2]].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(y[:, [0, 2]].std(0), 1, atol=1e-5)
    assert np.isfinite(y).all()
    x64 = torch.from_numpy(DATA).double()
    out = norm.normalize("action", x64)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    torch.testing.assert_close(norm.unnormalize("action", out), x64)
    np.testing.assert_allclose(out.numpy(), y, atol=1e-5)


def test_state_dict_round_trip_through_safetensors(tmp_path: Path) -> None:
    norm = Normalizer.from_arrays(
        {"action": DATA, "obs/state": DATA[:, :2], "obs/cam": np.zeros((3, 2, 2, 3), np.uint8)},
        mode={"action": "min_max", "obs/state": "mean_std"},
    )
    sd = norm.state_dict(prefix="normalizer.")
    assert "normalizer.action.min" in sd and "normalizer.obs/cam.min" not in sd
    save_file({**sd, "policy.weight": torch.ones(2)}, tmp_path / "model.safetensors")
    back = Normalizer.from_state_dict(load_file(tmp_path / "model.safetensors"), prefix="normalizer.")
    assert back.modes == {"action": "min_max", "obs/state": "mean_std"}
    for key in ("action", "obs/state"):
        x = DATA[:, : 3 if key == "action" else 2]
        np.testing.assert_array_equal(back.normalize(key, x), norm.normalize(key, x))


def test_past_actions_and_extra_arrays(tiny: DemoDataset) -> None:
    """action_offset=-1 starts the action window one step back (edge-padded before the episode
    start, flagged as padding); `arrays` adds per-frame observation keys such as cached embeddings."""
    embedding = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    wd = WindowDataset(
        tiny,
        obs_keys=["embedding"],
        obs_horizon=2,
        action_horizon=3,
        action_offset=-1,
        arrays={"obs/embedding": embedding},
    )
    batch = wd.batch(np.arange(6))
    assert batch["action"][:, :, 0].tolist() == [
        [100, 100, 101],
        [100, 101, 102],
        [101, 102, 103],
        [102, 103, 103],
        [110, 110, 111],
        [110, 111, 111],
    ]
    assert batch["action_is_pad"].tolist() == [[T, F, F], [F, F, F], [F, F, F], [F, F, T], [T, F, F], [F, F, T]]
    assert batch["obs/embedding"][:, :, 0].tolist() == [[0, 0], [0, 1], [1, 2], [2, 3], [4, 4], [4, 5]]
    with pytest.raises(ValueError, match="rows"):
        WindowDataset(tiny, obs_keys=["embedding"], arrays={"obs/embedding": embedding[:3]})
