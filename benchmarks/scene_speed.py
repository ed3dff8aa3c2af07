"""Speed of our own MuJoCo scenes (Tabletop, MemoryPickPlace): env steps/s in state mode and ms per camera image.

    python benchmarks/scene_speed.py --env tabletop|memory_pick_place [--steps 2000] [--frames 200]

State mode: `--steps` random-action steps after 200 warm-up steps, with a reset every
episode's worth of steps; for Tabletop also a crude scripted pusher (behind the cube, then
toward the goal), so contacts are part of the figure. Then `--frames` `front` camera
images per size (scene update + render + read-back) at 64x64 and 256x256. Prints the
figures and, last, the command.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

import embodied  # noqa: F401  (chooses MUJOCO_GL before mujoco loads)
from embodied.envs.manipulation.memory_pick_place import MemoryPickPlaceEnv
from embodied.envs.manipulation.tabletop import CUBE_HALF, FINGER_RADIUS, MAX_STEP, TabletopEnv

ENVS = {"tabletop": (TabletopEnv, 3, 50), "memory_pick_place": (MemoryPickPlaceEnv, 4, 80)}  # class, action dims, reset


def pusher_action(env: TabletopEnv, rng: np.random.Generator) -> np.ndarray:
    """Go behind the cube (as seen from the goal), low, then push it toward the goal, with a little noise."""
    hand, cube = env.hand_pos, env.object_pos
    direction = env.goal - cube[:2]
    direction /= max(np.linalg.norm(direction), 1e-6)
    behind = cube[:2] - (CUBE_HALF + FINGER_RADIUS + 0.01) * direction
    if np.linalg.norm(hand[:2] - behind) > 0.02 and np.dot(hand[:2] - cube[:2], direction) > -CUBE_HALF:
        goal = np.array([*behind, 0.06])  # go around, above the cube
    elif np.linalg.norm(hand[:2] - behind) > 0.02:
        goal = np.array([*behind, 0.012])
    else:
        goal = np.array([*(cube[:2] + 0.05 * direction), 0.012])
    move = (goal - env.hand_target) / MAX_STEP + rng.normal(0.0, 0.1, size=3)
    return np.clip(move, -1.0, 1.0).astype(np.float32)


def steps_per_s(env, policy, steps: int, reset_every: int) -> tuple[float, float]:
    """(env steps/s, fraction of steps with info["contact"]) over `steps` steps of `policy(i)`."""
    elapsed, contacts = 0.0, 0
    for i in range(steps):
        action = policy(i)
        start = time.perf_counter()
        info = env.step(action)[4]
        if (i + 1) % reset_every == 0:
            env.reset()
        elapsed += time.perf_counter() - start
        contacts += bool(info.get("contact", False))
    return steps / elapsed, contacts / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(ENVS), required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args(argv)
    cls, dims, reset_every = ENVS[args.env]
    env = cls()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(args.steps, dims)).astype(np.float32)
    for action in actions[:200]:
        env.step(action)
    rate, _ = steps_per_s(env, lambda i: actions[i], args.steps, reset_every)
    print(f"state mode: {rate:.0f} steps/s ({args.steps} random-action steps, reset every {reset_every})")
    if args.env == "tabletop":
        env.reset(seed=1)
        rate, contact = steps_per_s(env, lambda i: pusher_action(env, rng), args.steps, reset_every)
        print(f"state mode, pusher: {rate:.0f} steps/s (finger on the cube in {100 * contact:.0f}% of the steps)")
    for size in ((64, 64), (256, 256)):
        env.camera_image("front", size)  # warm-up: creates the GL context
        start = time.perf_counter()
        for _ in range(args.frames):
            env.camera_image("front", size)
        ms = 1000 * (time.perf_counter() - start) / args.frames
        print(f"front camera {size[0]}x{size[1]}: {ms:.2f} ms per image ({args.frames} images)")
    env.close()
    print(
        f"\ncommand: python {shlex.join(['benchmarks/scene_speed.py', *(argv if argv is not None else sys.argv[1:])])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
