"""Choose MuJoCo's offscreen GL backend before MuJoCo is imported; `Cameras` renders images offscreen.

MuJoCo reads `MUJOCO_GL` once, at import, and `import mujoco` itself fails when the
library of the chosen backend is missing. So we choose one that is there: `egl` when an
NVIDIA GPU and libEGL are visible, else `osmesa` (software, Debian's `libosmesa6`) when
libOSMesa is installed, else `disabled` (state-only runs work; anything that needs frames
fails with one line, `RenderingError`). A user's own `MUJOCO_GL` is kept when its library
is present. `PYOPENGL_PLATFORM` follows, as PyOpenGL needs the same choice. Mesa's EGL
without a GPU draws the same pixels as OSMesa at the same speed (benchmarks/env_throughput.py
--backends), so OSMesa stays the software default.

`Renderer` draws frames in one of two profiles (RENDER_QUALITIES); `Cameras` keeps one
renderer per image size and profile for an env.
"""

from __future__ import annotations

import copy
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from embodied.errors import ConfigError, RenderingError

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
    if backend == "osmesa" or (backend == "egl" and not _has_nvidia_gpu()):
        # llvmpipe rasterises in the calling thread: its helper threads cost more than they
        # save on small frames, and parallel envs are parallel processes (see docs/rendering.md)
        os.environ.setdefault("LP_NUM_THREADS", "0")
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


RENDER_QUALITIES = ("auto", "fast", "full")
"""`full`: the model's own look (shadows, reflections, skybox, multisampling, every mesh face).
`fast`: none of those, and meshes simplified by vertex clustering; `auto`: fast when
rendering is software (OSMesa, or EGL without an NVIDIA GPU), full otherwise."""
MESH_CELL = 0.01
"""Vertex-clustering cell (metres) of the simplified meshes: under a pixel at 128x128 for a table-sized view."""
MIN_FACES = 2000
"""Meshes with fewer faces are drawn as they are (cheap already)."""
_FAST_OFF = ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX")


def software_rendering() -> bool:
    """Whether frames come from a CPU rasteriser (Mesa's llvmpipe) rather than a GPU."""
    return BACKEND == "osmesa" or (BACKEND == "egl" and not _has_nvidia_gpu())


def resolve_quality(quality: str, name: str = "render_quality") -> str:
    """`fast` or `full` for a `render_quality` option (auto resolves by the backend); ConfigError otherwise."""
    if quality not in RENDER_QUALITIES:
        raise ConfigError(f"{name} must be one of {', '.join(RENDER_QUALITIES)}, got {quality!r}")
    if quality == "auto":
        return "fast" if software_rendering() else "full"
    return quality


def record_qualities(env_config: Any) -> None:
    """Replace `auto` render qualities in an env config by what they resolve to on this machine,
    so that a run's saved config names the profile its images were drawn with."""
    for name in ("render_quality", "video_quality"):
        if name in env_config and env_config[name] == "auto":
            env_config[name] = resolve_quality("auto", name)


