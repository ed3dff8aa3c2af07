"""Pick-and-place that needs memory: `embodied/MemoryPickPlace-v0`.

A Cartesian ("gantry") gripper over a table picks up a 4 cm cube near the centre and
must put it down on one of two identical-looking pads, left (y = +0.18) or right
(y = -0.18). Which pad is the target is shown only by a cue lamp at the back of the
table: red for the left pad, blue for the right pad, during the first `cue_steps`
observations of the episode (the one from `reset` and those after steps 1 .. cue_steps-1);
afterwards it is grey. The pads sit at fixed positions and look the same, the cube and
the gripper do not depend on the target, so after the cue nothing observable tells the
target: a policy that sees only the current observation is at chance (50%); one that
remembers the cue (e.g. a 16-step observation history, since the scripted expert
commits to a direction at step 8) can succeed every time.

Scene (MJCF built in this module, primitive geoms only): the hand is one body moved by
three slide joints (x, y, z), each driven by a stiff position actuator, with two finger
bodies on slide joints driven by position actuators; all moving gripper bodies have
`gravcomp="1"`. The cube is a 50 g free body. The pads and the lamp are visual only.

Actions: Box(-1, 1, (4,)). `a[:3]` moves the hand's position *target* by at most
MAX_STEP = 0.03 m per step along x, y, z; the target accumulates (it is not reset to
the hand's actual position, so contact cannot make it drift) and is clipped to the
workspace WORKSPACE_LOW .. WORKSPACE_HIGH. `a[3]` is the grip: -1 fully open (10 cm
between the fingers) .. +1 closed (fingers 8 mm apart: squeezing a held cube); it sets
the fingers' position target directly, so 0 means half closed. One env step is
SUBSTEPS = 10 physics steps of 5 ms: 20 Hz control.

Observation (`obs_mode="state"`, float32, 12-d, finite bounds, clipped to them):
    [0:3]   hand position (the point between the fingertips), m
    [3]     finger opening: distance between the fingers' inner faces, m
    [4:7]   cube centre position, m
    [7:10]  cube minus hand position, m
    [10:12] cue: (1, 0) red = left pad, (0, 1) blue = right pad while the lamp is lit; (0, 0) afterwards
`"pixels"` gives a dict of camera images (HxWx3 uint8 at `image_size`, one entry per
name in `cameras`: `front`, a fixed view from the front that sees the lamp, both pads,
the cube and the gripper, or `top`, an orthographic top-down view); `"state+pixels"`
adds `state`. `render()` (render_mode="rgb_array") renders `render_camera` at `render_size`.

Success (`info["success"]`, reward = 1.0 on success steps else 0.0): the cube rests on
the *correct* pad: its centre within PAD_RADIUS (5 cm) of the pad centre in xy, at table
height (centre below 2.6 cm), slower than 5 cm/s, and not grasped (not touched by both
fingers). There is no termination (like Meta-World); the TimeLimit cap is 80 steps.
`info` also has `target` (0 left, 1 right), `cue_visible`, `grasped` and `object_pos`.
The target is drawn from the env's seeded RNG at reset, before the cube position, so
`reset(seed=s, options={"target": 0 | 1})` gives the same cube position for both targets.

Scripted expert (`expert_action()`, used by embodied-collect): a stateless rule on the
simulator state (closed loop, so noise and slips are corrected) with the privileged
target: approach above the cube while descending, descend, close, lift, carry the cube
over the target pad, lower, open, retreat; `expert_phase()` names the phase. Its actions
before the carry do not depend on the target. Measured over seeds 0..199 (80-step
episodes, success at the end): 100% clean, 100% with Gaussian action noise 0.1 (as
embodied-collect's `action_noise`), 100% with 0.2. The first success comes after 18.1
steps on average (max 20; with noise 0.1: 18.2, max 22; 0.2: 19.8, max 32), so the
80-step cap leaves a wide margin. The carry decision (the first "carry" action, the
first that depends on the target) is taken at the observation of step 8 in every clean
episode (noise 0.1: mean 8.0, max 10; 0.2: mean 8.9, max 16), 6 steps after the last
lit observation (step 2 with the default cue_steps=3): a 16-observation history still
holds the cue then; the current observation alone does not.

Speed (2-core CPU shared with other work, MuJoCo 3.3.0, MUJOCO_GL=osmesa; measured with
`python benchmarks/scene_speed.py --env memory_pick_place`: 2000 random-action steps after 200 warm-up steps, a reset
every 80, then 200 images per size): 8300-9200 env steps/s in state mode (~7500/s with
the expert's actions, grasp contacts included; the expert costs ~30 us a call); one
`front` camera image (scene update + render + read-back) ~0.9-1.0 ms at 64x64 and
~1.4-2 ms at 256x256; state+pixels with one 64x64 camera runs ~900 steps/s.
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

ENV_ID = "embodied/MemoryPickPlace-v0"
CAMERAS = ("front", "top")
RESET_OPTIONS = ("target",)
TARGETS = ("left", "right")

TIMESTEP, SUBSTEPS = 0.005, 10  # one env step = 50 ms: 20 Hz control
MAX_STEP = 0.03  # metres of hand-target motion per step at |a| = 1
WORKSPACE_LOW = np.array([-0.15, -0.25, 0.02])
WORKSPACE_HIGH = np.array([0.15, 0.25, 0.18])
HAND_START = np.array([0.0, 0.0, 0.15])
CUBE_HALF = 0.02  # the cube is 4 cm wide
CUBE_SPAWN = 0.05  # cube xy uniform in [-0.05, 0.05]^2
PADS = np.array([[0.0, 0.18], [0.0, -0.18]])  # target 0 = left (+y), 1 = right (-y)
PAD_RADIUS = 0.05
FINGER_OPEN = 0.05  # half-gap between the fingers' inner faces when open
FINGER_TRAVEL = 0.046  # inward travel of each finger at grip = +1 (half-gap 4 mm)
FINGER_HALF = (0.015, 0.005, 0.025)  # finger box half-sizes (x, y, z)
REST_HEIGHT = CUBE_HALF + 0.006  # cube centre below this: on the table
REST_SPEED = 0.05
LAMP_RGBA = {"red": (0.95, 0.1, 0.1, 1.0), "blue": (0.1, 0.25, 0.95, 1.0), "off": (0.55, 0.55, 0.55, 1.0)}
PAD_RGBA = "0.35 0.55 0.4 1"
CUBE_RGBA = "0.95 0.7 0.1 1"

# Expert set-points (hand heights, m) and tolerances.
PRE_Z = 0.07  # above the cube before the final descent
GRASP_Z = 0.022  # hand height for grasping (cube centre 0.02)
CARRY_Z = 0.10  # hand height while carrying
RETREAT_Z = 0.12
CARRY_FROM = 0.05  # start moving sideways once the cube centre is this high


def _scene_xml(offheight: int, offwidth: int) -> str:
    """MJCF of the table, the gantry gripper, the cube, the two pads and the cue lamp."""
    (lx, ly, lz), (hx, hy, hz) = WORKSPACE_LOW, WORKSPACE_HIGH
    fx, fy, fz = FINGER_HALF
    finger_y = FINGER_OPEN + fy
    pads = "".join(
        f'<geom name="pad_{name}" type="cylinder" pos="{x} {y} 0.001" size="{PAD_RADIUS} 0.001" rgba="{PAD_RGBA}" contype="0" conaffinity="0"/>'
        for name, (x, y) in zip(TARGETS, PADS)
    )
    finger_geom = f'type="box" size="{fx} {fy} {fz}" pos="0 0 0.005" rgba="0.25 0.25 0.3 1" mass="0.05" friction="1.5 0.02 0.002" condim="4"'
    return f"""
