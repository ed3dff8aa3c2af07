"""The frame our own MuJoCo manipulation scenes share (MemoryPickPlace, Tabletop).

`SceneEnv.setup_scene` checks the observation and video options (one-line
ConfigErrors), builds the model from the subclass's MJCF and an offscreen camera
cache; `render`, `close`, `camera_image` and the state / pixels / state+pixels
observation follow from them. A subclass adds its task: `CAMERAS`, `NAME`, `_state()`,
`reset` and `step`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import mujoco
import numpy as np

from embodied.errors import ConfigError
from embodied.rendering import Cameras, resolve_quality

OBS_MODES = ("state", "pixels", "state+pixels")
OVERHEAD_LIGHT = (
    '<light pos="0 0 1.5" dir="0 0 -1" directional="true" diffuse="0.4 0.4 0.4" specular="0 0 0" castshadow="false"/>'
)
"""The scenes' one light: straight down, no shadows (cheap to render on OSMesa)."""


def visual_xml(offheight: int, offwidth: int) -> str:
    """The scenes' MJCF <visual> block: an offscreen buffer of the given size, no shadows, a soft headlight."""
    return f"""  <visual>
    <global offwidth="{offwidth}" offheight="{offheight}"/>
    <quality shadowsize="0" numslices="16" numstacks="8"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>"""


def image_size(value: Sequence[int], name: str) -> tuple[int, int]:
    """(height, width) as two positive ints, or a one-line ConfigError."""
    if not hasattr(value, "__len__") or len(value) != 2 or min(int(v) for v in value) <= 0:
        raise ConfigError(f"{name} must be two positive integers (height, width), got {value!r}")
    return int(value[0]), int(value[1])


class SceneEnv(gym.Env):
    """A MuJoCo scene built from MJCF with named cameras; see the module docstring."""

    NAME = "scene"
    CAMERAS: tuple[str, ...] = ()

    def setup_scene(
        self,
        scene_xml: Callable[[int, int], str],
        obs_mode: str,
        cameras: Sequence[str],
        size: Sequence[int],
        render_mode: str | None,
        render_size: Sequence[int],
        render_camera: str,
        render_quality: str = "auto",
        video_quality: str = "full",
    ) -> None:
        """Check the options, then build `self.model`, `self.data` and the camera cache."""
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown obs_mode '{obs_mode}'; choose one of: {', '.join(OBS_MODES)}")
        if isinstance(cameras, str):
            cameras = (cameras,)
        for cam in (*cameras, render_camera):
            if cam not in self.CAMERAS:
                raise ConfigError(f"unknown {self.NAME} camera '{cam}'; choose from: {', '.join(self.CAMERAS)}")
        if obs_mode != "state" and not cameras:
            raise ConfigError(
                f"obs_mode '{obs_mode}' needs at least one camera; choose from: {', '.join(self.CAMERAS)}"
            )
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"unsupported render_mode '{render_mode}'; use 'rgb_array' or leave it unset")
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if obs_mode != "state" else ()
        self.image_size = image_size(size, "image_size")
        self.render_mode = render_mode
        self.render_size = image_size(render_size, "render_size")
        self.render_camera = render_camera
        self.render_quality = resolve_quality(render_quality)
        self.video_quality = resolve_quality(video_quality, "video_quality")
        height = max(self.image_size[0], self.render_size[0])
        width = max(self.image_size[1], self.render_size[1])
        self.model = mujoco.MjModel.from_xml_string(scene_xml(height, width))
        self.data = mujoco.MjData(self.model)
        self._cameras = Cameras()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.camera_image(self.render_camera, self.render_size, self.video_quality)

    def close(self) -> None:
        self._cameras.close()

    def camera_image(
        self, camera: str, size: tuple[int, int], quality: str | None = None, segmentation: bool = False
    ) -> np.ndarray:
        """Render `camera` at (height, width) and `quality` (default: the observations') as an HxWx3
        uint8 image, or with `segmentation` its HxWx2 (object id, type) map; see Renderer.render."""
        quality = quality or self.render_quality
        return self._cameras.render(self.model, self.data, camera, size, quality, segmentation)

    def _observation(self):
        """The observation for `obs_mode`, from the subclass's `_state()` vector and the cameras."""
        if self.obs_mode == "state":
            return self._state()
        obs = {"state": self._state()} if self.obs_mode == "state+pixels" else {}
        obs.update({cam: self.camera_image(cam, self.image_size) for cam in self.cameras})
        return obs