def simplify_meshes(model: Any, cell: float = MESH_CELL, min_faces: int = MIN_FACES) -> tuple[Any, int, int]:
    """A copy of `model` whose large meshes are simplified by vertex clustering; (copy, faces before, after).

    Vertices in one cell of a grid (`cell`, or a twentieth of the mesh's diagonal if
    smaller, so small objects keep their shape) merge at their mean; faces that collapse
    are dropped. Only the mesh buffers change, so the copy serves as the model an
    `MjrContext` uploads while scenes are still built from the original model and data.
    """
    simple = copy.copy(model)
    before = after = 0
    for k in range(simple.nmesh):
        va, nv = simple.mesh_vertadr[k], simple.mesh_vertnum[k]
        fa, nf = simple.mesh_faceadr[k], simple.mesh_facenum[k]
        before += nf
        if nf < min_faces:
            after += nf
            continue
        verts = simple.mesh_vert[va : va + nv].astype(np.float64)
        faces = simple.mesh_face[fa : fa + nf]
        size = min(cell, float(np.linalg.norm(verts.max(0) - verts.min(0))) / 20)
        _, first, cluster = np.unique(np.floor(verts / size), axis=0, return_index=True, return_inverse=True)
        cluster = cluster.ravel()
        counts = np.bincount(cluster)
        simple.mesh_vert[va + first] = (
            np.stack([np.bincount(cluster, verts[:, i]) for i in range(3)], 1) / counts[:, None]
        )
        merged = first[cluster[faces]]
        keep = np.flatnonzero(
            (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
        )
        _, unique = np.unique(np.sort(merged[keep], axis=1), axis=0, return_index=True)
        keep = keep[np.sort(unique)]
        simple.mesh_face[fa : fa + len(keep)] = merged[keep]
        for per_face in (simple.mesh_facenormal, simple.mesh_facetexcoord):
            if per_face.size:
                per_face[fa : fa + len(keep)] = per_face[fa : fa + nf][keep].copy()
        simple.mesh_facenum[k] = len(keep)
        after += len(keep)
    return simple, before, after


class Renderer:
    """Offscreen frames of one model at one size and quality (fast or full; see RENDER_QUALITIES).

    `full` draws exactly what `mujoco.Renderer` draws. `fast` uploads a simplified copy
    of the model's meshes (`simplify_meshes`), without multisampling or a shadow map,
    and turns shadows, reflections and the skybox off in every scene.
    """

    def __init__(self, model: Any, size: tuple[int, int], quality: str = "full") -> None:
        import mujoco

        require_rendering()
        height, width = size
        uploaded = model
        if quality == "fast":
            uploaded, _, _ = simplify_meshes(model)
            uploaded.vis.quality.offsamples = 0
            uploaded.vis.quality.shadowsize = 0
        elif quality != "full":
            raise ConfigError(f"render quality must be fast or full, got {quality!r}")
        if quality == "fast" or width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            uploaded = uploaded if uploaded is not model else copy.copy(model)
            uploaded.vis.global_.offwidth = max(width, uploaded.vis.global_.offwidth)
            uploaded.vis.global_.offheight = max(height, uploaded.vis.global_.offheight)
        self.model, self.size, self.quality = model, (height, width), quality
        self._gl = mujoco.GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(uploaded, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=10000)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._off = [getattr(mujoco.mjtRndFlag, flag) for flag in _FAST_OFF] if quality == "fast" else []
        self._segment = (mujoco.mjtRndFlag.mjRND_SEGMENT, mujoco.mjtRndFlag.mjRND_IDCOLOR)

    def render(self, data: Any, camera: str, segmentation: bool = False) -> np.ndarray:
        """HxWx3 uint8 frame of `camera`, or with `segmentation` an HxWx2 int32 map of (object id,
        `mjtObj` type) per pixel, as `mujoco.Renderer` gives it ((-1, -1): background)."""
        import mujoco

        camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if camera_id < 0:
            raise ConfigError(f"camera '{camera}' is not in the model")
        self._camera.fixedcamid = camera_id
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self.model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        for flag in self._off:
            self._scene.flags[flag] = 0
        for flag in self._segment:
            self._scene.flags[flag] = segmentation
        frame = np.empty((*self.size, 3), dtype=np.uint8)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(frame, None, self._rect, self._context)
        frame = frame[::-1]
        if not segmentation:
            return np.ascontiguousarray(frame)
        ids = frame.astype(np.int64) @ np.array([1, 1 << 8, 1 << 16])  # scene geom index + 1; 0: background
        lookup = np.full((self._scene.ngeom + 1, 2), -1, dtype=np.int32)
        for i in range(self._scene.ngeom):
            geom = self._scene.geoms[i]
            if geom.segid >= 0:
                lookup[geom.segid + 1] = (geom.objid, geom.objtype)
        return lookup[np.clip(ids, 0, self._scene.ngeom)]

    def close(self) -> None:
        """Free the GL resources with this renderer's own context current (freeing them under another
        context would delete that context's buffers instead)."""
        if self._gl is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._gl = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Cameras:
    """Offscreen renderers of one model, one per (image size, quality), made on first use."""

    def __init__(self) -> None:
        self._renderers: dict[tuple[tuple[int, int], str], Renderer] = {}

    def render(
        self,
        model: Any,
        data: Any,
        camera: str,
        size: tuple[int, int],
        quality: str = "full",
        segmentation: bool = False,
    ) -> np.ndarray:
        """HxWx3 uint8 image of `camera` at (height, width) and `quality` (or its geom-id map; see Renderer.render)."""
        key = ((int(size[0]), int(size[1])), quality)
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = self._renderers[key] = Renderer(model, key[0], quality)
        return renderer.render(data, camera, segmentation)

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