<mujoco model="memory_pick_place">
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <default><geom solref="0.01 1" solimp="0.95 0.99 0.001"/></default>
{visual_xml(offheight, offwidth)}
  <worldbody>
    {OVERHEAD_LIGHT}
    <camera name="front" pos="-0.5 0 0.42" xyaxes="0 -1 0 0.537 0 0.844" fovy="45"/>
    <camera name="top" pos="0.02 0 1.0" xyaxes="0 -1 0 1 0 0" orthographic="true" fovy="0.62"/>
    <geom name="table" type="plane" size="0.32 0.32 0.05" rgba="0.75 0.68 0.58 1"/>
    {pads}
    <geom name="lamp_post" type="cylinder" pos="0.27 0 0.1" size="0.008 0.1" rgba="0.3 0.3 0.3 1" contype="0" conaffinity="0"/>
    <geom name="lamp" type="sphere" pos="0.27 0 0.22" size="0.03" rgba="{" ".join(map(str, LAMP_RGBA["off"]))}" contype="0" conaffinity="0"/>
    <body name="hand" gravcomp="1">
      <joint name="hand_x" type="slide" axis="1 0 0" range="{lx} {hx}"/>
      <joint name="hand_y" type="slide" axis="0 1 0" range="{ly} {hy}"/>
      <joint name="hand_z" type="slide" axis="0 0 1" range="{lz} {hz}"/>
      <geom name="palm" type="box" size="0.02 {FINGER_OPEN + 2 * fy + 0.005} 0.01" pos="0 0 {0.005 + fz + 0.01}" rgba="0.3 0.3 0.35 1" mass="0.3"/>
      <body name="finger_left" pos="0 {finger_y} 0" gravcomp="1">
        <joint name="finger_left" type="slide" axis="0 -1 0" range="0 {FINGER_TRAVEL}"/>
        <geom name="finger_left" {finger_geom}/>
      </body>
      <body name="finger_right" pos="0 {-finger_y} 0" gravcomp="1">
        <joint name="finger_right" type="slide" axis="0 1 0" range="0 {FINGER_TRAVEL}"/>
        <geom name="finger_right" {finger_geom}/>
      </body>
    </body>
    <body name="cube" pos="0 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.05" friction="1.5 0.02 0.002" rgba="{CUBE_RGBA}"/>
    </body>
  </worldbody>
  <actuator>
    <position name="hand_x" joint="hand_x" kp="2000" dampratio="1" ctrlrange="{lx} {hx}"/>
    <position name="hand_y" joint="hand_y" kp="2000" dampratio="1" ctrlrange="{ly} {hy}"/>
    <position name="hand_z" joint="hand_z" kp="2000" dampratio="1" ctrlrange="{lz} {hz}"/>
    <position name="finger_left" joint="finger_left" kp="300" dampratio="1" ctrlrange="0 {FINGER_TRAVEL}"/>
    <position name="finger_right" joint="finger_right" kp="300" dampratio="1" ctrlrange="0 {FINGER_TRAVEL}"/>
  </actuator>
