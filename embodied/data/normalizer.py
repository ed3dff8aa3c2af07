"""Per-key normalisation statistics for low-dim observations and actions.

Policies train on normalised data and must undo it on their outputs at rollout,
so the statistics travel with the checkpoint: `state_dict()` gives flat tensors
(``"action.min"``, ``"obs/state.std"``, ``"action.mode"`` ...) that fit in a
safetensors file, and `from_state_dict` rebuilds the same normaliser.

Images (uint8 arrays) are never normalised here: the caller scales them to
[0, 1] (or whatever its encoder expects).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, TypeVar

import numpy as np
import torch

if TYPE_CHECKING:
    from embodied.data.dataset import DemoDataset

MODES = ("min_max", "mean_std")
STATS = ("min", "max", "mean", "std")
# A dimension whose range/std is below this is treated as constant: it is only
# centred (scale 1), so it maps to 0 instead of NaN/inf and new values stay sane.
EPS = 1e-6

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class Normalizer:
    """Maps data per key to [-1, 1] ("min_max") or zero mean / unit std ("mean_std")."""

    def __init__(self, stats: Mapping[str, Mapping[str, np.ndarray]],
                 mode: str | Mapping[str, str] = "min_max") -> None:
        self.stats = {k: {s: np.asarray(v[s], dtype=np.float32) for s in STATS}
                      for k, v in stats.items()}
        modes = {k: mode for k in self.stats} if isinstance(mode, str) else dict(mode)
        for key in self.stats:
            if modes.get(key) not in MODES:
                raise ValueError(f"normaliser mode for '{key}' must be one of {MODES}, "
                                 f"got {modes.get(key)!r}")
        self.modes = {k: modes[k] for k in self.stats}
        self._affine = {k: self._offset_scale(k) for k in self.stats}
        self._torch_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray],
                    mode: str | Mapping[str, str] = "min_max") -> Normalizer:
        """Statistics over axis 0 of each (N, ...) array; uint8 (image) keys are skipped."""
        stats = {}
        for key, x in arrays.items():
            x = np.asarray(x)
            if x.dtype == np.uint8:
                continue
            if len(x) == 0:
                raise ValueError(f"cannot compute statistics for '{key}' from an empty array")
            x = x.astype(np.float64)
            stats[key] = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
        return cls(stats, mode)

    @classmethod
    def from_dataset(cls, ds: DemoDataset, keys: Iterable[str] | None = None,
                     mode: str | Mapping[str, str] = "min_max") -> Normalizer:
        """Statistics of dataset arrays (default: 'action' and every low-dim 'obs/<key>')."""
        if keys is None:
            keys = ["action", *(f"obs/{k}" for k in ds.obs_keys)]
        return cls.from_arrays({k: ds.array(k) for k in keys}, mode)

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flat tensors '<prefix><key>.<stat>' (float32) and '<prefix><key>.mode' (int64
        index into MODES), ready to merge into a safetensors checkpoint."""
        out = {}
        for key, stats in self.stats.items():
            for s in STATS:
                out[f"{prefix}{key}.{s}"] = torch.from_numpy(stats[s].copy())
            out[f"{prefix}{key}.mode"] = torch.tensor([MODES.index(self.modes[key])])
        return out

    @classmethod
    def from_state_dict(cls, d: Mapping[str, torch.Tensor], prefix: str = "") -> Normalizer:
        """Inverse of `state_dict`; entries not starting with `prefix` are ignored."""
        keys = [k[len(prefix):-len(".mode")] for k in d
                if k.startswith(prefix) and k.endswith(".mode")]
        try:
            stats = {k: {s: d[f"{prefix}{k}.{s}"].detach().cpu().numpy() for s in STATS}
                     for k in keys}
            modes = {k: MODES[int(d[f"{prefix}{k}.mode"].reshape(-1)[0])] for k in keys}
        except (KeyError, IndexError) as e:
            raise ValueError(f"normaliser state dict is incomplete or invalid ({e})") from None
        return cls(stats, modes)

    # ----------------------------------------------------------------- use

    @property
    def keys(self) -> list[str]:
        return list(self.stats)

    def __contains__(self, key: str) -> bool:
        return key in self.stats

    def _offset_scale(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats[key]
        if self.modes[key] == "min_max":
            spread = st["max"] - st["min"]
            offset = (st["max"] + st["min"]) / 2
            scale = np.where(spread > EPS, 2 / np.maximum(spread, EPS), 1.0)
        else:
            offset = st["mean"]
            scale = np.where(st["std"] > EPS, 1 / np.maximum(st["std"], EPS), 1.0)
        return offset.astype(np.float32), scale.astype(np.float32)

    def _params(self, key: str, x: ArrayT) -> tuple[ArrayT, ArrayT]:
        if key not in self.stats:
            raise KeyError(f"normaliser has no statistics for '{key}'; it has {self.keys}")
        offset, scale = self._affine[key]
        if isinstance(x, torch.Tensor):
            ck = (key, x.dtype, x.device)
            if ck not in self._torch_cache:
                self._torch_cache[ck] = (torch.as_tensor(offset, dtype=x.dtype, device=x.device),
                                         torch.as_tensor(scale, dtype=x.dtype, device=x.device))
            return self._torch_cache[ck]
        return offset.astype(x.dtype, copy=False), scale.astype(x.dtype, copy=False)

    def normalize(self, key: str, x: ArrayT) -> ArrayT:
        """Normalise `x` (..., *feature_shape); keeps float dtype and torch device."""
        x = _as_float(x)
        offset, scale = self._params(key, x)
        return (x - offset) * scale

    def unnormalize(self, key: str, x: ArrayT) -> ArrayT:
        """Inverse of `normalize`, e.g. for a policy's predicted actions."""
        x = _as_float(x)
        offset, scale = self._params(key, x)
        return x / scale + offset

    def __repr__(self) -> str:
        return f"Normalizer({', '.join(f'{k}:{m}' for k, m in self.modes.items())})"


def _as_float(x: ArrayT) -> ArrayT:
    """Floating inputs pass through unchanged; anything else becomes float32."""
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
