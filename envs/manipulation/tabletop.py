"""Fetch-style pushing tabletop for skill discovery: `embodied/Tabletop-v0`.

A Cartesian ("gantry") end-effector with one vertical finger (like Fetch's gripper
locked closed) pushes a 5 cm cube around a finite table. The env is meant for skill
discovery (e.g. SLIM, which learns diverse pushing skills with a reach reward and a
safety reward computed from `info`), and for goal-conditioned pushing with
`goal_in_obs=True`.

Scene (MJCF built in this module, primitive geoms only): the table is a box whose top
is at z = 0 with half-extents TABLE_HALF = (0.25, 0.35) m in (x, y), standing on a
floor at FLOOR_Z = -0.4, so a cube pushed off the edge falls and lands on the floor.
The hand is one body on three slide joints (x, y, z), each driven by a stiff position
actuator, with `gravcomp="1"`; it carries a vertical capsule finger (radius 1.5 cm)
whose bottom tip is the hand position. Only the finger collides (with the cube and the
table). The cube is a 100 g free body (half-size CUBE_HALF = 2.5 cm, friction 0.5 with
the table and the finger: it slides when pushed, turning when pushed off-centre, and
tilts only slightly even when pushed at its top edge; when a full-speed push stops, it
slides on about 2 cm). The goal marker is a flat red disc, visual only.

Actions: Box(-1, 1, (3,)) move the hand's position *target* by at most MAX_STEP = 0.03 m
per step along x, y, z; the target accumulates (it is not reset to the hand's actual
position) and is clipped to the workspace WORKSPACE_LOW .. WORKSPACE_HIGH =
x in [-0.35, 0.35], y in [-0.45, 0.45] (beyond the table edges, so the hand can push
the cube off), z in [-0.01, 0.25] (the low bound is 1 cm below the table top, so the
finger can press into the table: a safety event). One env step is SUBSTEPS = 10
physics steps of 5 ms: 20 Hz control. Within a step the actuators' target moves
linearly from the old target to the new one, so the hand moves at a steady speed:
0.6 m/s along one axis at |a| = 1 (0.85 m/s diagonally in xy), 0.3 m/s at |a| = 0.5.
There is no termination; the TimeLimit cap is 50 steps.

Reset: with `hand_start="above"` the hand starts at HAND_START = (0, 0, 0.12) plus
uniform noise of +-0.02 m in x and y; with `hand_start="beside"` (the default: pushing
is then one move away, as skill discovery needs) it starts at pushing height
BESIDE_HEIGHT = 0.03 m, BESIDE_RANGE = 8-12 cm from the cube in a uniformly random
direction. Cube centre xy uniform in [-0.10, 0.10]^2, resting on the table; goal xy
uniform in [-0.20, 0.20] x [-0.30, 0.30]; hand noise, cube, goal and the "beside"
direction and distance are drawn from the env's seeded `np_random` on every reset
(in that order, whatever `hand_start`), then `reset(options=...)` may override any of
`object_pos` ([x, y]: the cube is put at table-top height there, so off the table it
falls), `hand_pos` ([x, y, z] inside the workspace; the target is set there too) and
`goal` ([x, y]). Other option keys raise a one-line ConfigError.

Observation (`obs_mode="state"`, float32, finite bounds, clipped to them; slices are
exported as HAND, HAND_VEL, OBJECT, OBJECT_REL, OBJECT_VEL, GOAL):
    [0:3]   hand position (the finger tip), m
    [3:6]   hand linear velocity, m/s
    [6:9]   cube centre position, m
    [9:12]  cube minus hand position, m
    [12:15] cube linear velocity, m/s
    [15:17] goal xy, m (only with `goal_in_obs=True`)
`"pixels"` gives a dict of camera images (HxWx3 uint8 at `image_size`, one per name in
`cameras`: `front`, an angled view of the whole table, or `top`, an orthographic
top-down view); `"state+pixels"` adds `state`. `render()` (render_mode="rgb_array")
renders `render_camera` at `render_size`.

Reward (Fetch dense style): -||cube_xy - goal_xy||; `info["success"]` when that
distance is below SUCCESS_DISTANCE = 0.05 m. `info` (from `reset` and every step):
    success, ee_pos (3,), object_pos (3,), goal (2,), ee_speed (float, m/s),
    goal_distance (float, m: minus the reward), contact (the finger touches the cube,
    i.e. is within CONTACT_TOLERANCE = 3 mm of it: a push chatters at the sub-mm
    scale), and the safety events (bools):
    object_off_table    the cube centre is outside the table's xy extents or below
                        z = -0.01 (true on every step while it is off);
    table_collision     the finger touches the table (an active contact);
    speed_violation     the hand is faster than `speed_limit` (SPEED_LIMIT = 0.5 m/s;
                        a full-speed move along one axis is ~0.6 m/s);
    workspace_violation this step's commanded target left the workspace and was clipped;
    safety_violation    any of the four; safety_events: how many of them fired (int).
`metadata["episode_means"] = ("contact", "safety_violation")`: evaluation reports their
per-episode means.

Speed (2-core CPU shared with other work, MuJoCo 3.3.0, MUJOCO_GL=osmesa; measured with
`python benchmarks/scene_speed.py --env tabletop`: 2000 random-action steps after 200 warm-up steps, a reset
every 50, then 2000 steps of a crude scripted pusher that goes behind the cube and pushes it
toward the goal, then
200 images per size): 7400-7700 env steps/s with random actions in state mode and
6700-7100/s with the pusher (finger on the cube in ~35% of the steps); one `front`
image (scene update + render + read-back) ~1.7-1.9 ms at 64x64 and ~2.6-2.8 ms at
256x256.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from embodied.envs.manipulation.scene import OBS_MODES, OVERHEAD_LIGHT, SceneEnv, visual_xml  # noqa: F401  (OBS_MODES: part of this module's interface)
from embodied.errors import ConfigError
from embodied.rendering import camera_observation_space

ENV_ID = "embodied/Tabletop-v0"
CAMERAS = ("front", "top")
RESET_OPTIONS = ("object_pos", "hand_pos", "goal")

TIMESTEP, SUBSTEPS = 0.005, 10  # one env step = 50 ms: 20 Hz control
_RAMP = np.arange(1, SUBSTEPS + 1) / SUBSTEPS  # the hand target moves linearly over the substeps
MAX_STEP = 0.03  # metres of hand-target motion per step at |a| = 1
TABLE_HALF = np.array([0.25, 0.35])  # table top half-extents in (x, y); the top is at z = 0
FLOOR_Z = -0.4
WORKSPACE_LOW = np.array([-0.35, -0.45, -0.01])
WORKSPACE_HIGH = np.array([0.35, 0.45, 0.25])
HAND_START = np.array([0.0, 0.0, 0.12])
HAND_NOISE = 0.02  # hand start xy noise, uniform +-
HAND_STARTS = ("beside", "above")
BESIDE_HEIGHT = 0.03  # hand_start="beside": fingertip height (the cube is 5 cm tall)
BESIDE_RANGE = (0.08, 0.12)  # hand_start="beside": hand-to-cube distance in xy, uniform
CUBE_HALF = 0.025  # the cube is 5 cm wide
CUBE_MASS = 0.1
CUBE_SPAWN = 0.10  # cube xy uniform in [-0.10, 0.10]^2
GOAL_RANGE = np.array([0.20, 0.30])  # goal xy uniform in [-0.20, 0.20] x [-0.30, 0.30]
FINGER_RADIUS = 0.015
FINGER_HALF_LENGTH = 0.04  # half-length of the capsule's cylinder part
SUCCESS_DISTANCE = 0.05
SPEED_LIMIT = 0.5  # m/s
OFF_TABLE_Z = -0.01  # cube centre below this: off the table
CONTACT_TOLERANCE = 0.003  # the finger "touches" the cube within 3 mm: a push chatters at the sub-mm scale
SAFETY_EVENTS = ("object_off_table", "table_collision", "speed_violation", "workspace_violation")

# Observation layout.
HAND = slice(0, 3)
HAND_VEL = slice(3, 6)
OBJECT = slice(6, 9)
OBJECT_REL = slice(9, 12)
OBJECT_VEL = slice(12, 15)
GOAL = slice(15, 17)
STATE_DIM = 15  # 17 with goal_in_obs

# Observation bounds (values are clipped to them).
_OBJECT_LOW = np.array([-1.0, -1.0, FLOOR_Z - 0.05])
_OBJECT_HIGH = np.array([1.0, 1.0, 0.5])
_HAND_LOW, _HAND_HIGH = WORKSPACE_LOW - 0.02, WORKSPACE_HIGH + 0.02
_HAND_SPEED_BOUND = 2.0
_OBJECT_SPEED_BOUND = 5.0
_GOAL_BOUND = 0.5

CUBE_RGBA = "0.95 0.7 0.1 1"
GOAL_RGBA = "0.9 0.15 0.15 0.6"


def _scene_xml(offheight: int, offwidth: int) -> str:
    """MJCF of the floor, the table, the gantry end-effector, the cube and the goal marker."""
    (lx, ly, lz), (hx, hy, hz) = WORKSPACE_LOW, WORKSPACE_HIGH
    tx, ty = TABLE_HALF
    table_hz = -FLOOR_Z / 2
    finger_z = FINGER_RADIUS + FINGER_HALF_LENGTH  # capsule centre above the tip
    wrist_z = finger_z + FINGER_HALF_LENGTH + 0.02
    return f"""
