"""Choose MuJoCo's offscreen GL backend before MuJoCo is imported; `Cameras` renders images offscreen.

MuJoCo reads `MUJOCO_GL` once, at import, and `import mujoco` itself fails when the
library of the chosen backend is missing. So we choose one that is there: `egl` when an
NVIDIA GPU and libEGL are visible, else `osmesa` (software, Debian's `libosmesa6`) when
libOSMesa is installed, else `disabled` (state-only runs work; anything that needs frames
fails with one line, `RenderingError`). A user's own `MUJOCO_GL` is kept when its library
is present. `PYOPENGL_PLATFORM` follows, as PyOpenGL needs the same choice.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from embodied.errors import RenderingError

OSMESA_HINT = "install OSMesa with `apt-get update && apt-get install -y libosmesa6` (Debian/Ubuntu; `make setup` does this as root), or set MUJOCO_GL=egl on a machine with a GPU"
_LIBRARY = {"osmesa": "OSMesa", "egl": "EGL"}
_DISABLED = ("disable", "disabled", "off", "false", "0")
_PROBLEM: str | None = None  # why rendering is disabled, when it is


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()


def _missing(backend: str) -> bool:
    library = _LIBRARY.get(backend)
    return library is not None and ctypes.util.find_library(library) is None


def choose_backend() -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) to a backend whose library is present; return it."""
    global _PROBLEM
    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    if backend and _missing(backend):
        _PROBLEM = f"MUJOCO_GL={backend} but lib{_LIBRARY[backend]} was not found, so rendering is disabled: " + (
            OSMESA_HINT if backend == "osmesa" else "install your GPU driver's EGL library, or set MUJOCO_GL=osmesa"
        )
        backend = "disabled"
    elif not backend:
        if sys.platform == "darwin":
            backend = "glfw"
        elif _has_nvidia_gpu() and not _missing("egl"):
            backend = "egl"
        elif not _missing("osmesa"):
            backend = "osmesa"
        else:
            backend = "disabled"
            _PROBLEM = f"MuJoCo rendering needs OSMesa (no GPU here) but libOSMesa was not found: {OSMESA_HINT}"
    os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def rendering_problem() -> str | None:
    """Return a one-line reason why offscreen rendering cannot work, or None."""
    backend = os.environ.get("MUJOCO_GL", "")
    if backend in _DISABLED:
        return (
            _PROBLEM or f"MuJoCo rendering is disabled (MUJOCO_GL={backend}); unset it or set MUJOCO_GL=osmesa or egl"
        )
    if _missing(backend):
        return f"MUJOCO_GL={backend} but lib{_LIBRARY[backend]} was not found: {OSMESA_HINT}"
    return None


def require_rendering() -> None:
    """Raise a one-line RenderingError when offscreen rendering is unavailable."""
    problem = rendering_problem()
    if problem:
        raise RenderingError(problem)


def check_rendering_or_warn() -> None:
    """Print a one-line warning at set-up time (used by the Makefile)."""
    problem = rendering_problem()
    print(f"warning: {problem}" if problem else f"MuJoCo rendering: MUJOCO_GL={os.environ['MUJOCO_GL']}")


def renders_with_mujoco(env: Any, depth: int = 3) -> bool:
    """Whether `env` (or an env it wraps, `depth` levels down) simulates a MuJoCo model, so its frames need GL."""
    import gymnasium as gym

    mujoco = sys.modules.get("mujoco")
    if mujoco is None:
        return False
    for value in vars(getattr(env, "unwrapped", env)).values():
        if isinstance(value, mujoco.MjModel):
            return True
        if depth > 0 and isinstance(value, gym.Env) and renders_with_mujoco(value, depth - 1):
            return True
    return False


BACKEND = choose_backend()


class Cameras:
    """Offscreen `mujoco.Renderer`s of one model, one per image size, made on first use."""

    def __init__(self) -> None:
        self._renderers: dict[tuple[int, int], Any] = {}

    def render(self, model: Any, data: Any, camera: str, size: tuple[int, int]) -> Any:
        """HxWx3 uint8 image of `camera` at (height, width)."""
        renderer = self._renderers.get(size)
        if renderer is None:
            import mujoco

            require_rendering()
            renderer = mujoco.Renderer(model, height=size[0], width=size[1])
            self._renderers[size] = renderer
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def camera_observation_space(state_space: Any, obs_mode: str, cameras: Any, image_size: tuple[int, int]) -> Any:
    """The observation space of an env with `obs_mode` state, pixels or state+pixels: the state Box,
    or a Dict of `state` (state+pixels) and one HxWx3 uint8 image per camera."""
    from gymnasium import spaces

    if obs_mode == "state":
        return state_space
    image = spaces.Box(0, 255, shape=(*image_size, 3), dtype=np.uint8)
    parts = {"state": state_space} if obs_mode == "state+pixels" else {}
    parts.update({camera: image for camera in cameras})
    return spaces.Dict(parts)
