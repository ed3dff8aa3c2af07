"""Demonstration datasets stored as a zarr (v3) directory store.

Layout (Diffusion-Policy replay-buffer style: all episodes concatenated along
axis 0, episode boundaries in ``meta/episode_ends``)::

    <path>/data/obs/<key>      (N, ...)  float32 low-dim, uint8 (N, H, W, 3) images
    <path>/data/action         (N, A)    float32
    <path>/data/reward         (N,)      float32
    <path>/data/success        (N,)      bool
    <path>/meta/episode_ends   (E,)      int64, exclusive end index of each episode
    <path> attrs               format_version, env_id, spaces, collector, per-episode
                               seeds/success, success_rate, caller extras, complete

`DatasetWriter` writes into a temp store next to the target and renames it into
place only on `close()`, after writing ``complete=True`` last, so a crash never
leaves something at ``<path>`` that looks finished. `DemoDataset.open` refuses
anything that is not complete and consistent, with a one-line `DatasetError`.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from embodied.errors import DatasetError, OutputError

FORMAT_VERSION = 1
# Attributes the writer owns; caller extras may not replace them.
RESERVED_ATTRS = frozenset(
    {"format_version", "env_id", "observation_space", "action_space", "collector",
     "episode_seeds", "episode_success", "complete"}
)
IMAGE_CHUNK_FRAMES = 100
LOWDIM_CHUNK_BYTES = 1 << 20


# --------------------------------------------------------------------------- spaces

def _bound(values: np.ndarray) -> Any:
    """JSON-safe Box bound: a scalar when uniform, else a nested list; +-inf as strings."""
    def enc(v: float) -> float | str:
        v = float(v)
        return v if math.isfinite(v) else str(v)  # 'inf', '-inf', 'nan': strict JSON
    flat = np.asarray(values, dtype=np.float64)
    if flat.size and np.all(flat == flat.flat[0]):
        return enc(flat.flat[0])
    return np.vectorize(enc, otypes=[object])(flat).tolist()


def describe_space(space: gym.Space) -> dict[str, Any]:
    """JSON-able description of a Box or a Dict of Boxes, stored in the dataset attrs."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, gym.spaces.Dict):
        subs = {}
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box) or "/" in key:
                raise DatasetError(
                    f"cannot store observation '{key}' ({type(sub).__name__}): datasets support "
                    "a Box or a Dict of Box spaces with keys without '/'")
            subs[key] = describe_space(sub)
        return {"type": "Dict", "spaces": subs}
    raise DatasetError(
        f"cannot store a {type(space).__name__} space: datasets support Box or Dict of Box spaces")


