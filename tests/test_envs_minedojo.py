"""Tests of the MineDojo adapter (`embodied.envs.minecraft.minedojo`) without MineDojo.

MineDojo needs Java and a Gradle build, so it is not installed here: a test double,
`FakeMineDojoEnv`, produces observations to MineDojo's schema (its observation handlers
under minedojo/sim/handlers/agent/observations/) through the gym 0.21 API. The tests
cover each key of `info["mc"]`, that its keys and value types match the Crafter envs'
`info["mc"]`, the Gymnasium conversion, `check_env`, death causes and `register()`.
"""

from __future__ import annotations

import math
import sys
import types
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodied.envs
from embodied.envs.minecraft import minedojo
from embodied.envs.minecraft.engine import ACHIEVEMENTS
from embodied.envs.minecraft.minedojo import MineDojoEnv, death_cause, facing_from_yaw, minedojo_to_mc
from embodied.envs.minecraft.view import INVENTORY_ITEMS, MC_KEYS
from embodied.errors import ConfigError

N_SLOTS = 36
NVEC = (3, 3, 4, 25, 25, 8, 244, 36)  # MineDojo's NN action space at cam_interval=15
NO_OP = np.array([0, 0, 0, 12, 12, 0, 0, 0])
ATTACK, EQUIP = 3, 5
_NO_DAMAGE = {
    "damage_amount": np.zeros(1, np.float32),
    "damage_distance": np.zeros(1, np.float32),
    "damage_pitch": np.zeros(1, np.float32),
    "damage_yaw": np.zeros(1, np.float32),
    "hunger_damage": np.zeros(1, np.float32),
    "is_explosion": np.array(False),
    "is_fire_damage": np.array(False),
    "is_magic_damage": np.array(False),
    "is_projectile": np.array(False),
    "is_unblockable": np.array(False),
}


class _Space:
    """The two attributes the adapter reads from MineDojo's spaces: `shape` and `nvec`."""

    def __init__(self, shape=None, nvec=None):
        self.shape, self.nvec = shape, None if nvec is None else np.asarray(nvec)


