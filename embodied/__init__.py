"""embodied: an embodied-RL and robotics simulation suite.

Importing the package chooses MuJoCo's offscreen GL backend first (see
`embodied.rendering`), because MuJoCo reads `MUJOCO_GL` only once, at import.
"""

from embodied import rendering as _rendering  # noqa: F401  (sets MUJOCO_GL before mujoco loads)

__version__ = "0.1.0"
