"""Crafter's world generation, vectorised: the same world for the same seed, ~50x faster.

`crafter.worldgen.generate_world` evaluates OpenSimplex noise one cell at a time from
Python (about 50,000 calls per 64x64 world) and draws the random numbers that place
ores, trees and creatures cell by cell. Here every noise layer is one array call, the
terrain and creature rules run in a compiled loop over pre-drawn uniforms, and the
world's RandomState is then advanced by exactly the number of draws Crafter would have
made, so every later random event (creature moves, spawns, night noise) matches too.
`tests/test_envs_minecraft.py` checks material maps, creatures and whole trajectories
against `crafter.Env` for many seeds.
"""

from __future__ import annotations

import numba
import numpy as np
import opensimplex
from crafter import objects
from opensimplex.internals import _noise3

# Noise layers of Crafter's terrain: name -> (z, size, x transform, y transform).
# `x / size` is computed as Crafter does, after the transform (e.g. (2 * x) / 3).
_LAYERS = {
    "start": (8, 3, None, None),
    "water15": (3, 15, None, None),
    "water5": (3, 5, None, None),
    "mountain15": (0, 15, None, None),
    "mountain5": (0, 5, None, None),
    "cave": (6, 7, None, None),
    "tunnel_h": (7, 3, "double", "fifth"),
    "tunnel_v": (7, 3, "fifth", "double"),
    "coal": (1, 8, None, None),
    "iron": (2, 6, None, None),
    "lava": (6, 5, None, None),
    "sand": (4, 9, None, None),
    "tree": (5, 7, None, None),
}
_TRANSFORMS = {None: lambda v: v, "double": lambda v: 2 * v, "fifth": lambda v: v / 5}
# Crafter normalises weighted layers by the sum of their weights, summed in Python.
_MOUNTAIN_NORM = sum({15: 1, 5: 0.3}.values())

# Material codes used inside the compiled loop (mapped to the world's ids afterwards).
_GRASS, _PATH, _COAL, _IRON, _DIAMOND, _LAVA, _STONE, _SAND, _WATER, _TREE = range(10)
_CODE_NAMES = ("grass", "path", "coal", "iron", "diamond", "lava", "stone", "sand", "water", "tree")
_COW, _ZOMBIE, _SKELETON = 1, 2, 3


@numba.njit(cache=True)
def _noise_grid(xs, ys, z, perm, perm_grad_index3):  # pragma: no cover - compiled
    # opensimplex's own noise3array runs a parallel loop, whose threads fight the other
    # env workers and the learner for cores; one thread per world is faster in practice.
    out = np.empty((xs.size, ys.size))
    for i in range(xs.size):
        for j in range(ys.size):
            out[i, j] = _noise3(xs[i], ys[j], z, perm, perm_grad_index3)
    return out


def _noise_layers(seed: int, width: int, height: int) -> dict[str, np.ndarray]:
    """Every noise layer over the whole map, indexed [x, y]."""
    simplex = opensimplex.OpenSimplex(seed=seed)
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    return {
        name: _noise_grid(
            _TRANSFORMS[fx](xs) / size, _TRANSFORMS[fy](ys) / size, float(z), simplex._perm, simplex._perm_grad_index3
        )
        for name, (z, size, fx, fy) in _LAYERS.items()
    }