class FakeMineDojoEnv:
    """Test double (a fake) for a MineDojo task env: gym 0.21 API, MineDojo-schema observations.

    A scripted world: grass underfoot, a log block ("wood" in voxels) in front along +z,
    so attacking while facing +z puts a log in slot 0. Forward moves one block along the
    facing; the camera-yaw bin turns by (bin - 12) * 15 degrees. Like MineDojo's strict
    check, equip/place/destroy on an empty slot raises. `die_at` kills the agent with the
    `damage` report, `success_at` ends with info["success"], `cap` ends like gym's
    TimeLimit (info["TimeLimit.truncated"]). `lidar` adds two rays: the crosshair ray on
    a cow in front of the log, and one to the side on a zombie. Names are MineDojo's:
    inventory names with spaces ("wooden pickaxe"), voxel and ray names the in-game
    display names ("grass block", "wood" for a log block), entities "cow" or "null".
    """

    def __init__(self, size=(24, 32), die_at=None, damage=None, success_at=None, cap=None, lidar=False):
        self.size, self.die_at, self.damage, self.success_at, self.cap, self.lidar = (
            size,
            die_at,
            damage,
            success_at,
            cap,
            lidar,
        )
        self.observation_space = {"rgb": _Space(shape=(3, *size))}
        self.action_space = _Space(nvec=NVEC)
        self.actions: list[np.ndarray] = []
        self.closed = False
        self.seed(None)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def reset(self):
        self.t, self.life, self.food, self.yaw = 0, 20.0, 20.0, 0.0
        self.pos = np.array([0.5, 64.0, 0.5])
        self.names, self.quantity = ["air"] * N_SLOTS, np.zeros(N_SLOTS, np.float32)
        self.names[3], self.quantity[3] = "wooden pickaxe", 1.0
        return self._obs()

    def step(self, action):
        action = np.asarray(action)
        self.actions.append(action.copy())
        if action[5] in (5, 6, 7) and self.names[action[7]] == "air":
            raise ValueError("Trying to equip air, raise error with strict check.")
        self.t += 1
        self.yaw = (self.yaw + (int(action[4]) - 12) * 15 + 180) % 360 - 180
        facing = facing_from_yaw(self.yaw)
        if action[0] == 1:
            self.pos += (facing[0], 0, facing[1])
        reward, info, done = 0.0, {}, False
        if action[5] == ATTACK and facing == (0, 1):
            self.names[0], self.quantity[0], reward = "log", self.quantity[0] + 1, 1.0
        if self.t == self.die_at:
            self.life, done = 0.0, True
        if self.t == self.success_at:
            info["success"], done = True, True
        if self.cap is not None and self.t >= self.cap and not done:
            info["TimeLimit.truncated"], done = True, True
        return self._obs(), reward, done, info

    def close(self):
        self.closed = True

    def _obs(self):
        voxels = np.full((3, 3, 3), "air", dtype=object)
        voxels[:, 0, :] = "grass block"
        voxels[1, 1, 2] = "wood"
        obs = {
            "rgb": self._rng.integers(0, 256, (3, *self.size), dtype=np.uint8),
            "inventory": {"name": np.array(self.names, dtype=object), "quantity": self.quantity.copy()},
            "life_stats": {
                "life": np.array([self.life], np.float32),
                "food": np.array([self.food], np.float32),
                "oxygen": np.array([300.0], np.float32),
            },
            "location_stats": {
                "pos": self.pos.astype(np.float32),
                "yaw": np.array([self.yaw], np.float32),
                "pitch": np.zeros(1, np.float32),
                "biome_id": np.array(1),
            },
            "voxels": {"block_name": voxels, "is_solid": voxels != "air"},
            "damage_source": dict(self.damage or _NO_DAMAGE) if self.life <= 0 else dict(_NO_DAMAGE),
        }
        if self.lidar:
            obs["rays"] = {
                "block_name": np.array(["wood", "stone"], dtype=object),
                "block_distance": np.array([2.0, 9.0], np.float32),
                "entity_name": np.array(["cow", "zombie"], dtype=object),
                "entity_distance": np.array([1.5, 6.0], np.float32),
                "ray_pitch": np.zeros(2, np.float32),
                "ray_yaw": np.array([0.0, 0.6], np.float32),
            }
        return obs


def _obs(**parts):
    """A MineDojo observation: a fresh fake's, with `parts` replacing top-level keys."""
    env = FakeMineDojoEnv()
    return {**env.reset(), **parts}


def _inventory(*slots):
    names, quantity = ["air"] * N_SLOTS, np.zeros(N_SLOTS, np.float32)
    for i, (name, count) in enumerate(slots):
        names[i], quantity[i] = name, count
    return {"name": np.array(names, dtype=object), "quantity": quantity}


def _mc(obs=None, info=None, prev=None, step=0, done=False):
    return minedojo_to_mc(obs if obs is not None else _obs(), info or {}, step, done, prev)


@pytest.fixture
def registered(monkeypatch):
    """The ids `register()` adds where MineDojo imports (a stand-in module), removed afterwards."""
    monkeypatch.setitem(sys.modules, "minedojo", types.ModuleType("minedojo"))
    ids = minedojo.register()
    yield ids
    for env_id in ids:
        gym.registry.pop(env_id, None)


