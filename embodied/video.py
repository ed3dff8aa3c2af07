"""mp4 writing: frames in, a playable H.264 file out, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from embodied.errors import OutputError


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed; raise OutputError (one line) if it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"cannot write to '{path}': {err.strerror or err}; choose a writable location") from None
    return path


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int = 30) -> Path:
    """Encode HxWx3 uint8 `frames` to H.264 mp4 at `path` (temp file, then rename)."""
    import imageio.v2 as imageio

    path = Path(path)
    if len(frames) == 0:
        raise ValueError("write_video needs at least one frame")
    tmp = path.with_name(f".{path.stem}.partial.mp4")
    try:
        with imageio.get_writer(
            tmp, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p", output_params=["-crf", "23"]
        ) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, dtype=np.uint8))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write video '{path}': {err.strerror or err}; choose a writable location") from None
    return path
