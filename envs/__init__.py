"""Gymnasium environments of the suite, registered under the `embodied/` namespace.

`import embodied.envs` registers every env; `gym.make("embodied.envs:embodied/<Id>")`
does the import for you. A new env family is a module with a `register()` function
and one entry in `embodied.envs.registration.FAMILIES`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect

import gymnasium as gym

import embodied  # noqa: F401  (chooses MUJOCO_GL before mujoco is imported)
from embodied.envs.registration import FAMILIES
from embodied.errors import ConfigError

REGISTERED: list[str] = []
for _family in FAMILIES.values():
    REGISTERED.extend(importlib.import_module(_family.module).register())


def make(env_id: str, **kwargs) -> gym.Env:
    """`gym.make` with a one-line error naming close matches for an unknown id."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, REGISTERED, n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"{len(REGISTERED)} envs are registered, e.g. {', '.join(REGISTERED[:3])}"
        )
        raise ConfigError(f"unknown env id '{env_id}': {hint}")
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as err:
        if "argument" not in str(err):
            raise
        creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
        accepted = [p for p in inspect.signature(creator).parameters if p != "self"]
        raise ConfigError(
            f"env '{env_id}' rejected its options ({err}); it accepts: {', '.join(accepted + ['max_episode_steps'])}"
        ) from None
    _tell_episode_cap(env)
    return env


def _tell_episode_cap(env: gym.Env) -> None:
    """Envs whose success depends on the cap (surviving to it) read it as `episode_cap`."""
    if not hasattr(env.unwrapped, "episode_cap"):
        return
    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, gym.wrappers.TimeLimit):
            env.unwrapped.episode_cap = layer._max_episode_steps
            return
        layer = layer.env