# --- the mapping, key by key -----------------------------------------------------------
def test_inventory_sums_slots_and_maps_names():
    inv = _inventory(
        ("log", 3),
        ("log", 5),
        ("planks", 4),
        ("cobblestone", 2),
        ("iron ore", 1),
        ("iron ingot", 2),
        ("wooden pickaxe", 1),
        ("stone sword", 1),
        ("beef", 2),
        ("crafting table", 1),
    )
    got = _mc(_obs(inventory=inv))["inventory"]
    assert got["wood"] == 8 and got["stone"] == 2 and got["iron"] == 3
    assert got["wood_pickaxe"] == 1 and got["stone_sword"] == 1 and got["diamond"] == 0
    assert got["planks"] == 4 and got["beef"] == 2 and got["crafting_table"] == 1
    assert "air" not in got and "log" not in got
    assert set(INVENTORY_ITEMS) <= set(got) and all(type(v) is int for v in got.values())


@pytest.mark.parametrize(
    "life, food, health_9, food_9", [(20, 20, 9, 9), (10, 19, 5, 9), (1, 0, 1, 0), (0.5, 17, 1, 8), (0, 3, 0, 2)]
)
def test_life_stats_rescaled_to_crafter(life, food, health_9, food_9):
    stats = {"life": np.array([life], np.float32), "food": np.array([food], np.float32)}
    got = _mc(_obs(life_stats=stats))["life_stats"]
    assert got == {"health": health_9, "food": food_9, "drink": 9, "energy": 9}
    assert all(type(v) is int for v in got.values())


@pytest.mark.parametrize(
    "yaw, facing",
    [
        (0, (0, 1)),
        (90, (-1, 0)),
        (180, (0, -1)),
        (-180, (0, -1)),
        (-90, (1, 0)),
        (270, (1, 0)),
        (44, (0, 1)),
        (46, (-1, 0)),
        (359, (0, 1)),
        (-134, (1, 0)),
    ],
)
def test_yaw_to_facing(yaw, facing):
    location = {"pos": np.array([-0.5, 70.2, 3.7], np.float32), "yaw": np.array([yaw], np.float32)}
    got = _mc(_obs(location_stats=location))["location_stats"]
    assert got == {"pos": (-1, 3), "facing": facing}


def test_near_blocks_are_nearest_voxel_distances():
    voxels = np.full((3, 3, 3), "air", dtype=object)
    voxels[1, 0, 1] = "grass block"  # under the feet: 1
    voxels[0, 0, 0] = "dirt"  # also grass, but sqrt(3) away
    voxels[2, 1, 1], voxels[2, 2, 2] = "wood", "leaves"  # tree at 1 and sqrt(2)
    voxels[0, 1, 0], voxels[0, 2, 2] = "coal ore", "obsidian"
    got = _mc(_obs(voxels={"block_name": voxels}))["near_blocks"]
    assert got == pytest.approx({"grass": 1.0, "tree": 1.0, "coal": math.sqrt(2), "obsidian": math.sqrt(3)})
    assert all(type(v) is float for v in got.values())


def test_near_blocks_centre_of_a_larger_grid():
    voxels = np.full((5, 3, 5), "air", dtype=object)
    voxels[4, 1, 2], voxels[2, 1, 0], voxels[0, 0, 0] = "lava", "flowing water", "diamond ore"
    got = _mc(_obs(voxels={"block_name": voxels}))["near_blocks"]
    assert got == pytest.approx({"lava": 2.0, "water": 2.0, "diamond": 3.0})


def test_rays_give_entities_and_crosshair_target():
    got = _mc(FakeMineDojoEnv(lidar=True).reset())
    assert got["near_entities"] == {"cow": 1.5, "zombie": 6.0}
    assert got["target"] == {"block": "tree", "entity": "cow"}


def test_rays_out_of_reach_and_null_entities():
    rays = {
        "block_name": np.array(["stone", "air"], dtype=object),
        "block_distance": np.array([5.0, 10.0], np.float32),
        "entity_name": np.array(["null", "skeleton"], dtype=object),
        "entity_distance": np.array([5.0, 2.0], np.float32),
        "ray_pitch": np.array([0.0, 0.3], np.float32),
        "ray_yaw": np.zeros(2, np.float32),
    }
    got = _mc(_obs(rays=rays))
    assert got["near_entities"] == {"skeleton": 2.0}
    assert got["target"] == {"block": None, "entity": None}  # stone 5 blocks away is out of reach


