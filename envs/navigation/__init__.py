"""Navigation envs: point mazes (point_maze.py) and the homeostatic foraging arena (foraging.py)."""
