"""Homeostatic foraging in a MuJoCo arena: `embodied/HomeostaticForaging-v0`.

A point robot (a sphere on two slide joints) moves in a walled 2 m x 2 m arena holding
`resources_per_type` items of food (green) and water (blue). With `actuation="velocity"`
(default) the action is the robot's target velocity (up to 1 m/s per axis, 90% of it
within 3 steps, by velocity servos); with `"force"` it is a planar force against joint
damping (the same top speed, 90% of it after 10 steps: harder to steer). Its internal
state H = (energy, hydration) starts uniformly in `start_internal` (default [0.3, 0.5],
below the setpoint, so that eating pays from the first step) and loses `decay` every
step; touching an item (robot centre within 0.15 m) consumes it, adds `restore` to the
variable it feeds, and respawns it elsewhere. The episode ends when a variable reaches either
bound of `viable` (starving and overeating both kill). The upper bound, 1.5, leaves room for
three items past the setpoint: with items covering a fifth of the floor a moving robot touches
some by accident, and at 1.0 (one accidental item when sated) PPO never learnt to stop eating.

Reward `drive` is the drive reduction of Keramati & Gutkin (2014), r_t = D(H_t) - D(H_t+1)
with D(H) = (sum_i |h*_i - h_i|^n)^(1/m). By default there is no extra death penalty: the return
telescopes to D(H_0) - D(H_T), so dying (at a bound, far from the setpoint) costs the
drive of the final state (`death_penalty` adds a fixed cost; `reward_scale` multiplies the
drive reduction). Eating pays when it brings the variable closer to the
setpoint, i.e. when it is more than restore / 2 below it, and costs when the agent is
sated (tests/test_envs_foraging.py checks the sign at, above and below the setpoint). Reward `survival` is 0 per step and -1 on the terminating step.

Concept shift: normally food feeds energy and water feeds hydration; the `swapped`
mapping exchanges them. The env counts its steps across episodes (`total_steps`) and
swaps after every `shift_every` of them, or after exactly the counts in `shift_schedule`.
The mapping is not observed. `info["mapping"]` is the mapping in force for the next step.

Observation (float32, 6 + 4 * resources_per_type): robot position (2), velocity (2),
internal state (2), then for food and for water the (dx, dy) from the robot to each item,
nearest first. `info` carries internal, drive, consumed, mapping, robot_pos, death_cause
and success (alive after `episode_cap` steps; `embodied.envs.make` sets the cap).
Tests set up states with `reset(options={"internal": [e, h], "mapping": "swapped"})`,
`place_robot(xy)` and `place_resource(kind, index, xy)`.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from embodied.errors import ConfigError
from embodied.rendering import Cameras, resolve_quality

ENV_ID = "embodied/HomeostaticForaging-v0"
REWARDS = ("drive", "survival")
MAPPINGS = ("normal", "swapped")
RESOURCES = ("food", "water")
VARIABLES = ("energy", "hydration")
DEATH_CAUSES = ("energy_depleted", "hydration_depleted", "energy_overload", "hydration_overload")
OPTIONS = ("internal", "mapping")

HALF = 1.0  # half-width of the arena's free floor (m)
WALL = 0.05  # half-thickness of the walls
ROBOT_RADIUS = 0.1
ITEM_RADIUS = 0.06
CONSUME_RADIUS = 0.15  # robot centre within this of an item's centre consumes it
SPAWN_GAP = 0.3  # new items keep this far from the robot
TIMESTEP, FRAME_SKIP = 0.005, 10  # one env step = 0.05 s of simulation
GEAR, DAMPING = 5.0, 5.0  # force actuation: top speed GEAR / DAMPING = 1 m/s, ~40 steps across the arena
SERVO_KV = 20.0  # velocity actuation: force = KV (target - velocity), time constant m / KV = 0.05 s
ACTUATIONS = ("velocity", "force")
VEL_BOUND = 3.0  # observed velocity is clipped to this (the robot never reaches it)
FOOD_RGBA, WATER_RGBA = "0.2 0.75 0.2 1", "0.2 0.4 0.95 1"
BAR_RGB = np.array([[40, 190, 40], [50, 100, 240]], dtype=np.uint8)


def _actuators(actuation: str) -> tuple[float, str]:
    """(joint damping, <actuator> body) for the actuation mode."""
    if actuation == "velocity":
        return 0.0, "".join(
            f'<velocity joint="{j}" kv="{SERVO_KV}" ctrlrange="-1 1" ctrllimited="true"/>' for j in "xy"
        )
    return DAMPING, "".join(f'<motor joint="{j}" gear="{GEAR}" ctrlrange="-1 1" ctrllimited="true"/>' for j in "xy")


def _scene_xml(per_type: int, height: int, width: int, actuation: str = "velocity") -> str:
    """MJCF of the arena: floor, four walls, the robot, and one mocap body per item."""
    damping, actuators = _actuators(actuation)
    outer = HALF + 2 * WALL
    walls = "".join(
        f'<geom type="box" pos="{x} {y} 0.1" size="{sx} {sy} 0.1" rgba="0.45 0.4 0.35 1"/>'
        for x, y, sx, sy in (
            (HALF + WALL, 0, WALL, outer),
            (-HALF - WALL, 0, WALL, outer),
            (0, HALF + WALL, outer, WALL),
            (0, -HALF - WALL, outer, WALL),
        )
    )
    items = "".join(
        f'<body name="{name}{i}" mocap="true" pos="0 0 0.02"><geom type="cylinder" size="{ITEM_RADIUS} 0.02" '
        f'rgba="{rgba}" contype="0" conaffinity="0"/></body>'
        for name, rgba in zip(RESOURCES, (FOOD_RGBA, WATER_RGBA))
        for i in range(per_type)
    )
    extent = 2 * outer + 0.1  # orthographic camera: visible height in metres
    fovy = extent * max(1.0, height / width)
    return f"""
