"""Vectorised stepping over worker processes, several envs per worker.

Stable-Baselines3's `SubprocVecEnv` runs one env per process and pays a pipe round
trip per env per step. For fast envs (a symbolic Crafter step takes ~0.2 ms) that
round trip costs more than the step, so `ShardedVecEnv` gives each of `workers`
processes a shard of the envs, run as a `DummyVecEnv` there (SB3's autoreset,
`terminal_observation` and `TimeLimit.truncated` semantics unchanged), and sends one
message per shard per step. It is an SB3 `VecEnv`, used for `env.vectorization=async`.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper


def _serve(remote: Any, parent_remote: Any, fns: CloudpickleWrapper) -> None:
    parent_remote.close()
    shard = DummyVecEnv(fns.var)
    try:
        while True:
            cmd, data = remote.recv()
            if cmd == "step":
                obs, rewards, dones, infos = shard.step(data)
                remote.send((obs, rewards, dones, infos, shard.reset_infos))
            elif cmd == "reset":
                shard._seeds, shard._options = data
                remote.send((shard.reset(), shard.reset_infos))
            elif cmd == "spaces":
                remote.send((shard.observation_space, shard.action_space))
            elif cmd == "call":
                method, args, kwargs = data
                remote.send(getattr(shard, method)(*args, **kwargs))
            elif cmd == "close":
                shard.close()
                remote.send(None)
                return
    except (EOFError, KeyboardInterrupt):
        return


def _concat(parts: Sequence[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)


class ShardedVecEnv(VecEnv):
    """`len(env_fns)` envs stepped in `workers` processes (envs split as evenly as possible)."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], workers: int, start_method: str = "forkserver") -> None:
        workers = max(1, min(workers, len(env_fns)))
        bounds = np.linspace(0, len(env_fns), workers + 1).astype(int)
        self.shards = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
        ctx = mp.get_context(start_method)
        self.remotes, self.processes = [], []
        for shard in self.shards:
            remote, work_remote = ctx.Pipe()
            proc = ctx.Process(
                target=_serve, args=(work_remote, remote, CloudpickleWrapper([env_fns[i] for i in shard])), daemon=True
            )
            proc.start()
            work_remote.close()
            self.remotes.append(remote)
            self.processes.append(proc)
        self.remotes[0].send(("spaces", None))
        observation_space, action_space = self.remotes[0].recv()
        super().__init__(len(env_fns), observation_space, action_space)
        self.closed = False

    def step_async(self, actions: np.ndarray) -> None:
        for remote, shard in zip(self.remotes, self.shards):
            remote.send(("step", actions[shard[0] : shard[-1] + 1]))

    def step_wait(self):
        results = [remote.recv() for remote in self.remotes]
        self.reset_infos = [info for r in results for info in r[4]]
        infos = [info for r in results for info in r[3]]
        return (
            _concat([r[0] for r in results]),
            np.concatenate([r[1] for r in results]),
            np.concatenate([r[2] for r in results]),
            infos,
        )

    def reset(self):
        for remote, shard in zip(self.remotes, self.shards):
            remote.send(("reset", ([self._seeds[i] for i in shard], [self._options[i] for i in shard])))
        results = [remote.recv() for remote in self.remotes]
        self.reset_infos = [info for r in results for info in r[1]]
        self._reset_seeds()
        self._reset_options()
        return _concat([r[0] for r in results])

    def close(self) -> None:
        if self.closed:
            return
        for remote in self.remotes:
            remote.send(("close", None))
        for remote, proc in zip(self.remotes, self.processes):
            remote.recv()
            proc.join()
        self.closed = True

    # --- attribute access, routed to the shards that hold the envs -----------------
    def _call(self, method: str, indices: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """`DummyVecEnv.<method>(*args, indices=local, **kwargs)` on every shard concerned."""
        wanted = list(self._get_indices(indices))
        out: dict[int, Any] = {}
        for remote, shard in zip(self.remotes, self.shards):
            mine = [i for i in wanted if i in shard]
            if mine:
                remote.send(("call", (method, args, {**kwargs, "indices": [shard.index(i) for i in mine]})))
                values = remote.recv()
                out.update(zip(mine, values if values is not None else [None] * len(mine)))
        return [out[i] for i in wanted]

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return self._call("get_attr", indices, attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        self._call("set_attr", indices, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return self._call("env_method", indices, method_name, *method_args, **method_kwargs)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return self._call("env_is_wrapped", indices, wrapper_class)
