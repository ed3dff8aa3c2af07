"""Classification data for the concept-shift experiments, and the shift itself.

MNIST and Fashion-MNIST cannot be downloaded here, so the default is scikit-learn's
bundled 8x8 digits (1,797 images, input 64): a deviation from the paper, which used
28x28 MNIST (input 784). `mnist_standin` is MNIST's shape and scale made offline from
those digits (60,000 / 10,000 28x28 images; how: `standin.py`), so that an epoch has the
paper's 6,000 minibatches of 10. Users with the files load MNIST or Fashion-MNIST from
a folder of IDX files (`train-images-idx3-ubyte[.gz]`, ...) or a `.npz` holding
`x_train, y_train, x_test, y_test`.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embodied.errors import ConfigError, DatasetError

DATASETS = ("digits", "mnist_standin", "mnist", "fashion_mnist")
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass
class Split:
    """Inputs scaled to [0, 1] and flattened, with integer labels 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    name: str
    sha256: str | None = None
    """Checksum of a generated dataset's arrays (mnist_standin), recorded with the results."""

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


def load(dataset: str, path: str | None = None, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """The train/validation split of `dataset` (digits: a stratified split of the bundled set)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose from: {', '.join(DATASETS)}")
    if dataset == "digits":
        return _digits(val_fraction, seed)
    if dataset == "mnist_standin":
        from embodied.agents.homeostatic.standin import load_standin
        from embodied.paths import cache_dir

        arrays, digest = load_standin(Path(path).expanduser() if path else cache_dir() / "data")
        x_train, x_val = (
            arrays[k].reshape(len(arrays[k]), -1).astype(np.float32) / 255.0 for k in ("x_train", "x_test")
        )
        return Split(x_train, arrays["y_train"], x_val, arrays["y_test"], dataset, digest)
    if not path:
        raise ConfigError(
            f"dataset={dataset} needs data_path=<a folder of IDX files or an .npz>; it cannot be downloaded here (or use dataset=digits)"
        )
    source = Path(path).expanduser()
    if not source.exists():
        raise ConfigError(
            f"data_path '{source}' does not exist; point it at a folder of {dataset} IDX files or an .npz with x_train, y_train, x_test, y_test"
        )
    arrays = _read_npz(source) if source.is_file() else _read_idx_folder(source)
    x_train, x_val = (arrays[k].reshape(len(arrays[k]), -1).astype(np.float32) / 255.0 for k in ("x_train", "x_test"))
    y_train, y_val = (arrays[k].astype(np.int64) for k in ("y_train", "y_test"))
    _check(x_train, y_train, source), _check(x_val, y_val, source)
    return Split(x_train, y_train, x_val, y_val, dataset)


def _digits(val_fraction: float, seed: int) -> Split:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    val = stratified_mask(y, val_fraction, seed)
    return Split(x[~val], y[~val], x[val], y[val], "digits")


def stratified_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask choosing `fraction` of each class's samples at random (the held-out part)."""
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        chosen[members[: int(round(fraction * len(members)))]] = True
    return chosen


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            missing = [k for k in _IDX_FILES if k not in data]
            if missing:
                raise DatasetError(
                    f"'{path}' lacks {', '.join(missing)}; an .npz needs x_train, y_train, x_test, y_test"
                )
            return {k: data[k] for k in _IDX_FILES}
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read '{path}' as .npz: {err}") from None


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    found = {}
    for key, stem in _IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        found[key] = next((c for c in candidates if c.exists()), None)
        if found[key] is None:
            raise ConfigError(f"'{folder}' has no {stem}[.gz]; a data folder needs the four MNIST-format IDX files")
    return {key: read_idx(path) for key, path in found.items()}


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format; gzip or plain), with a clear error if corrupt."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as err:
        raise DatasetError(f"'{path}' is not a readable IDX file ({err}); re-extract the dataset") from None


def _check(x: np.ndarray, y: np.ndarray, source: Path) -> None:
    if len(x) != len(y) or len(y) == 0:
        raise DatasetError(f"'{source}': {len(x)} images but {len(y)} labels")
    if y.min() < 0 or y.max() > 9:
        raise DatasetError(f"'{source}': labels must be 0..9, found {y.min()}..{y.max()}")


# --- concept shift --------------------------------------------------------------------
def swap_points(batches: int, swaps: int) -> list[int]:
    """After which minibatches (1-based counts) of an epoch the labels swap: `swaps` equal
    intervals, the last at the epoch's end (as in the authors' code); at most one per batch."""
    if swaps <= 0:
        return []
    return sorted({min(batches, max(1, round(k * batches / swaps))) for k in range(1, swaps + 1)})


def swap_classes(rng: np.random.Generator, *label_arrays: np.ndarray, classes: int = 10) -> dict[int, int]:
    """Swap two random classes in every array (in place); return the mapping applied."""
    a, b = (int(c) for c in rng.choice(classes, 2, replace=False))
    for labels in label_arrays:
        is_a, is_b = labels == a, labels == b
        labels[is_a], labels[is_b] = b, a
    return {a: b, b: a}


def swaps_in_epoch(epoch: int, swaps_per_epoch: int, schedule: list[int] | None) -> int:
    """Swaps in `epoch`: the constant rate, or the schedule (cycled) for a second-order shift."""
    if schedule:
        return int(schedule[epoch % len(schedule)])
    return swaps_per_epoch