<mujoco model="homeostatic_foraging">
  <option timestep="{TIMESTEP}" gravity="0 0 0"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  <default><geom condim="1"/></default>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true" diffuse="0.4 0.4 0.4" castshadow="false"/>
    <camera name="top" pos="0 0 3" xyaxes="1 0 0 0 1 0" orthographic="true" fovy="{fovy:.4f}"/>
    <geom type="plane" size="{outer} {outer} 0.1" rgba="0.85 0.85 0.8 1" contype="0" conaffinity="0"/>
    {walls}
    <body name="robot" pos="0 0 {ROBOT_RADIUS}">
      <joint name="x" type="slide" axis="1 0 0" damping="{damping}"/>
      <joint name="y" type="slide" axis="0 1 0" damping="{damping}"/>
      <geom type="sphere" size="{ROBOT_RADIUS}" mass="1" rgba="0.95 0.5 0.1 1"/>
    </body>
    {items}
  </worldbody>
  <actuator>{actuators}</actuator>
</mujoco>"""


def _floats(value: Sequence[float], name: str, length: int = 2) -> np.ndarray:
    """`value` as a float array of `length` numbers, or a one-line ConfigError."""
    if not hasattr(value, "__len__") or len(value) != length:
        raise ConfigError(f"{name} must be {length} numbers, got {value!r}")
    return np.array([float(v) for v in value], dtype=np.float64)


class HomeostaticForagingEnv(gym.Env):
    """Keep (energy, hydration) viable by foraging; see the module docstring."""

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": round(1 / (TIMESTEP * FRAME_SKIP)),
        "death_causes": DEATH_CAUSES,
        "episode_means": ("drive",),
    }

    def __init__(
        self,
        reward: str = "drive",
        decay: Sequence[float] = (0.003, 0.003),
        restore: float = 0.25,
        setpoint: Sequence[float] = (0.6, 0.6),
        viable: Sequence[float] = (0.0, 1.5),
        drive_n: float = 4.0,
        drive_m: float = 3.0,
        resources_per_type: int = 6,
        start_internal: Sequence[float] = (0.3, 0.5),
        actuation: str = "velocity",
        shift_every: int = 0,
        shift_schedule: Sequence[int] | None = None,
        render_size: Sequence[int] = (256, 256),
        render_mode: str | None = None,
        video_quality: str = "full",
        reward_scale: float = 1.0,
        death_penalty: float = 0.0,
    ) -> None:
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward '{reward}' for HomeostaticForaging; choose from: {', '.join(REWARDS)}")
        if actuation not in ACTUATIONS:
            raise ConfigError(f"unknown actuation '{actuation}'; choose from: {', '.join(ACTUATIONS)}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be rgb_array or None, got '{render_mode}'")
        self.decay, self.setpoint, self.viable = (
            _floats(decay, "decay"),
            _floats(setpoint, "setpoint"),
            _floats(viable, "viable"),
        )
        lo, hi = self.viable
        if (self.decay < 0).any() or float(restore) < 0:
            raise ConfigError(f"decay and restore must be >= 0, got decay={list(decay)} restore={restore}")
        if not lo < hi or not ((lo < self.setpoint) & (self.setpoint < hi)).all():
            raise ConfigError(
                f"need viable[0] < setpoint < viable[1], got viable={list(viable)} setpoint={list(setpoint)}"
            )
        self.start_internal = _floats(start_internal, "start_internal")
        if not lo < self.start_internal[0] <= self.start_internal[1] < hi:
            raise ConfigError(
                f"start_internal must be [low, high] with viable[0] < low <= high < viable[1], got {list(start_internal)}"
            )
        if drive_n <= 0 or drive_m <= 0:
            raise ConfigError(f"drive_n and drive_m must be > 0, got {drive_n} and {drive_m}")
        if int(resources_per_type) < 1 or int(shift_every) < 0:
            raise ConfigError(
                f"need resources_per_type >= 1 and shift_every >= 0, got {resources_per_type} and {shift_every}"
            )
        if shift_schedule is not None and any(int(s) < 1 for s in shift_schedule):
            raise ConfigError(f"shift_schedule must list positive step counts, got {list(shift_schedule)}")
        if len(render_size) != 2 or min(int(s) for s in render_size) <= 0:
            raise ConfigError(f"render_size must be two positive integers (height, width), got {list(render_size)}")
        if float(reward_scale) <= 0 or float(death_penalty) < 0:
            raise ConfigError(f"need reward_scale > 0 and death_penalty >= 0, got {reward_scale} and {death_penalty}")
        self.reward_mode, self.restore, self.actuation = reward, float(restore), actuation
        self.reward_scale, self.death_penalty = float(reward_scale), float(death_penalty)
        self.drive_n, self.drive_m = float(drive_n), float(drive_m)
        self.per_type = int(resources_per_type)
        self.shift_every = int(shift_every)
        self.shift_schedule = None if shift_schedule is None else frozenset(int(s) for s in shift_schedule)
        self.render_mode = render_mode
        self.video_quality = resolve_quality(video_quality, "video_quality")
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.episode_cap: int | None = None
        """Surviving this many steps is a success; `embodied.envs.make` sets it to the TimeLimit's cap."""
        self.total_steps = 0
        """Env steps taken by this instance across all episodes (drives the concept shift)."""
        self.mapping = "normal"

        self.model = mujoco.MjModel.from_xml_string(_scene_xml(self.per_type, *self.render_size, actuation))
        self.data = mujoco.MjData(self.model)
        self._cameras = Cameras()
        self._items = np.zeros((2, self.per_type, 2))  # (type, index, xy)
        self.internal = self.setpoint.copy()
        self._drive, self._steps = 0.0, 0

        h_low, h_high = lo - self.decay.max(), hi + 2 * self.per_type * self.restore  # reachable in one step
        high = np.concatenate([[HALF] * 2, [VEL_BOUND] * 2, [h_high] * 2, [2 * HALF] * (4 * self.per_type)])
        low = -high
        low[4:6] = h_low
        self.observation_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    # --- Gymnasium API -------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """New robot and item positions; each internal variable uniform in `start_internal` unless options say otherwise.

        The mapping and `total_steps` carry over from the previous episode (the world's rule
        does not reset with the agent); `options["mapping"]` sets the mapping directly.
        """
        super().reset(seed=seed)
        internal, mapping = self._parse_options(dict(options or {}))
        mujoco.mj_resetData(self.model, self.data)
        start = self.np_random.uniform(-HALF + 2 * ROBOT_RADIUS, HALF - 2 * ROBOT_RADIUS, size=2)
        self.data.qpos[:2] = start
        self._items = self._spawn(2 * self.per_type, start).reshape(2, self.per_type, 2)
        self.internal, self.mapping = internal, mapping
        self._drive, self._steps = self.drive(self.internal), 0
        return self._obs(), self._info([], None, False)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move, decay, consume what is within reach, then check viability; may shift the mapping."""
        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self._steps += 1
        self.total_steps += 1
        self.internal = self.internal - self.decay
        consumed = self._consume(self.data.qpos[:2])
        drive_before, self._drive = self._drive, self.drive(self.internal)
        cause = self._death_cause()
        terminated = cause is not None
        success = not terminated and self.episode_cap is not None and self._steps >= self.episode_cap
        if self.reward_mode == "drive":
            reward = self.reward_scale * (drive_before - self._drive) - (self.death_penalty if terminated else 0.0)
        else:
            reward = -1.0 if terminated else 0.0
        if self._shifts_at(self.total_steps):
            self.mapping = MAPPINGS[1 - MAPPINGS.index(self.mapping)]
        return self._obs(), float(reward), terminated, False, self._info(consumed, cause, success)

    def render(self) -> np.ndarray | None:
        """Top-down frame of the arena with energy/hydration bars at the top left."""
        if self.render_mode != "rgb_array":
            return None
        self.data.mocap_pos[:, :2] = self._items.reshape(-1, 2)
        mujoco.mj_kinematics(self.model, self.data)  # item and camera poses; qpos/qvel untouched
        mujoco.mj_camlight(self.model, self.data)
        frame = self._cameras.render(self.model, self.data, "top", self.render_size, self.video_quality)
        self._draw_bars(frame)
        return frame

    def close(self) -> None:
        self._cameras.close()

    # --- public helpers ------------------------------------------------------------
    def drive(self, internal: np.ndarray) -> float:
        """D(H) = (sum_i |h*_i - h_i|^n)^(1/m): the homeostatic drive of an internal state."""
        return float(np.sum(np.abs(self.setpoint - internal) ** self.drive_n) ** (1.0 / self.drive_m))

    def place_robot(self, xy: Sequence[float]) -> None:
        """Put the robot at rest at `xy` (for constructed tests); consumption happens on the next step."""
        self.data.qpos[:2] = xy
        self.data.qvel[:2] = 0.0

    def place_resource(self, kind: str, index: int, xy: Sequence[float]) -> None:
        """Move item `index` of `kind` ("food" or "water") to `xy` (for constructed tests)."""
        if kind not in RESOURCES:
            raise ConfigError(f"unknown resource kind '{kind}'; choose from: {', '.join(RESOURCES)}")
        self._items[RESOURCES.index(kind), index] = xy

    @property
    def robot_pos(self) -> np.ndarray:
        """Robot centre (x, y) in metres."""
        return self.data.qpos[:2].copy()

    @property
    def resource_pos(self) -> dict[str, np.ndarray]:
        """Item positions per kind, (resources_per_type, 2) each, in item-index order."""
        return {name: self._items[k].copy() for k, name in enumerate(RESOURCES)}

    # --- pieces --------------------------------------------------------------------
    def _parse_options(self, options: dict[str, Any]) -> tuple[np.ndarray, str]:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown reset option '{unknown[0]}' for HomeostaticForaging; choose from: {', '.join(OPTIONS)}"
            )
        internal = self.np_random.uniform(*self.start_internal, size=2)
        if "internal" in options:
            internal = _floats(options["internal"], "options['internal']")
            if not ((self.viable[0] < internal) & (internal < self.viable[1])).all():
                raise ConfigError(
                    f"options['internal'] must lie strictly inside viable={self.viable.tolist()}, got {internal.tolist()}"
                )
        mapping = options.get("mapping", self.mapping)
        if mapping not in MAPPINGS:
            raise ConfigError(f"unknown mapping '{mapping}'; choose from: {', '.join(MAPPINGS)}")
        return internal, mapping

    def _spawn(self, count: int, robot: np.ndarray) -> np.ndarray:
        """`count` uniform item positions away from the walls and at least SPAWN_GAP from the robot."""
        limit = HALF - 2 * ITEM_RADIUS
        points = self.np_random.uniform(-limit, limit, size=(count, 2))
        while True:
            near = np.sum((points - robot) ** 2, axis=1) < SPAWN_GAP**2
            if not near.any():
                return points
            points[near] = self.np_random.uniform(-limit, limit, size=(int(near.sum()), 2))

    def _consume(self, robot: np.ndarray) -> list[str]:
        """Consume every item within reach: restore its variable, respawn it; return the kinds eaten."""
        hit = np.sum((self._items - robot) ** 2, axis=-1) <= CONSUME_RADIUS**2  # (type, index)
        if not hit.any():
            return []
        counts = hit.sum(axis=1)
        self.internal = self.internal + self.restore * (counts if self.mapping == "normal" else counts[::-1])
        kinds, index = np.nonzero(hit)
        self._items[kinds, index] = self._spawn(len(kinds), robot)
        return [RESOURCES[k] for k in kinds]

    def _death_cause(self) -> str | None:
        lo, hi = self.viable
        for i, name in enumerate(VARIABLES):
            if self.internal[i] <= lo:
                return f"{name}_depleted"
            if self.internal[i] >= hi:
                return f"{name}_overload"
        return None

    def _shifts_at(self, step: int) -> bool:
        if self.shift_schedule is not None:
            return step in self.shift_schedule
        return self.shift_every > 0 and step % self.shift_every == 0

    def _obs(self) -> np.ndarray:
        robot = self.data.qpos[:2]
        rel = self._items - robot
        order = np.argsort(np.sum(rel**2, axis=-1), axis=1, kind="stable")
        rel = np.take_along_axis(rel, order[..., None], axis=1)
        obs = np.concatenate([robot, self.data.qvel[:2], self.internal, rel.ravel()]).astype(np.float32)
        return np.clip(obs, self.observation_space.low, self.observation_space.high, out=obs)

    def _info(self, consumed: list[str], cause: str | None, success: bool) -> dict[str, Any]:
        return {
            "internal": self.internal.copy(),
            "drive": self._drive,
            "consumed": consumed,
            "mapping": self.mapping,
            "robot_pos": self.robot_pos,
            "death_cause": cause,
            "success": success,
        }

    def _draw_bars(self, frame: np.ndarray) -> None:
        """Energy (green) and hydration (blue) as bars spanning the viable range, white tick at the setpoint."""
        height, width = frame.shape[:2]
        bar_h, bar_w, pad = max(2, height // 32), max(8, width // 3), max(2, height // 64)
        lo, hi = self.viable
        fill = np.clip((self.internal - lo) / (hi - lo), 0.0, 1.0)
        mark = np.clip((self.setpoint - lo) / (hi - lo), 0.0, 1.0)
        for row in range(2):
            top = pad + row * (bar_h + pad)
            frame[top : top + bar_h, pad : pad + bar_w] = 30
            frame[top : top + bar_h, pad : pad + int(round(fill[row] * bar_w))] = BAR_RGB[row]
            frame[top : top + bar_h, pad + min(bar_w - 1, int(round(mark[row] * bar_w)))] = 255


def register(max_episode_steps: int = 1000) -> list[str]:
    """Register `embodied/HomeostaticForaging-v0` (1000-step cap)."""
    gym.register(
        id=ENV_ID,
        entry_point="embodied.envs.navigation.foraging:HomeostaticForagingEnv",
        max_episode_steps=max_episode_steps,
    )
    return [ENV_ID]