def _obs_specs(desc: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Map observation key -> (per-step shape, stored dtype) from a space description."""
    boxes = desc["spaces"] if desc["type"] == "Dict" else {"state": desc}
    return {k: (tuple(b["shape"]), "uint8" if b["dtype"] == "uint8" else "float32")
            for k, b in boxes.items()}


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so numpy scalars/arrays in caller attrs become plain types."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"attribute value of type {type(o).__name__} is not JSON-able")
    return json.loads(json.dumps(value, default=default))


def _chunks(shape: tuple[int, ...], dtype: str) -> tuple[int, ...]:
    """Images: ~100 frames per chunk; low-dim: ~1 MiB chunks along the step axis."""
    if dtype == "uint8" and len(shape) == 3:
        return (IMAGE_CHUNK_FRAMES, *shape)
    row = max(1, int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return (int(min(max(LOWDIM_CHUNK_BYTES // row, 1024), 1 << 16)), *shape)


def _is_store(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").exists() or (path / ".zgroup").exists())


# --------------------------------------------------------------------------- writer

class DatasetWriter:
    """Append episodes to a new dataset; atomic: nothing appears at `path` until close().

    Episodes are appended to the temp store as they come (memory stays flat even
    with images). Use it as a context manager, or call close()/abort() yourself:
    a writer dropped without either leaves its `<path>.tmp-<pid>-<hex>` directory.
    """

    def __init__(self, path: str | Path, *, env_id: str, observation_space: gym.Space,
                 action_space: gym.Space, collector: str, overwrite: bool = False,
                 attrs: dict | None = None) -> None:
        self.path = Path(path).expanduser().absolute()
        self.overwrite = overwrite
        if self.path.exists() or self.path.is_symlink():
            if not overwrite:
                raise DatasetError(
                    f"dataset path {self.path} already exists; pass overwrite=true to replace "
                    "it or choose another path")
            if not _is_store(self.path):
                raise DatasetError(
                    f"{self.path} exists and is not a dataset; refusing to overwrite it, "
                    "choose another path")
        obs_desc = describe_space(observation_space)
        act_desc = describe_space(action_space)
        if act_desc["type"] != "Box":
            raise DatasetError("cannot store a Dict action space: datasets need a Box one")
        self._obs_specs = _obs_specs(obs_desc)
        self._action_shape = tuple(act_desc["shape"])
        self._seeds: list[int | None] = []
        self._success: list[bool] = []
        self._ends: list[int] = []
        self._closed = False
        extra = _jsonable(dict(attrs or {}))
        self._check_reserved(extra)

        parent = self.path.parent
        self._tmp = parent / f"{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._root = zarr.open_group(self._tmp, mode="w-")
        except OSError as e:
            raise OutputError(
                f"cannot write dataset in {parent} ({e.strerror or e}); choose a writable "
                "output path") from None
        # Descriptive attrs go in now so a stray temp store is recognisable; 'complete' at close.
        self._root.attrs.update({
            "format_version": FORMAT_VERSION, "env_id": env_id,
            "observation_space": obs_desc, "action_space": act_desc,
            "collector": collector, **extra})
        self._arrays = {f"data/obs/{k}": self._create(f"data/obs/{k}", shape, dtype)
                        for k, (shape, dtype) in self._obs_specs.items()}
        self._arrays["data/action"] = self._create("data/action", self._action_shape, "float32")
        self._arrays["data/reward"] = self._create("data/reward", (), "float32")
        self._arrays["data/success"] = self._create("data/success", (), "bool")

    def _create(self, name: str, shape: tuple[int, ...], dtype: str) -> zarr.Array:
        # Checksummed zstd so a flipped byte is a read error, not silently wrong data;
        # write_empty_chunks so every chunk file exists and a missing one is detectable.
        return self._root.create_array(
            name, shape=(0, *shape), dtype=dtype, chunks=_chunks(shape, dtype),
            compressors=[ZstdCodec(level=3, checksum=True)],
            config={"write_empty_chunks": True})

    @staticmethod
    def _check_reserved(extra: dict) -> None:
        clash = sorted(RESERVED_ATTRS & extra.keys())
        if clash:
            raise ValueError(f"dataset attrs {clash} are written by DatasetWriter itself")

    @property
    def num_episodes(self) -> int:
        """Episodes added so far."""
        return len(self._ends)

    def add_episode(self, obs: dict[str, np.ndarray], actions: np.ndarray, rewards: np.ndarray,
                    successes: np.ndarray, seed: int | None = None) -> None:
        """Validate one episode (T steps) and append it to the temp store."""
        if self._closed:
            raise RuntimeError("DatasetWriter is closed; open a new writer to add episodes")
        actions = np.asarray(actions)
        t = len(actions)
        if t == 0:
            raise DatasetError("episode has no steps; add only episodes with at least one step")
        if set(obs) != set(self._obs_specs):
            raise DatasetError(
                f"episode observation keys {sorted(obs)} do not match the observation space "
                f"keys {sorted(self._obs_specs)}")
        batch = {}
        for key, (shape, dtype) in self._obs_specs.items():
            x = np.asarray(obs[key])
            if x.shape != (t, *shape):
                raise DatasetError(f"episode obs '{key}' has shape {x.shape}, expected "
                                   f"{(t, *shape)} ({t} steps like the actions)")
            if dtype == "uint8" and x.dtype != np.uint8:
                raise DatasetError(f"episode obs '{key}' has dtype {x.dtype}; images must be "
                                   "uint8")
            batch[f"data/obs/{key}"] = x.astype(dtype, copy=False)
        if actions.shape[1:] != self._action_shape:
            raise DatasetError(f"episode actions have shape {actions.shape}, expected "
                               f"{(t, *self._action_shape)} from the action space")
        for name, x in (("rewards", rewards), ("successes", successes)):
            if np.shape(x) != (t,):
                raise DatasetError(f"episode {name} have shape {np.shape(x)}, expected ({t},)")
        batch["data/action"] = actions.astype(np.float32, copy=False)
        batch["data/reward"] = np.asarray(rewards, dtype=np.float32)
        batch["data/success"] = np.asarray(successes).astype(bool)
        for name, x in batch.items():
            if x.dtype == np.float32 and not np.all(np.isfinite(x)):
                raise DatasetError(f"episode {name} contains NaN or inf; fix the env or policy "
                                   "before collecting")
        for name, x in batch.items():
            self._arrays[name].append(x, axis=0)
        self._ends.append((self._ends[-1] if self._ends else 0) + t)
        self._seeds.append(None if seed is None else int(seed))
        self._success.append(bool(batch["data/success"].any()))

    def close(self, extra_attrs: dict | None = None) -> Path:
        """Write episode metadata and attrs, set complete=True last, move into place."""
        if self._closed:
            return self.path
        if not self._ends:
            self.abort()
            raise DatasetError(f"no episodes were added to {self.path}; nothing was written")
        extra = _jsonable(dict(extra_attrs or {}))
        self._check_reserved(extra)
        ends = np.asarray(self._ends, dtype=np.int64)
        self._root.create_array("meta/episode_ends", data=ends, chunks=ends.shape)
        attrs = {"episode_seeds": self._seeds, "episode_success": self._success, **extra}
        # Without a caller-provided rate (which counts discarded attempts) use the kept ones.
        attrs.setdefault("success_rate", float(np.mean(self._success)))
        self._root.attrs.update(attrs)
        self._root.attrs["complete"] = True
        self._closed = True
        self._move_into_place()
        return self.path

    def _move_into_place(self) -> None:
        old = None
        try:
            if self.path.exists():  # overwrite=True, checked at construction
                old = self.path.with_name(
                    f"{self.path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
                os.rename(self.path, old)
            os.rename(self._tmp, self.path)
        except OSError as e:
            if old is not None and not self.path.exists():
                os.rename(old, self.path)
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise OutputError(f"cannot move dataset into {self.path} ({e.strerror or e}); "
                              "check permissions of the output directory") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Discard everything written so far; the target path is left as it was."""
        self._closed = True
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


# --------------------------------------------------------------------------- reader

class DemoDataset:
    """A validated, read-only dataset; arrays are loaded into memory on first access."""

    def __init__(self, path: Path, root: zarr.Group, attrs: dict[str, Any],
                 episode_ends: np.ndarray, arrays: dict[str, zarr.Array]) -> None:
        self.path = path
        self.attrs = attrs
        self.episode_ends = episode_ends
        self._root = root
        self._zarrays = arrays
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | Path) -> DemoDataset:
        """Open and validate the dataset at `path`; DatasetError (one line) if unusable."""
        path = Path(path).expanduser().absolute()
        if not path.exists():
            raise DatasetError(f"no dataset at {path}; create one with "
                               f"`embodied-collect env=... episodes=N out={path}`")
        try:
            root = zarr.open_group(path, mode="r")
            attrs = dict(root.attrs.asdict())
        except Exception as e:  # noqa: BLE001 - any zarr/JSON failure means "not a dataset"
            raise DatasetError(f"{path} is not a zarr dataset ({type(e).__name__}); "
                               "pass the directory written by embodied-collect") from None
        where = f"dataset at {path}"
        if attrs.get("format_version") is None:
            raise DatasetError(f"{where} has no format_version attribute: it was not written by "
                               "embodied-collect; collect it again")
        if attrs["format_version"] != FORMAT_VERSION:
            raise DatasetError(f"{where} has format_version {attrs['format_version']}, this "
                               f"version reads {FORMAT_VERSION}; collect it again")
        if attrs.get("complete") is not True:
            raise DatasetError(f"{where} is incomplete (no 'complete' flag): it was not closed "
                               "cleanly; collect it again with embodied-collect")
        try:
            specs = _obs_specs(attrs["observation_space"])
            action_shape = tuple(attrs["action_space"]["shape"])
        except (KeyError, TypeError) as e:
            raise DatasetError(f"{where} has a malformed space description ({e}); "
                               "collect it again") from None
        expected = {f"data/obs/{k}": shape for k, (shape, _) in specs.items()}
        expected.update({"data/action": action_shape, "data/reward": (), "data/success": (),
                         "meta/episode_ends": None})
        arrays = {}
        for name, shape in expected.items():
            try:
                arr = root[name]
            except Exception:  # noqa: BLE001 - KeyError, or unreadable array metadata
                arr = None
            if not isinstance(arr, zarr.Array):
                raise DatasetError(f"{where} is missing array '{name}'; collect it again")
            if shape is not None and arr.shape[1:] != shape:
                raise DatasetError(f"{where}: array '{name}' has per-step shape {arr.shape[1:]}, "
                                   f"attrs say {shape}; collect it again")
            if arr.nchunks_initialized != arr.nchunks:
                raise DatasetError(
                    f"{where}: array '{name}' is missing {arr.nchunks - arr.nchunks_initialized} "
                    f"of {arr.nchunks} chunk files (truncated copy?); copy or collect it again")
            arrays[name] = arr
        ends = _load(where, "meta/episode_ends", arrays.pop("meta/episode_ends"))
        if ends.ndim != 1 or len(ends) == 0 or ends.dtype.kind not in "iu":
            raise DatasetError(f"{where}: meta/episode_ends must be a non-empty 1-D integer "
                               "array; collect it again")
        ends = ends.astype(np.int64)
        if ends[0] <= 0 or np.any(np.diff(ends) <= 0):
            raise DatasetError(f"{where}: meta/episode_ends is not strictly increasing and "
                               "positive (corrupt metadata); collect it again")
        for name, arr in arrays.items():
            if arr.shape[0] != ends[-1]:
                raise DatasetError(f"{where}: array '{name}' has {arr.shape[0]} steps but "
                                   f"episode_ends says {int(ends[-1])} (truncated); "
                                   "collect it again")
        return cls(path, root, attrs, ends, arrays)

    @property
    def env_id(self) -> str:
        return str(self.attrs.get("env_id", ""))

    @property
    def obs_keys(self) -> list[str]:
        """Observation keys in space order ('state' for a Box observation space)."""
        return list(_obs_specs(self.attrs["observation_space"]))

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_steps(self) -> int:
        return int(self.episode_ends[-1])

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self.episode_ends, prepend=0)

    def array(self, key: str) -> np.ndarray:
        """Whole array ('obs/state', 'obs/<camera>', 'action', 'reward', 'success'), cached."""
        if key not in self._cache:
            name = f"data/{key}"
            if name not in self._zarrays:
                keys = [k.removeprefix("data/") for k in self._zarrays]
                raise DatasetError(f"dataset at {self.path} has no array '{key}'; available: "
                                   f"{', '.join(keys)}")
            self._cache[key] = _load(f"dataset at {self.path}", name, self._zarrays[name])
        return self._cache[key]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Slices (views) of every array for episode `i` (negative indices allowed)."""
        n = self.num_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range for {n} episodes")
        i %= n
        start, end = int(self.episode_starts[i]), int(self.episode_ends[i])
        keys = [k.removeprefix("data/") for k in self._zarrays]
        return {k: self.array(k)[start:end] for k in keys}

    def check_compatible(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Raise DatasetError naming the first shape/key mismatch with an env's spaces."""
        hint = f"(dataset collected on {self.env_id or 'an unknown env'}); use a dataset " \
               "collected on this env or pick the matching env"
        want_act = tuple(describe_space(action_space).get("shape", ()))
        have_act = tuple(self.attrs["action_space"]["shape"])
        if have_act != want_act:
            what = (f"action dim {have_act[0]} does not match env action dim {want_act[0]}"
                    if len(have_act) == len(want_act) == 1
                    else f"action shape {have_act} does not match env action shape {want_act}")
            raise DatasetError(f"dataset {what} {hint}")
        have = _obs_specs(self.attrs["observation_space"])
        want = _obs_specs(describe_space(observation_space))
        if set(have) != set(want):
            raise DatasetError(f"dataset observation keys {sorted(have)} do not match env "
                               f"observation keys {sorted(want)} {hint}")
        for key, (shape, _) in want.items():
            if have[key][0] != shape:
                raise DatasetError(f"dataset observation '{key}' shape {have[key][0]} does not "
                                   f"match env shape {shape} {hint}")


def _load(where: str, name: str, arr: zarr.Array) -> np.ndarray:
    """Read a whole array, turning codec/IO failures into a DatasetError naming it."""
    try:
        return np.asarray(arr[...])
    except Exception as e:  # noqa: BLE001 - zstd/checksum/IO errors have no common base
        msg = " ".join(str(e).split())[:120]
        raise DatasetError(f"{where}: array '{name}' is unreadable ({type(e).__name__}: {msg}); "
                           "the files are corrupt, copy or collect the dataset again") from None