</mujoco>"""


class MemoryPickPlaceEnv(SceneEnv):
    """Put the cube on the pad the cue lamp showed at the start; see the module docstring."""

    NAME, CAMERAS = "MemoryPickPlace", CAMERAS

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / (TIMESTEP * SUBSTEPS))}

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
        cue_steps: int = 3,
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
            cue_steps: observations (from the reset one on) during which the lamp shows the target.
        """
        if int(cue_steps) != cue_steps or int(cue_steps) < 1:
            raise ConfigError(
                f"cue_steps must be an integer >= 1 (the lamp must be lit at least on the reset observation), got {cue_steps!r}"
            )
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
        self.cue_steps = int(cue_steps)

        model = self.model
        self._hand_qpos = np.array([model.jnt_qposadr[model.joint(f"hand_{a}").id] for a in "xyz"])
        self._finger_qpos = np.array([model.jnt_qposadr[model.joint(f"finger_{s}").id] for s in ("left", "right")])
        self._cube_qpos = model.jnt_qposadr[model.joint("cube").id]
        self._cube_qvel = model.jnt_dofadr[model.joint("cube").id]
        self._finger_geoms = (model.geom("finger_left").id, model.geom("finger_right").id)
        self._cube_geom = model.geom("cube").id
        self._lamp_geom = model.geom("lamp").id
        self.target = 0
        self._hand_target = HAND_START.copy()
        self._steps = 0

        high = np.array(
            [*WORKSPACE_HIGH + 0.01, 2 * FINGER_OPEN + 0.01, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=np.float32
        )
        low = np.array([*WORKSPACE_LOW - 0.01, 0.0, -0.5, -0.5, -0.05, -1.0, -1.0, -1.0, 0.0, 0.0], dtype=np.float32)
        state_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.observation_space = camera_observation_space(state_space, obs_mode, self.cameras, self.image_size)
        self._state_space = state_space

    # --- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """New target and cube position; `options={"target": 0 | 1}` forces the target
        (the RNG draws it anyway, so the cube position does not depend on the option)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown reset option '{unknown[0]}' for MemoryPickPlace; choose from: {', '.join(RESET_OPTIONS)}"
            )
        target = int(self.np_random.integers(2))
        cube_xy = self.np_random.uniform(-CUBE_SPAWN, CUBE_SPAWN, size=2)
        if "target" in options:
            forced = options["target"]
            if (
                isinstance(forced, (bool, np.bool_))
                or not isinstance(forced, (int, np.integer))
                or forced not in (0, 1)
            ):
                raise ConfigError(f"reset option 'target' must be 0 (left pad) or 1 (right pad), got {forced!r}")
            target = int(forced)
        self.target = target
        mujoco.mj_resetData(self.model, self.data)
        self._hand_target = HAND_START.copy()
        self.data.qpos[self._hand_qpos] = HAND_START
        self.data.qpos[self._cube_qpos : self._cube_qpos + 7] = [*cube_xy, CUBE_HALF, 1.0, 0.0, 0.0, 0.0]
        self.data.ctrl[:] = [*HAND_START, 0.0, 0.0]
        self._steps = 0
        self._update_lamp()
        mujoco.mj_forward(self.model, self.data)
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(4), -1.0, 1.0)
        self._hand_target = np.clip(self._hand_target + MAX_STEP * action[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        finger = FINGER_TRAVEL * 0.5 * (action[3] + 1.0)
        self.data.ctrl[:] = [*self._hand_target, finger, finger]
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self._steps += 1
        self._update_lamp()
        info = self._info()
        return self._observation(), float(info["success"]), False, False, info

    # --- extras --------------------------------------------------------------------
    @property
    def cue_visible(self) -> bool:
        """Whether the lamp shows the target in the current observation."""
        return self._steps < self.cue_steps

    @property
    def hand_pos(self) -> np.ndarray:
        return self.data.qpos[self._hand_qpos].copy()

    @property
    def object_pos(self) -> np.ndarray:
        return self.data.qpos[self._cube_qpos : self._cube_qpos + 3].copy()

    @property
    def finger_opening(self) -> float:
        """Distance between the fingers' inner faces (m)."""
        return float(2 * FINGER_OPEN - self.data.qpos[self._finger_qpos].sum())

    def grasped(self) -> bool:
        """Both fingers touch the cube."""
        geoms = self.data.contact.geom[: self.data.ncon]
        touching = [
            ((geoms[:, 0] == f) & (geoms[:, 1] == self._cube_geom))
            | ((geoms[:, 1] == f) & (geoms[:, 0] == self._cube_geom))
            for f in self._finger_geoms
        ]
        return bool(touching[0].any() and touching[1].any())

    def place_object(self, xy: Sequence[float]) -> None:
        """Put the cube at rest on the table at `xy` (for constructed tests)."""
        self.data.qpos[self._cube_qpos : self._cube_qpos + 7] = [
            float(xy[0]),
            float(xy[1]),
            CUBE_HALF,
            1.0,
            0.0,
            0.0,
            0.0,
        ]
        self.data.qvel[self._cube_qvel : self._cube_qvel + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def expert_action(self, pad: int | None = None) -> np.ndarray:
        """The scripted expert's action for the current state (privileged: knows the target).

        `pad` overrides the pad it carries the cube to (tests use the wrong one)."""
        return self._expert_plan(self.target if pad is None else pad)[0]

    def expert_phase(self, pad: int | None = None) -> str:
        """The expert's phase now: approach, regrasp, descend, close, lift, carry, lower, release or retreat."""
        return self._expert_plan(self.target if pad is None else pad)[1]

    # --- pieces --------------------------------------------------------------------
    def _update_lamp(self) -> None:
        colour = ("red", "blue")[self.target] if self.cue_visible else "off"
        self.model.geom_rgba[self._lamp_geom] = LAMP_RGBA[colour]

    def _success(self) -> bool:
        cube = self.object_pos
        speed = np.linalg.norm(self.data.qvel[self._cube_qvel : self._cube_qvel + 3])
        on_pad = np.linalg.norm(cube[:2] - PADS[self.target]) <= PAD_RADIUS
        return bool(on_pad and cube[2] < REST_HEIGHT and speed < REST_SPEED and not self.grasped())

    def _info(self) -> dict[str, Any]:
        return {
            "success": self._success(),
            "target": self.target,
            "cue_visible": self.cue_visible,
            "grasped": self.grasped(),
            "object_pos": self.object_pos,
        }

    def _state(self) -> np.ndarray:
        hand, cube = self.hand_pos, self.object_pos
        cue = np.zeros(2)
        if self.cue_visible:
            cue[self.target] = 1.0
        state = np.concatenate([hand, [self.finger_opening], cube, cube - hand, cue]).astype(np.float32)
        return np.clip(state, self._state_space.low, self._state_space.high, out=state)

    def _expert_plan(self, pad: int) -> tuple[np.ndarray, str]:
        """(action, phase): a stateless rule on the current state, so noise and slips are corrected."""
        hand, cube, aim = self.hand_pos, self.object_pos, self._hand_target
        to_pad = PADS[pad] - cube[:2]
        grip = -1.0
        if self.grasped():
            grip = 1.0
            near_pad = np.linalg.norm(to_pad) < (
                0.012 if cube[2] > CARRY_Z - 0.03 else 0.035
            )  # hysteresis while lowering
            if near_pad and cube[2] < REST_HEIGHT - 0.001:
                phase, goal, grip = "release", np.array([*cube[:2], aim[2]]), -1.0
            elif near_pad:
                phase, goal = "lower", np.array([*(aim[:2] + to_pad), WORKSPACE_LOW[2]])
            elif cube[2] < CARRY_FROM:
                phase, goal = "lift", np.array([*aim[:2], CARRY_Z])
            else:
                phase, goal = "carry", np.array([*(aim[:2] + to_pad), CARRY_Z])
        else:
            error = cube[:2] - hand[:2]
            low = hand[2] < GRASP_Z + 0.008
            resting = cube[2] < REST_HEIGHT and np.linalg.norm(to_pad) < PAD_RADIUS - 0.01
            if resting and self.finger_opening > 2 * CUBE_HALF + 0.01:  # placed and let go
                phase, goal = "retreat", np.array([*cube[:2], RETREAT_Z])
            elif low and abs(error[0]) < 0.012 and abs(error[1]) < 0.025:
                if self.finger_opening < 2 * CUBE_HALF - 0.006:  # closed on nothing: open and rise a little
                    phase, goal = "regrasp", np.array([*cube[:2], GRASP_Z + 0.03])
                else:
                    phase, goal, grip = "close", np.array([*cube[:2], GRASP_Z]), 1.0
            elif np.linalg.norm(error) < 0.01:
                phase, goal = "descend", np.array([*cube[:2], GRASP_Z])
            elif hand[2] < PRE_Z - 0.01 and np.linalg.norm(error) > 0.02:
                phase, goal = "approach", np.array([*hand[:2], PRE_Z])  # rise before moving sideways
            else:
                phase, goal = "approach", np.array([*cube[:2], PRE_Z])
        move = np.clip((goal - aim) / MAX_STEP, -1.0, 1.0)
        return np.array([*move, grip], dtype=np.float32), phase


def register(max_episode_steps: int = 80) -> list[str]:
    """Register `embodied/MemoryPickPlace-v0` (80-step cap)."""
    gym.register(
        id=ENV_ID,
        entry_point="embodied.envs.manipulation.memory_pick_place:MemoryPickPlaceEnv",
        max_episode_steps=max_episode_steps,
    )
    return [ENV_ID]
