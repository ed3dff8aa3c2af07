"""Crafter-backed Minecraft tasks: registration, spaces, fidelity to raw Crafter, info["mc"], deaths."""

from __future__ import annotations

import crafter
import numpy as np
import pytest
from crafter import engine as crafter_engine
from crafter import objects
from crafter import worldgen as crafter_worldgen
from gymnasium.utils.env_checker import check_env

import embodied.envs as envs
from embodied.envs.minecraft import worldgen
from embodied.envs.minecraft.crafter_env import CrafterEnv
from embodied.envs.minecraft.engine import ACHIEVEMENTS, ACTIONS, DEATH_CAUSES, SYMBOLS, make_deterministic
from embodied.envs.minecraft.tasks import DIAMOND_DISTANCE, TASKS
from embodied.envs.minecraft.view import INVENTORY_ITEMS, MC_KEYS
from embodied.errors import ConfigError

TASK_NAMES = list(TASKS)


def _state(env) -> tuple:
    """Everything that defines a Crafter game state, comparable across implementations."""
    world, player = env._world, env._player
    objs = tuple((type(o).__name__, tuple(int(v) for v in o.pos), o.health) for o in world.objects)
    return (
        world._mat_map.tobytes(),
        objs,
        tuple(player.inventory.items()),
        tuple(player.facing),
        player.sleeping,
        world.random.random_sample(),
    )


def _peek_state(env) -> tuple:
    """_state without consuming the RNG draw it compares."""
    rng_state = env._world.random.get_state()
    try:
        return _state(env)
    finally:
        env._world.random.set_state(rng_state)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_registered_and_check_env(task):
    env_id = f"embodied/Crafter-{task}-v0"
    assert env_id in envs.REGISTERED
    env = envs.make(env_id, obs_mode="rgb+symbolic")
    assert env.spec.max_episode_steps == TASKS[task].max_episode_steps
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("seed", [0, 1, 7, 123, 2024])
def test_world_generation_matches_crafter(seed):
    def generate(fn):
        world = crafter_engine.World((64, 64), crafter.constants.materials, (12, 12))
        world.reset(seed=seed)
        player = objects.Player(world, (32, 32))
        world.add(player)
        fn(world, player)
        return (
            world._mat_map.copy(),
            [(type(o).__name__, tuple(o.pos)) for o in world.objects],
            world.random.random_sample(),
        )

    ours, theirs = generate(worldgen.generate_world), generate(crafter_worldgen.generate_world)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2], "the world RNG must be advanced exactly as Crafter advances it"


@pytest.fixture
def ordered_crafter(monkeypatch):
    """Raw Crafter with its one source of nondeterminism removed (engine.make_deterministic):
    which creature a chunk despawns depends on set order, i.e. on memory addresses."""
    original = crafter_engine.World.reset

    def reset(self, seed=None):
        original(self, seed)
        make_deterministic(self)

    monkeypatch.setattr(crafter_engine.World, "reset", reset)


@pytest.mark.parametrize("obs_mode", ["rgb", "symbolic"])
def test_same_seed_same_trajectory_as_raw_crafter(obs_mode, ordered_crafter):
    """Ours vs crafter.Env: same world, same frames, same state every step, through night."""
    longest = 0
    for seed in (3, 11, 42):
        raw = crafter.Env(seed=seed)
        raw_obs = raw.reset()
        ours = CrafterEnv(task="Survival", obs_mode=obs_mode, reward="crafter")
        obs, _ = ours.reset(seed=seed)
        eng = ours.engine
        if obs_mode == "rgb":
            np.testing.assert_array_equal(obs["rgb"], raw_obs)
        assert _peek_state(eng) == _peek_state(raw)
        rng = np.random.default_rng(seed)
        for t in range(400):
            # mostly idle so the player lives into the night, when rendering draws random numbers
            action = int(rng.integers(len(ACTIONS))) if rng.random() < 0.3 else 0
            if t % 5 == 4:  # heal both players alike, so the comparison lives through the night
                raw._player.inventory["health"] = eng.player.inventory["health"] = 9
            raw_obs, raw_reward, raw_done, _ = raw.step(action)
            obs, reward, terminated, truncated, info = ours.step(action)
            assert _peek_state(eng) == _peek_state(raw), f"seed {seed}: states differ at step {t + 1}"
            assert reward == raw_reward
            if obs_mode == "rgb":
                np.testing.assert_array_equal(obs["rgb"], raw_obs)
            assert terminated == raw_done
            if raw_done:
                break
        longest = max(longest, t + 1)
    assert longest > 200, "the comparison never reached the night (steps ~150-270)"


