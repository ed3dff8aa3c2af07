"""An MNIST-scale stand-in made offline: 60,000 / 10,000 28x28 digits from scikit-learn's 8x8 digits.

MNIST cannot be downloaded here, and the concept-shift protocol depends on its scale (an
epoch of 6,000 minibatches of 10 puts the paper's swap rates in the paper's regime; the
bundled 8x8 digits give 143). This is **not MNIST**: it is 1,797 real handwritten digits
(scikit-learn's copy of the UCI optical digits, 8x8, values 0..16) turned into many
plausible variants, so it has MNIST's shape and size but far less diversity of writers.

How one image is made (`variant`), in this order:
1. the 8x8 source, scaled to [0, 1], is upsampled to 20x20 with cubic splines and clipped,
   then centred in a 28x28 canvas (MNIST's digits fill a 20x20 box in 28x28);
2. a random affine map about the centre: rotation U(-15, 15) degrees, scale U(0.85, 1.15),
   shear U(-0.2, 0.2), translation U(-2, 2) pixels per axis;
3. an elastic deformation (Simard, Steinkraus & Platt, 2003): a uniform U(-1, 1) displacement
   field per axis, smoothed by a Gaussian of sigma 4 pixels and scaled by alpha 24 (Simard et al. use 34 on real MNIST; these sources are already blurrier);
4. stroke weight: a power curve x ** U(0.6, 1.4); then quantised to uint8.

The 1,797 sources are split first (stratified by class, 1,437 / 360, seed 0), so no
source image contributes to both the training and the test set. Each training image
draws a random source of the training part (seed 1), each test image one of the test
part (seed 2). `load_standin()` generates the set once (~20 s on one core), caches it
as `<cache>/data/mnist_standin-v1.npz` with a SHA-256 of its arrays next to it, and
checks that checksum on every later load.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from embodied.errors import DatasetError

VERSION = "v1"
TRAIN, TEST = 60_000, 10_000


def source_split(seed: int = 0, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits in [0, 1], split by class into (x_train, y_train, x_test, y_test) sources."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float64)
    labels = digits.target.astype(np.int64)
    from embodied.agents.homeostatic.data import stratified_mask

    test = stratified_mask(labels, test_fraction, seed)
    return images[~test], labels[~test], images[test], labels[test]


def variant(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 uint8 image from an 8x8 source in [0, 1] (see the module docstring)."""
    from scipy import ndimage

    canvas = np.zeros((28, 28))
    canvas[4:24, 4:24] = np.clip(ndimage.zoom(source, 20 / 8, order=3), 0.0, 1.0)
    angle = np.deg2rad(rng.uniform(-15, 15))
    scale, shear = rng.uniform(0.85, 1.15), rng.uniform(-0.2, 0.2)
    forward = (
        scale
        * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, shear], [0.0, 1.0]])
    )
    inverse = np.linalg.inv(forward)  # affine_transform maps output coordinates to input ones
    centre = np.array([13.5, 13.5])
    offset = centre - inverse @ (centre + rng.uniform(-2, 2, size=2))
    image = ndimage.affine_transform(canvas, inverse, offset=offset, order=1)
    dy, dx = (ndimage.gaussian_filter(rng.uniform(-1, 1, (28, 28)), 4.0) * 24.0 for _ in range(2))
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    image = ndimage.map_coordinates(image, [rows + dy, cols + dx], order=1)
    image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.6, 1.4)
    return np.round(image * 255).astype(np.uint8)


def generate(train: int = TRAIN, test: int = TEST) -> dict[str, np.ndarray]:
    """The stand-in arrays: x_train (train, 28, 28) uint8, y_train, x_test, y_test (int64)."""
    x_src, y_src, xt_src, yt_src = source_split()
    out = {}
    for name, (sources, labels, n, seed) in {
        "train": (x_src, y_src, train, 1),
        "test": (xt_src, yt_src, test, 2),
    }.items():
        rng = np.random.default_rng(seed)
        picks = rng.integers(len(sources), size=n)
        out[f"x_{name}"] = np.stack([variant(sources[i], rng) for i in picks])
        out[f"y_{name}"] = labels[picks]
    return out


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, shapes, dtypes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.shape}:{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def load_standin(cache_dir: Path) -> tuple[dict[str, np.ndarray], str]:
    """The stand-in (generated and cached on first use) and its checksum; DatasetError if the cache is corrupt.

    Processes that start together on an empty cache (a sweep's jobs) take a file lock: one
    generates, the others wait and then read what it wrote.
    """
    path = Path(cache_dir) / f"mnist_standin-{VERSION}.npz"
    meta = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and meta.exists():
            return _read_cached(path, meta)
        arrays = generate()
        digest = checksum(arrays)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        tmp_meta = meta.with_name(f"{meta.name}.{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps({"sha256": digest, "version": VERSION, "train": TRAIN, "test": TEST}) + "\n")
        tmp_meta.replace(meta)
        return arrays, digest


def _read_cached(path: Path, meta: Path) -> tuple[dict[str, np.ndarray], str]:
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        expected = json.loads(meta.read_text())["sha256"]
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"cannot read the cached stand-in {path} ({err}); delete it to regenerate") from None
    if checksum(arrays) != expected:
        raise DatasetError(f"the cached stand-in {path} does not match its checksum; delete it to regenerate")
    return arrays, expected