def test_target_without_rays_is_the_block_in_front_or_the_ground():
    assert _mc()["target"] == {"block": "tree", "entity": None}  # the log in front (+z)
    location = {"pos": np.zeros(3, np.float32), "yaw": np.array([90.0], np.float32)}
    assert _mc(_obs(location_stats=location))["target"] == {"block": "grass", "entity": None}  # air ahead: ground


def test_achievements_derive_from_inventory_increases():
    start = _mc(_obs(inventory=_inventory(("log", 2))))
    assert set(start["achievements"]) == set(ACHIEVEMENTS) and not any(start["achievements"].values())
    later = _mc(_obs(inventory=_inventory(("log", 3), ("beef", 1), ("wooden pickaxe", 1))), prev=start)
    on = {name for name, unlocked in later["achievements"].items() if unlocked}
    assert on == {"collect_wood", "eat_cow", "make_wood_pickaxe"}
    dropped = _mc(_obs(inventory=_inventory()), prev=later)
    assert {name for name, unlocked in dropped["achievements"].items() if unlocked} == on


@pytest.mark.parametrize(
    "damage, food, cause",
    [
        ({"is_fire_damage": np.array(True)}, 20, "lava"),
        ({"is_projectile": np.array(True), "damage_distance": np.array([9.0])}, 20, "skeleton"),
        ({"is_unblockable": np.array(True)}, 0, "starvation"),
        ({"is_unblockable": np.array(True)}, 12, "unknown"),  # e.g. drowning
        ({"damage_distance": np.array([1.2], np.float32)}, 20, "zombie"),
        ({"is_explosion": np.array(True), "damage_distance": np.array([2.0])}, 20, "unknown"),
        ({}, 20, "unknown"),  # e.g. a fall: no source location
        ({"damage_type": "inFire"}, 20, "lava"),
        ({"damage_type": "starve"}, 0, "starvation"),
    ],
)
def test_death_cause_mapping(damage, food, cause):
    assert death_cause({**_NO_DAMAGE, **damage}, food) == cause
    stats = {"life": np.zeros(1, np.float32), "food": np.array([food], np.float32)}
    assert _mc(_obs(life_stats=stats, damage_source={**_NO_DAMAGE, **damage}))["death_cause"] == cause


def test_no_death_cause_while_alive_and_cause_kept_once_dead():
    assert _mc(_obs(damage_source={**_NO_DAMAGE, "is_fire_damage": np.array(True)}))["death_cause"] is None
    dead = {"life": np.zeros(1, np.float32), "food": np.array([20.0], np.float32)}
    prev = _mc(_obs(life_stats=dead, damage_source={**_NO_DAMAGE, "is_fire_damage": np.array(True)}))
    assert _mc(_obs(life_stats=dead), prev=prev)["death_cause"] == "lava"


# --- same keys and types as the Crafter envs' info["mc"] -------------------------------
@pytest.fixture(scope="module")
def crafter_mc() -> dict:
    env = embodied.envs.make("embodied/Crafter-CollectWood-v0", obs_mode="symbolic")
    env.reset(seed=0)
    mc = env.step(0)[4]["mc"]
    env.close()
    return mc