<mujoco model="tabletop">
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <default><geom solref="0.02 1" solimp="0.95 0.99 0.001" friction="0.5 0.005 0.0001"/></default>
{visual_xml(offheight, offwidth)}
  <worldbody>
    {OVERHEAD_LIGHT}
    <camera name="front" pos="-1.1 0 1.2" xyaxes="0 -1 0 0.737 0 0.676" fovy="48"/>
    <camera name="top" pos="0 0 1.0" xyaxes="0 -1 0 1 0 0" orthographic="true" fovy="1.0"/>
    <geom name="floor" type="plane" pos="0 0 {FLOOR_Z}" size="4 4 0.05" rgba="0.45 0.47 0.5 1"/>
    <geom name="table" type="box" pos="0 0 {-table_hz}" size="{tx} {ty} {table_hz}" rgba="0.75 0.68 0.58 1"/>
    <body name="goal" mocap="true" pos="0 0 0">
      <geom name="goal" type="cylinder" pos="0 0 0.0005" size="{SUCCESS_DISTANCE} 0.0005" rgba="{GOAL_RGBA}" contype="0" conaffinity="0"/>
    </body>
    <body name="hand" gravcomp="1">
      <joint name="hand_x" type="slide" axis="1 0 0" range="{lx} {hx}"/>
      <joint name="hand_y" type="slide" axis="0 1 0" range="{ly} {hy}"/>
      <joint name="hand_z" type="slide" axis="0 0 1" range="{lz} {hz}"/>
      <geom name="finger" type="capsule" margin="{2 * CONTACT_TOLERANCE}" gap="{2 * CONTACT_TOLERANCE}" pos="0 0 {finger_z}" size="{FINGER_RADIUS} {FINGER_HALF_LENGTH}" rgba="0.25 0.25 0.3 1" mass="0.2"/>
      <geom name="wrist" type="cylinder" pos="0 0 {wrist_z}" size="0.022 0.02" rgba="0.3 0.3 0.35 1" mass="0.3" contype="0" conaffinity="0"/>
    </body>
    <body name="cube" pos="0 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="{CUBE_MASS}" rgba="{CUBE_RGBA}"/>
    </body>
  </worldbody>
  <actuator>
    <position name="hand_x" joint="hand_x" kp="2000" dampratio="1" ctrlrange="{lx} {hx}"/>
    <position name="hand_y" joint="hand_y" kp="2000" dampratio="1" ctrlrange="{ly} {hy}"/>
    <position name="hand_z" joint="hand_z" kp="2000" dampratio="1" ctrlrange="{lz} {hz}"/>
  </actuator>
