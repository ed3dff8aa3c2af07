"""Choose MuJoCo's offscreen GL backend before MuJoCo is imported; `Cameras` renders images offscreen.

MuJoCo reads `MUJOCO_GL` once, at import. We pick `egl` when an NVIDIA GPU is
visible and `osmesa` (software, Debian's `libosmesa6`) otherwise, unless the user
already set it. `PYOPENGL_PLATFORM` follows, as PyOpenGL needs the same choice.
"""
from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from embodied.errors import RenderingError

OSMESA_HINT = "install OSMesa with `apt-get update && apt-get install -y libosmesa6` (Debian/Ubuntu), or set MUJOCO_GL=egl on a machine with a GPU"


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()


def choose_backend() -> str:
    """Set MUJOCO_GL (if unset) and PYOPENGL_PLATFORM; return the backend name."""
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        backend = "egl" if _has_nvidia_gpu() and ctypes.util.find_library("EGL") else "osmesa"
        if sys.platform == "darwin":
            backend = "glfw"
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def rendering_problem() -> str | None:
    """Return a one-line reason why offscreen rendering cannot work, or None."""
    backend = os.environ.get("MUJOCO_GL", "")
    if backend == "osmesa" and ctypes.util.find_library("OSMesa") is None:
        return f"MuJoCo rendering needs OSMesa (MUJOCO_GL=osmesa) but libOSMesa was not found: {OSMESA_HINT}"
    if backend == "egl" and ctypes.util.find_library("EGL") is None:
        return "MUJOCO_GL=egl but libEGL was not found: install your GPU driver's EGL library, or set MUJOCO_GL=osmesa"
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