def test_mc_has_exactly_the_crafter_keys_and_types(crafter_mc):
    ours = MineDojoEnv(FakeMineDojoEnv(lidar=True)).reset(seed=0)[1]["mc"]
    assert tuple(ours) == MC_KEYS == tuple(crafter_mc)
    for key in MC_KEYS:
        assert type(ours[key]) is type(crafter_mc[key]), key
    assert set(ours["life_stats"]) == set(crafter_mc["life_stats"]) and all(
        type(v) is int for v in ours["life_stats"].values()
    )
    assert set(ours["location_stats"]) == set(crafter_mc["location_stats"])
    for value in (*ours["location_stats"].values(), *crafter_mc["location_stats"].values()):
        assert type(value) is tuple and len(value) == 2 and all(type(v) is int for v in value)
    assert set(ours["target"]) == set(crafter_mc["target"])
    assert all(v is None or type(v) is str for v in (*ours["target"].values(), *crafter_mc["target"].values()))
    assert set(crafter_mc["inventory"]) <= set(ours["inventory"]) and all(
        type(v) is int for v in ours["inventory"].values()
    )
    assert set(ours["achievements"]) == set(crafter_mc["achievements"])
    assert all(type(v) is bool for v in ours["achievements"].values())
    for key in ("near_blocks", "near_entities"):
        assert ours[key] and all(type(k) is str and type(v) is float for k, v in ours[key].items())
        assert all(type(k) is str and type(v) is float for k, v in crafter_mc[key].items())
    assert ours["death_cause"] is None is crafter_mc["death_cause"]


# --- Gymnasium conversion --------------------------------------------------------------
def test_reset_and_step_follow_gymnasium():
    fake = FakeMineDojoEnv()
    env = MineDojoEnv(fake)
    assert env.observation_space["rgb"].shape == (24, 32, 3)
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete) and env.action_space.nvec.tolist() == list(NVEC)
    obs, info = env.reset(seed=3)
    raw = FakeMineDojoEnv()
    raw.seed(3)
    np.testing.assert_array_equal(obs["rgb"], raw.reset()["rgb"].transpose(1, 2, 0))
    assert obs["rgb"].dtype == np.uint8 and obs["rgb"].flags["C_CONTIGUOUS"] and set(obs) == {"rgb"}
    assert info["success"] is False and info["death_cause"] is None and info["mc"]["step"] == 0
    attack = NO_OP.copy()
    attack[5] = ATTACK
    obs, reward, terminated, truncated, info = env.step(attack)
    assert (reward, terminated, truncated) == (1.0, False, False) and type(reward) is float
    assert info["mc"]["inventory"]["wood"] == 1 and info["achievements"]["collect_wood"] and info["mc"]["step"] == 1
    turn = NO_OP.copy()
    turn[4] = 18  # +90 degrees: facing -x
    info = env.step(turn)[4]
    assert info["mc"]["location_stats"]["facing"] == (-1, 0)
    env.close()
    assert fake.closed


def test_death_terminates_with_its_cause():
    env = MineDojoEnv(FakeMineDojoEnv(die_at=2, damage={**_NO_DAMAGE, "is_fire_damage": np.array(True)}))
    env.reset(seed=0)
    assert env.step(NO_OP)[2:4] == (False, False)
    _, _, terminated, truncated, info = env.step(NO_OP)
    assert (terminated, truncated) == (True, False)
    assert info["death_cause"] == "lava" == info["mc"]["death_cause"] and info["mc"]["done"] is True
    assert info["mc"]["life_stats"]["health"] == 0 and info["success"] is False


def test_time_limit_flag_truncates():
    env = MineDojoEnv(FakeMineDojoEnv(cap=2))
    env.reset(seed=0)
    env.step(NO_OP)
    _, _, terminated, truncated, info = env.step(NO_OP)
    assert (terminated, truncated) == (False, True) and info["mc"]["done"] is False


def test_elapsed_steps_at_the_cap_truncate():
    class CappedFake(FakeMineDojoEnv):
        """A fake wrapped like gym's TimeLimit that does not set the info flag."""

        _max_episode_steps = 2

        @property
        def _elapsed_steps(self):
            return self.t

        def step(self, action):
            obs, reward, _, info = super().step(action)
            return obs, reward, self.t >= 2, info

    env = MineDojoEnv(CappedFake())
    env.reset(seed=0)
    assert env.step(NO_OP)[2:4] == (False, False)
    assert env.step(NO_OP)[2:4] == (False, True)