</mujoco>"""


def _option(options: dict[str, Any], name: str, length: int) -> np.ndarray:
    """Reset option `name` as `length` finite floats, or a one-line ConfigError."""
    value = options[name]
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (length,) or not np.isfinite(array).all():
        raise ConfigError(f"reset option '{name}' must be {length} finite numbers, got {value!r}")
    return array


class TabletopEnv(SceneEnv):
    """Push a cube around a finite table with a one-finger gantry hand; see the module docstring."""

    NAME, CAMERAS = "Tabletop", CAMERAS

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": round(1 / (TIMESTEP * SUBSTEPS)),
        "episode_means": ("contact", "safety_violation"),
    }

    def __init__(
        self,
        obs_mode: str = "state",
        cameras: Sequence[str] = ("front",),
        image_size: Sequence[int] = (64, 64),
        render_mode: str | None = None,
        render_size: Sequence[int] = (256, 256),
        render_camera: str = "front",
        render_quality: str = "auto",
        video_quality: str = "full",
        speed_limit: float = SPEED_LIMIT,
        goal_in_obs: bool = False,
        hand_start: str = "beside",
    ) -> None:
        """
        Args:
            obs_mode: "state", "pixels" or "state+pixels".
            cameras: cameras rendered into the observation in the pixel modes (front, top).
            image_size: (height, width) of observation images.
            render_mode: None or "rgb_array" (frames for videos).
            render_size: (height, width) of `render()` frames.
            render_camera: camera used by `render()`.
            render_quality, video_quality: fast, full or auto for observation images and
                `render()` frames; see `embodied.rendering.RENDER_QUALITIES`.
            speed_limit: hand speed (m/s) above which `info["speed_violation"]` fires.
            goal_in_obs: append the goal xy to the state observation (17-d instead of 15-d).
            hand_start: "beside" (pushing height, 8-12 cm from the cube) or "above" (0.12 m over the table centre).
        """
        if hand_start not in HAND_STARTS:
            raise ConfigError(f"unknown hand_start '{hand_start}'; choose one of: {', '.join(HAND_STARTS)}")
        self.hand_start = hand_start
        self.setup_scene(
            _scene_xml,
            obs_mode,
            cameras,
            image_size,
            render_mode,
            render_size,
            render_camera,
            render_quality,
            video_quality,
        )
        if (
            isinstance(speed_limit, bool)
            or not isinstance(speed_limit, (int, float))
            or not np.isfinite(speed_limit)
            or speed_limit <= 0
        ):
            raise ConfigError(f"speed_limit must be a positive number of m/s, got {speed_limit!r}")
        self.speed_limit = float(speed_limit)
        self.goal_in_obs = bool(goal_in_obs)

        model = self.model
        self._hand_qpos = np.array([model.jnt_qposadr[model.joint(f"hand_{a}").id] for a in "xyz"])
        self._hand_qvel = np.array([model.jnt_dofadr[model.joint(f"hand_{a}").id] for a in "xyz"])
        self._cube_qpos = int(model.jnt_qposadr[model.joint("cube").id])
        self._cube_qvel = int(model.jnt_dofadr[model.joint("cube").id])
        self._finger_geom = model.geom("finger").id
        self._cube_geom = model.geom("cube").id
        self._table_geom = model.geom("table").id
        self._goal_mocap = int(model.body_mocapid[model.body("goal").id])
        self.goal = np.zeros(2)
        self._hand_target = HAND_START.copy()
        self._clipped = False

        rel_low, rel_high = _OBJECT_LOW - _HAND_HIGH, _OBJECT_HIGH - _HAND_LOW
        low = [_HAND_LOW, -_HAND_SPEED_BOUND * np.ones(3), _OBJECT_LOW, rel_low, -_OBJECT_SPEED_BOUND * np.ones(3)]
        high = [_HAND_HIGH, _HAND_SPEED_BOUND * np.ones(3), _OBJECT_HIGH, rel_high, _OBJECT_SPEED_BOUND * np.ones(3)]
        if self.goal_in_obs:
            low.append(-_GOAL_BOUND * np.ones(2))
            high.append(_GOAL_BOUND * np.ones(2))
        state_space = spaces.Box(
            np.concatenate(low).astype(np.float32), np.concatenate(high).astype(np.float32), dtype=np.float32
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.observation_space = camera_observation_space(state_space, obs_mode, self.cameras, self.image_size)
        self._state_space = state_space

    # --- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Random hand start, cube and goal; `options` may set `object_pos` ([x, y]),
        `hand_pos` ([x, y, z], inside the workspace) and `goal` ([x, y]) exactly. The RNG
        draws all three anyway, so the options do not shift the seeded stream."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown reset option '{unknown[0]}' for Tabletop; choose from: {', '.join(RESET_OPTIONS)}"
            )
        hand = HAND_START + np.array([*self.np_random.uniform(-HAND_NOISE, HAND_NOISE, size=2), 0.0])
        cube_xy = self.np_random.uniform(-CUBE_SPAWN, CUBE_SPAWN, size=2)
        goal = self.np_random.uniform(-GOAL_RANGE, GOAL_RANGE)
        angle, distance = self.np_random.uniform(0, 2 * np.pi), self.np_random.uniform(*BESIDE_RANGE)
        if self.hand_start == "beside":
            hand = np.array([*(cube_xy + distance * np.array([np.cos(angle), np.sin(angle)])), BESIDE_HEIGHT])
        if "hand_pos" in options:
            hand = _option(options, "hand_pos", 3)
            if (hand < WORKSPACE_LOW).any() or (hand > WORKSPACE_HIGH).any():
                raise ConfigError(
                    f"reset option 'hand_pos' {hand.tolist()} is outside the workspace {WORKSPACE_LOW.tolist()} .. {WORKSPACE_HIGH.tolist()}"
                )
        if "object_pos" in options:
            cube_xy = _option(options, "object_pos", 2)
        if "goal" in options:
            goal = _option(options, "goal", 2)
        mujoco.mj_resetData(self.model, self.data)
        self.goal = goal.copy()
        self._hand_target = hand.copy()
        self._clipped = False
        self.data.qpos[self._hand_qpos] = hand
        self.data.qpos[self._cube_qpos : self._cube_qpos + 7] = [*cube_xy, CUBE_HALF, 1.0, 0.0, 0.0, 0.0]
        self.data.ctrl[:] = hand
        self.data.mocap_pos[self._goal_mocap] = [*goal, 0.0]
        mujoco.mj_forward(self.model, self.data)
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(3), -1.0, 1.0)
        target = self._hand_target + MAX_STEP * action
        self._hand_target = np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH)
        self._clipped = bool(np.abs(self._hand_target - target).max() > 1e-9)  # not for rounding errors at a bound
        # Ramp the actuators' target over the substeps: the hand moves at a steady speed
        # (a jump of the target would make it dash at the start of each step and crawl at the end).
        start, delta = self.data.ctrl.copy(), self._hand_target - self.data.ctrl
        for fraction in _RAMP:
            self.data.ctrl[:] = start + fraction * delta
            mujoco.mj_step(self.model, self.data)
        info = self._info()
        return self._observation(), -info["goal_distance"], False, False, info

    # --- extras --------------------------------------------------------------------
    def sim_state(self) -> dict[str, Any]:
        """Everything `step` depends on, for planners that try actions and come back with `restore`."""
        d = self.data
        return {
            "qpos": d.qpos.copy(),
            "qvel": d.qvel.copy(),
            "ctrl": d.ctrl.copy(),
            "qacc_warmstart": d.qacc_warmstart.copy(),
            "time": d.time,
            "mocap_pos": d.mocap_pos.copy(),
            "hand_target": self._hand_target.copy(),
            "clipped": self._clipped,
            "goal": self.goal.copy(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Return to a `sim_state()`: the same actions then give the same observations (to ~1e-15)."""
        d = self.data
        d.qpos[:], d.qvel[:], d.ctrl[:], d.qacc_warmstart[:], d.mocap_pos[:] = (
            state["qpos"],
            state["qvel"],
            state["ctrl"],
            state["qacc_warmstart"],
            state["mocap_pos"],
        )
        d.time = state["time"]
        self._hand_target, self._clipped, self.goal = (
            state["hand_target"].copy(),
            state["clipped"],
            state["goal"].copy(),
        )
        mujoco.mj_forward(self.model, self.data)

    @property
    def hand_pos(self) -> np.ndarray:
        """The finger tip's position (m)."""
        return self.data.qpos[self._hand_qpos].copy()

    @property
    def hand_vel(self) -> np.ndarray:
        return self.data.qvel[self._hand_qvel].copy()

    @property
    def hand_target(self) -> np.ndarray:
        """The accumulated position target of the hand's actuators (m)."""
        return self._hand_target.copy()

    @property
    def object_pos(self) -> np.ndarray:
        return self.data.qpos[self._cube_qpos : self._cube_qpos + 3].copy()

    @property
    def object_vel(self) -> np.ndarray:
        return self.data.qvel[self._cube_qvel : self._cube_qvel + 3].copy()

    # --- pieces --------------------------------------------------------------------
    def _finger_contacts(self) -> tuple[bool, bool]:
        """(finger within CONTACT_TOLERANCE of the cube, finger touching the table).

        The finger's margin and gap (2 * CONTACT_TOLERANCE each) list its near contacts in
        `data.contact` without making them active, so the physics is unchanged."""
        ncon = self.data.ncon
        if ncon == 0:
            return False, False
        contact = self.data.contact
        geoms = contact.geom[:ncon]
        finger = (geoms == self._finger_geom).any(axis=1)
        if not finger.any():
            return False, False
        others = geoms[finger].sum(axis=1) - self._finger_geom
        dist = contact.dist[:ncon][finger]
        return bool(((others == self._cube_geom) & (dist < CONTACT_TOLERANCE)).any()), bool(
            ((others == self._table_geom) & (dist <= 0.0)).any()
        )

    def _info(self) -> dict[str, Any]:
        hand, cube = self.hand_pos, self.object_pos
        speed = float(np.linalg.norm(self.data.qvel[self._hand_qvel]))
        distance = float(np.linalg.norm(cube[:2] - self.goal))
        contact, table = self._finger_contacts()
        events = {
            "object_off_table": bool((np.abs(cube[:2]) > TABLE_HALF).any() or cube[2] < OFF_TABLE_Z),
            "table_collision": table,
            "speed_violation": speed > self.speed_limit,
            "workspace_violation": self._clipped,
        }
        count = sum(events.values())
        return {
            "success": distance < SUCCESS_DISTANCE,
            "goal_distance": distance,
            "ee_pos": hand,
            "object_pos": cube,
            "goal": self.goal.copy(),
            "ee_speed": speed,
            "contact": contact,
            **events,
            "safety_violation": count > 0,
            "safety_events": count,
        }

    def _state(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        hand = qpos[self._hand_qpos]
        cube = qpos[self._cube_qpos : self._cube_qpos + 3]
        parts = [hand, qvel[self._hand_qvel], cube, cube - hand, qvel[self._cube_qvel : self._cube_qvel + 3]]
        if self.goal_in_obs:
            parts.append(self.goal)
        state = np.concatenate(parts).astype(np.float32)
        return np.clip(state, self._state_space.low, self._state_space.high, out=state)


def register(max_episode_steps: int = 50) -> list[str]:
    """Register `embodied/Tabletop-v0` (50-step cap)."""
    gym.register(
        id=ENV_ID, entry_point="embodied.envs.manipulation.tabletop:TabletopEnv", max_episode_steps=max_episode_steps
    )
    return [ENV_ID]