def test_two_envs_with_one_seed_stay_identical():
    """Raw Crafter fails this (set order); ours must not."""
    a, b = CrafterEnv(obs_mode="symbolic"), CrafterEnv(obs_mode="symbolic")
    a.reset(seed=3)
    b.reset(seed=3)
    for _ in range(300):
        ra, _ = a.step(0), b.step(0)
        assert _peek_state(a.engine) == _peek_state(b.engine)
        if ra[2]:
            break


def test_same_seed_same_episode_and_video_render_does_not_change_the_game():
    a = CrafterEnv(task="EatCow", obs_mode="symbolic")
    b = CrafterEnv(task="EatCow", obs_mode="symbolic", render_mode="rgb_array")
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(300):
        action = int(rng.integers(len(ACTIONS)))
        b.render()  # a 256x256 video frame between steps
        ra, rb = a.step(action), b.step(action)
        for key in oa:
            np.testing.assert_array_equal(ra[0][key], rb[0][key])
        assert ra[1:4] == rb[1:4]
        if ra[2] or ra[3]:
            break
    frame = b.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8 and frame.std() > 0
    c = CrafterEnv(task="EatCow", obs_mode="symbolic")
    c.reset(seed=6)
    assert _peek_state(c.engine) != _peek_state(a.engine)