def test_success_from_info_or_is_successful():
    env = MineDojoEnv(FakeMineDojoEnv(success_at=1))
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(NO_OP)
    assert (terminated, truncated, info["success"]) == (True, False, True)
    fake = FakeMineDojoEnv()
    env = MineDojoEnv(fake)
    env.reset(seed=0)
    assert env.step(NO_OP)[4]["success"] is False
    fake.is_successful = True  # MineDojo's task envs report success as an attribute
    assert env.step(NO_OP)[4]["success"] is True


def test_empty_slot_equip_becomes_a_no_op():
    fake = FakeMineDojoEnv()
    env = MineDojoEnv(fake)
    env.reset(seed=0)
    equip = NO_OP.copy()
    equip[5], equip[7] = EQUIP, 10  # slot 10 is empty
    env.step(equip)
    equip[7] = 3  # the pickaxe's slot
    env.step(equip)
    assert fake.actions[0][5] == 0 and fake.actions[1][5] == EQUIP


def test_check_env_passes_without_warnings(registered):
    # Made through gym.make so that check_env can also remake it for other render modes.
    env = gym.make(registered[0], env=FakeMineDojoEnv(lidar=True), render_mode="rgb_array").unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []
    env.reset(seed=0)
    assert env.render().shape == (24, 32, 3)


def test_factory_is_called_once():
    calls = []
    env = MineDojoEnv(lambda: calls.append(1) or FakeMineDojoEnv())
    env.reset(seed=0)
    assert calls == [1]


# --- errors and registration -----------------------------------------------------------
def test_bad_task_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        MineDojoEnv(FakeMineDojoEnv(), task="CollectWod")
    message = str(err.value)
    assert "\n" not in message and "did you mean CollectWood?" in message
    assert all(task in message for task in ("CollectWood", "EatCow", "DiamondLava", "Survival"))


def test_asymmetric_voxel_size_is_rejected():
    with pytest.raises(ConfigError, match="symmetric"):
        MineDojoEnv(FakeMineDojoEnv(), voxel_size={"xmin": -3, "xmax": 3, "ymin": -1, "ymax": 3, "zmin": -3, "zmax": 3})


def test_without_minedojo_making_the_real_env_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "minedojo", None)
    with pytest.raises(ConfigError, match="docs/minedojo.md"):
        MineDojoEnv(task="CollectWood")


def test_register_returns_nothing_without_minedojo(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "minedojo", None)  # import fails, as where it is not installed
    assert minedojo.register() == []
    assert isinstance(minedojo.IMPORT_ERROR, ImportError)
    assert capsys.readouterr() == ("", "")
    assert not [env_id for env_id in gym.registry if env_id.startswith("embodied/MineDojo-")]


def test_register_with_minedojo_adds_the_four_ids(registered):
    assert registered == [
        f"embodied/MineDojo-{task}-v0" for task in ("CollectWood", "EatCow", "DiamondLava", "Survival")
    ]
    assert gym.spec(registered[0]).max_episode_steps == 500 and gym.spec(registered[3]).max_episode_steps == 10000
    env = gym.make(registered[2], env=FakeMineDojoEnv())
    env.reset(seed=0)
    assert env.unwrapped.task_id == "harvest_1_diamond_with_iron_pickaxe"
    env.close()


def test_survival_succeeds_alive_at_the_cap(registered):
    env = embodied.envs.make(registered[3], env=FakeMineDojoEnv(), max_episode_steps=3)
    env.reset(seed=0)
    steps = [env.step(NO_OP) for _ in range(3)]
    assert [s[4]["success"] for s in steps] == [False, False, True] and steps[-1][3] is True


def test_task_ids_are_minedojo_programmatic_tasks():
    assert minedojo.TASK_IDS == {
        "CollectWood": "harvest_1_log",
        "EatCow": "harvest_1_beef",
        "DiamondLava": "harvest_1_diamond_with_iron_pickaxe",
        "Survival": "survival",
    }
