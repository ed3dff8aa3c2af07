"""Training windows over a demonstration dataset (observation history + action chunk).

One sample per timestep t of every selected episode: the last `obs_horizon`
observations up to t, the `action_horizon` actions from t + `action_offset` on (a
negative offset includes past actions, as long-context diffusion policies train on),
per-frame `arrays` given by the caller (e.g. cached embeddings) as extra observation
keys and, optionally, the
`future_horizon` observations after t (targets for predicting the future, as in
ACT-JEPA). Windows never cross episode boundaries: missing history repeats the
episode's first frame, missing future observations its last one, missing actions
repeat the episode's first or last action ("edge") or are zero ("zero"), and the `*_is_pad`
masks say which entries were filled in.

All gather indices are precomputed with numpy, so `__getitem__` and `batch` are a
handful of fancy-indexing operations on in-memory arrays (`batch` skips the
per-sample Python of a DataLoader's collate).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from embodied.data.dataset import DemoDataset
from embodied.data.normalizer import Normalizer

PAD_MODES = ("edge", "zero")


class WindowDataset(Dataset):
    """Samples: 'obs/<key>' (obs_horizon, ...), 'obs_is_pad', 'action' (action_horizon, A),
    'action_is_pad', 'episode', 'step', and with `future_horizon` > 0 'future/<key>'
    (future_horizon, ...) and 'future_is_pad' for every key in `future_keys`. Low-dim tensors are float32 (normalised when a
    normalizer is given); images stay uint8 (obs_horizon, H, W, C), unscaled."""

    def __init__(self, dataset: DemoDataset, *, obs_keys: Sequence[str] | None = None,
                 obs_horizon: int = 1, action_horizon: int = 1, action_pad: str = "edge",
                 normalizer: Normalizer | None = None,
                 episodes: Sequence[int] | None = None, future_horizon: int = 0,
                 future_keys: Sequence[str] | None = None, action_offset: int = 0,
                 arrays: Mapping[str, np.ndarray] | None = None) -> None:
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(f"obs_horizon and action_horizon must be >= 1, got "
                             f"{obs_horizon} and {action_horizon}")
        if future_horizon < 0:
            raise ValueError(f"future_horizon must be >= 0, got {future_horizon}")
        if action_pad not in PAD_MODES:
            raise ValueError(f"action_pad must be one of {PAD_MODES}, got {action_pad!r}")
        self.obs_horizon, self.action_horizon = obs_horizon, action_horizon
        self.action_pad = action_pad
        self.obs_keys = [k.removeprefix("obs/") for k in (obs_keys or dataset.obs_keys)]
        self.future_horizon = future_horizon
        self.future_keys = [k.removeprefix("obs/") for k in (future_keys or self.obs_keys)] \
            if future_horizon else []
        missing = [k for k in self.future_keys if k not in self.obs_keys]
        if missing:
            raise ValueError(f"future_keys {missing} must also be in obs_keys {self.obs_keys}")
        self.episodes = self._check_episodes(dataset, episodes)

        extra = dict(arrays or {})
        frames = int(dataset.episode_ends[-1]) if dataset.num_episodes else 0
        for key, value in extra.items():
            if len(value) != frames:
                raise ValueError(f"array '{key}' has {len(value)} rows, the dataset {frames} frames")
        self._data = {f"obs/{k}": dataset.array(f"obs/{k}") for k in self.obs_keys if f"obs/{k}" not in extra}
        self._data["action"] = dataset.array("action")
        lowdim = [k for k, v in self._data.items() if v.dtype != np.uint8]
        if normalizer is not None:
            missing = [k for k in lowdim if k not in normalizer]
            if missing:
                raise ValueError(f"normalizer has no statistics for {missing}; build it with "
                                 "these keys")
        for key in lowdim:  # normalise whole arrays once; edge padding then repeats them
            x = self._data[key].astype(np.float32, copy=False)
            self._data[key] = normalizer.normalize(key, x) if normalizer is not None else x
        self._data.update({k: v for k, v in extra.items() if k.removeprefix("obs/") in self.obs_keys})

        starts = dataset.episode_starts[self.episodes]
        ends = dataset.episode_ends[self.episodes]
        lengths = ends - starts
        self.sample_episode = np.repeat(self.episodes, lengths)
        start = np.repeat(starts, lengths)[:, None]
        end = np.repeat(ends, lengths)[:, None]
        t = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])[:, None]
        self.sample_step = (t - start)[:, 0]
        obs_idx = t + np.arange(1 - obs_horizon, 1)
        act_idx = t + action_offset + np.arange(action_horizon)
        self._obs_pad = obs_idx < start
        self._act_pad = (act_idx < start) | (act_idx >= end)
        self._obs_idx = np.maximum(obs_idx, start)
        self._act_idx = np.clip(act_idx, start, end - 1)
        future_idx = t + np.arange(1, future_horizon + 1)
        self._future_pad = future_idx >= end
        self._future_idx = np.minimum(future_idx, end - 1)

    @staticmethod
    def _check_episodes(dataset: DemoDataset, episodes: Sequence[int] | None) -> np.ndarray:
        if episodes is None:
            return np.arange(dataset.num_episodes)
        ids = np.asarray(list(episodes), dtype=np.int64)
        if ids.size == 0:
            raise ValueError("episodes is empty; select at least one episode")
        bad = ids[(ids < 0) | (ids >= dataset.num_episodes)]
        if bad.size:
            raise ValueError(f"episode ids {bad.tolist()} out of range for "
                             f"{dataset.num_episodes} episodes")
        return ids

    @staticmethod
    def episode_split(dataset: DemoDataset | int, val_fraction: float,
                      seed: int = 0) -> tuple[list[int], list[int]]:
        """Random split of episode ids into (train, val), both sorted.

        Splitting by episode (not by window) keeps validation windows from sharing
        frames with training ones. A positive fraction holds out at least one
        episode, and at least one episode always stays in training."""
        n = dataset if isinstance(dataset, int) else dataset.num_episodes
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        n_val = int(round(val_fraction * n))
        if val_fraction > 0:
            n_val = max(n_val, 1)
        n_val = min(n_val, n - 1) if n > 0 else 0
        perm = np.random.default_rng(seed).permutation(n)
        return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())

    def __len__(self) -> int:
        return len(self._obs_idx)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        sample: dict[str, torch.Tensor | int] = dict(self._gather(i))
        sample["episode"] = int(self.sample_episode[i])
        sample["step"] = int(self.sample_step[i])
        return sample

    def batch(self, indices: np.ndarray | Sequence[int]) -> dict[str, torch.Tensor]:
        """Samples `indices` stacked along a new first axis, as a DataLoader would collate them
        ('episode' and 'step' become int64 tensors)."""
        idx = np.asarray(indices, dtype=np.int64)
        out = self._gather(idx)
        out["episode"] = torch.from_numpy(self.sample_episode[idx])
        out["step"] = torch.from_numpy(self.sample_step[idx])
        return out

    def _gather(self, i: int | np.ndarray) -> dict[str, torch.Tensor]:
        """Every tensor of sample(s) `i`; fancy indexing copies, so the arrays stay untouched."""
        obs_idx, act_idx = self._obs_idx[i], self._act_idx[i]
        out = {f"obs/{k}": torch.from_numpy(self._data[f"obs/{k}"][obs_idx]) for k in self.obs_keys}
        action = self._data["action"][act_idx]
        if self.action_pad == "zero":
            action[self._act_pad[i]] = 0.0
        out["action"] = torch.from_numpy(action)
        out["obs_is_pad"] = torch.from_numpy(np.array(self._obs_pad[i]))
        out["action_is_pad"] = torch.from_numpy(np.array(self._act_pad[i]))
        if self.future_horizon:
            future_idx = self._future_idx[i]
            for k in self.future_keys:
                out[f"future/{k}"] = torch.from_numpy(self._data[f"obs/{k}"][future_idx])
            out["future_is_pad"] = torch.from_numpy(np.array(self._future_pad[i]))
        return out