@numba.njit(cache=True)
def _terrain(
    start, water, mountain, cave, tunnel_h, tunnel_v, coal, iron, lava, sand, tree, uniforms
):  # pragma: no cover - compiled
    width, height = start.shape
    codes = np.empty((width, height), np.uint8)
    tunnels = np.zeros((width, height), np.bool_)
    k = 0
    for x in range(width):
        for y in range(height):
            m = mountain[x, y]
            w = water[x, y]
            if start[x, y] > 0.5:
                code = _GRASS
            elif m > 0.15:
                code = -1
                if cave[x, y] > 0.15 and m > 0.3:
                    code = _PATH
                elif tunnel_h[x, y] > 0.4 or tunnel_v[x, y] > 0.4:
                    code = _PATH
                    tunnels[x, y] = True
                else:
                    if coal[x, y] > 0:
                        k += 1
                        if uniforms[k - 1] > 0.85:
                            code = _COAL
                    if code < 0 and iron[x, y] > 0.4:
                        k += 1
                        if uniforms[k - 1] > 0.75:
                            code = _IRON
                    if code < 0 and m > 0.18:
                        k += 1
                        if uniforms[k - 1] > 0.994:
                            code = _DIAMOND
                    if code < 0 and m > 0.3 and lava[x, y] > 0.35:
                        code = _LAVA
                    if code < 0:
                        code = _STONE
            elif 0.25 < w <= 0.35 and sand[x, y] > -0.2:
                code = _SAND
            elif 0.3 < w:
                code = _WATER
            else:
                code = _GRASS
                if tree[x, y] > 0:
                    k += 1
                    if uniforms[k - 1] > 0.8:
                        code = _TREE
            codes[x, y] = code
    return codes, tunnels, k


@numba.njit(cache=True)
def _creatures(codes, tunnels, dist, uniforms, k):  # pragma: no cover - compiled
    width, height = codes.shape
    placed = np.zeros((width, height), np.uint8)
    for x in range(width):
        for y in range(height):
            code = codes[x, y]
            if code != _GRASS and code != _PATH and code != _SAND:
                continue
            d = dist[x, y]
            if d > 3 and code == _GRASS:
                k += 1
                if uniforms[k - 1] > 0.985:
                    placed[x, y] = _COW
                    continue
            if d > 10:
                k += 1
                if uniforms[k - 1] > 0.993:
                    placed[x, y] = _ZOMBIE
                    continue
            if code == _PATH and tunnels[x, y]:
                k += 1
                if uniforms[k - 1] > 0.95:
                    placed[x, y] = _SKELETON
    return placed, k


def generate_world(world, player) -> None:
    """Fill `world` (a fresh `crafter.engine.World` holding `player`) as Crafter would."""
    random = world.random
    seed = random.randint(0, 2**31 - 1)
    width, height = world.area
    noise = _noise_layers(seed, width, height)
    px, py = int(player.pos[0]), int(player.pos[1])
    xs = np.arange(width)[:, None]
    ys = np.arange(height)[None, :]
    dist = np.sqrt((xs - px) ** 2 + (ys - py) ** 2)
    start = 4 - dist + 2 * noise["start"]
    start = 1 / (1 + np.exp(-start))
    water = noise["water15"] + 0.15 * noise["water5"] + 0.1
    water -= 2 * start
    mountain = (noise["mountain15"] + 0.3 * noise["mountain5"]) / _MOUNTAIN_NORM
    mountain -= 4 * start + 0.3 * water

    # Pre-draw more uniforms than any world needs (at most 3 per cell per pass), then
    # rewind and advance the generator by the number actually used.
    state = random.get_state()
    uniforms = random.random_sample(6 * width * height)
    codes, tunnels, used = _terrain(
        start,
        water,
        mountain,
        noise["cave"],
        noise["tunnel_h"],
        noise["tunnel_v"],
        noise["coal"],
        noise["iron"],
        noise["lava"],
        noise["sand"],
        noise["tree"],
        uniforms,
    )
    placed, used = _creatures(codes, tunnels, dist, uniforms, used)
    random.set_state(state)
    random.random_sample(used)

    lookup = np.array([world._mat_ids[name] for name in _CODE_NAMES], np.uint8)
    world._mat_map[:, :] = lookup[codes]
    for x, y in zip(*np.nonzero(placed)):  # row-major order, as Crafter adds them
        kind = placed[x, y]
        pos = (int(x), int(y))
        if kind == _COW:
            world.add(objects.Cow(world, pos))
        elif kind == _ZOMBIE:
            world.add(objects.Zombie(world, pos, player))
        else:
            world.add(objects.Skeleton(world, pos, player))