def test_symbolic_grid_matches_the_world():
    env = CrafterEnv(task="Survival", obs_mode="symbolic")
    obs, _ = env.reset(seed=0)
    grid = obs["grid"].reshape(env.grid_shape)
    assert env.grid_shape == (7, 9)
    h, w = env.grid_shape
    assert SYMBOLS[grid[h // 2, w // 2]].startswith("player_")
    px, py = env.engine.player.pos
    world = env.engine.world
    for row in range(h):
        for col in range(w):
            x, y = px - w // 2 + col, py - h // 2 + row
            material, obj = world[(x, y)]
            expected = SYMBOLS.index(material) if obj is None else None
            if expected is not None:
                assert grid[row, col] == expected
    np.testing.assert_array_equal(obs["inventory"][:4], [9, 9, 9, 9])


def test_mc_view_keys_types_and_ranges():
    env = CrafterEnv(task="CollectWood", obs_mode="symbolic")
    _, info = env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(50):
        _, _, terminated, truncated, info = env.step(int(rng.integers(len(ACTIONS))))
        if terminated or truncated:
            break
    mc = info["mc"]
    assert tuple(mc) == MC_KEYS
    assert set(mc["inventory"]) == set(INVENTORY_ITEMS) and all(
        isinstance(v, int) and 0 <= v <= 9 for v in mc["inventory"].values()
    )
    assert set(mc["life_stats"]) == {"health", "food", "drink", "energy"}
    assert all(isinstance(v, int) and 0 <= v <= 9 for v in mc["life_stats"].values())
    pos, facing = mc["location_stats"]["pos"], mc["location_stats"]["facing"]
    assert pos == tuple(int(v) for v in env.engine.player.pos) and facing in ((-1, 0), (1, 0), (0, -1), (0, 1))
    assert "grass" in mc["near_blocks"] and all(
        isinstance(d, float) and 0 <= d <= 6 for d in mc["near_blocks"].values()
    )
    assert all(isinstance(d, float) and d > 0 for d in mc["near_entities"].values())
    assert set(mc["target"]) == {"block", "entity"}
    assert set(mc["achievements"]) == set(ACHIEVEMENTS) and len(ACHIEVEMENTS) == 22
    assert mc["step"] == env.engine.steps and isinstance(mc["done"], bool) and mc["death_cause"] is None


def _open_world(env):
    """Clear the area around the player to grass and remove every creature."""
    world, player = env.engine.world, env.engine.player
    for obj in world.objects:
        if obj is not player:
            world.remove(obj)
    px, py = player.pos
    for x in range(max(px - 3, 0), min(px + 4, world.area[0])):
        for y in range(max(py - 3, 0), min(py + 4, world.area[1])):
            world[(x, y)] = "grass"
    return world, player


def test_walking_into_lava_is_death_by_lava():
    env = CrafterEnv(task="DiamondLava", obs_mode="symbolic")
    env.reset(seed=0)
    world, player = _open_world(env)
    world[(player.pos[0] + 1, player.pos[1])] = "lava"
    assert env.engine.world[(player.pos[0] + 1, player.pos[1])][0] == "lava"
    _, reward, terminated, _, info = env.step(ACTIONS.index("move_right"))
    assert terminated and reward == 0.0
    assert info["death_cause"] == "lava" and info["mc"]["death_cause"] == "lava" and info["mc"]["done"]
    assert not info["success"]


def test_zombie_and_starvation_deaths_are_named():
    env = CrafterEnv(task="Survival", obs_mode="symbolic")
    env.reset(seed=0)
    world, player = _open_world(env)
    player.health = 1
    world.add(objects.Zombie(world, (player.pos[0] + 1, player.pos[1]), player))
    for _ in range(20):  # the zombie attacks once it is next to the player (it may wander first)
        _, _, terminated, _, info = env.step(0)
        if terminated:
            break
    assert terminated and info["death_cause"] == "zombie"

    env.reset(seed=0)
    world, player = _open_world(env)
    player.health, player.inventory["food"] = 1, 0
    for _ in range(40):
        _, _, terminated, _, info = env.step(0)
        if terminated:
            break
    assert terminated and info["death_cause"] == "starvation"
    assert set(DEATH_CAUSES) >= {"lava", "zombie", "skeleton", "starvation", "thirst", "exhaustion"}


def test_sparse_success_rewards_and_terminates_once():
    env = CrafterEnv(task="CollectWood", obs_mode="symbolic")
    env.reset(seed=0)
    world, player = _open_world(env)
    player.facing = (1, 0)
    world[(player.pos[0] + 1, player.pos[1])] = "tree"
    _, reward, terminated, _, info = env.step(ACTIONS.index("do"))
    assert reward == 1.0 and terminated and info["success"] and info["mc"]["inventory"]["wood"] == 1


def test_crafter_reward_mode_and_survival_success_at_the_cap():
    env = envs.make("embodied/Crafter-Survival-v0", obs_mode="symbolic", reward="crafter", max_episode_steps=30)
    env.reset(seed=0)
    _open_world(env.unwrapped)
    for t in range(30):
        _, reward, terminated, truncated, info = env.step(0)
        assert info["success"] == (t == 29)
    assert truncated and not terminated


def test_diamond_lava_spawns_near_a_diamond_with_the_pickaxes():
    env = CrafterEnv(task="DiamondLava", obs_mode="symbolic")
    for seed in range(3):
        _, info = env.reset(seed=seed)
        world, player = env.engine.world, env.engine.player
        diamonds = np.argwhere(world._mat_map == world._mat_ids["diamond"])
        nearest = np.abs(diamonds - player.pos).sum(1).min()
        assert DIAMOND_DISTANCE[0] <= nearest <= DIAMOND_DISTANCE[1]
        assert world[player.pos][0] == "path"
        assert info["mc"]["inventory"]["iron_pickaxe"] == 1 and info["mc"]["inventory"]["wood_pickaxe"] == 1


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(task="Survivall"), "Survival"),
        (dict(task="Mine"), "CollectWood, EatCow, DiamondLava, Survival"),
        (dict(obs_mode="pixels"), "rgb, symbolic, rgb\\+symbolic"),
        (dict(reward="dense"), "sparse, crafter"),
        (dict(image_size=[64]), "image_size"),
    ],
)
def test_bad_options_name_the_valid_ones(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        CrafterEnv(**kwargs)


def test_unknown_env_id_suggests_a_task():
    with pytest.raises(ConfigError, match="Crafter-EatCow-v0"):
        envs.make("embodied/Crafter-EatCows-v0")


def test_eat_cow_succeeds_when_the_cow_dies():
    env = CrafterEnv(task="EatCow", obs_mode="symbolic")
    env.reset(seed=0)
    world, player = _open_world(env)
    player.facing = (1, 0)
    cow = objects.Cow(world, (player.pos[0] + 1, player.pos[1]))
    cow.health = 1
    cow.move = lambda direction: False  # keep it in front of the player for this check
    world.add(cow)
    _, reward, terminated, _, info = env.step(ACTIONS.index("do"))
    assert reward == 1.0 and terminated and info["success"] and info["achievements"]["eat_cow"]
