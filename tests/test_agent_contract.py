"""The agent contract, run on every agent in the registry: a new agent gets these by registering.

For each: the same seed gives the same first updates; save -> load gives identical actions
(deterministic, and sampled under the same torch seed); an interrupted run resumed from its
checkpoint reaches the budget (with exactly the uninterrupted run's weights where the agent
declares `exact_resume`); a bad agent key is one line naming the fix. Each agent trains on
its registry entry's experiment with the entry's `tiny` overrides.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.agents.registry import REGISTRY
from helpers import assert_one_line_error, run_cli

SLOW_TO_COLLECT = {"act", "act_jepa"}  # 15 Meta-World tasks to collect demonstrations from


class Hooks:
    """Hooks that ask the agent to stop once `stop_at` steps are done (as SIGTERM does in embodied-train)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at

    def on_step(self, step: int, episodes=None) -> bool:
        return self.stop_at is None or step < self.stop_at

    def log(self, step: int, metrics) -> None:
        pass


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """One tiny demonstration dataset per distinct `tiny_demos`, collected on first use."""
    made: dict[tuple[str, ...], Path] = {}

    def get(args: tuple[str, ...]) -> Path:
        if args not in made:
            out = tmp_path_factory.mktemp("demos") / "d"
            run_cli("embodied.collect", *args, f"out={out}", check=True, timeout=600)
            made[args] = out
        return made[args]

    return get


def build(name: str, demos, seed: int = 0):
    """(factory, agent, budget) for agent `name`, as embodied-train builds them."""
    from embodied.cli import compose, to_dataclass
    from embodied.config import training_budget
    from embodied.envs.factory import EnvFactory
    from embodied.seeding import seed_everything
    from embodied.train import agent_class, build_agent

    spec = REGISTRY[name]
    overrides = [f"experiment={spec.bench.experiment}", *spec.tiny, f"seed={seed}"]
    if spec.tiny_demos:
        overrides.append(f"agent.dataset={demos(spec.tiny_demos)}")
    config = to_dataclass(compose("config", overrides))
    seed_everything(config.seed)
    factory = EnvFactory(config.env, seed=config.seed, reward=config.reward)
    probe = factory.make()
    agent = build_agent(config.agent, probe.observation_space, probe.action_space, torch.device("cpu"), config.seed)
    probe.close()
    cls = agent_class(name)
    unit = 4 if cls.step_unit == "gradient updates" else cycle(config)
    return factory, agent, 2 * unit, training_budget(config, cls.step_unit, name)[0]


def cycle(config) -> int:
    """Env steps that make a whole number of update cycles (rollouts), and pass SAC's learning_starts."""
    agent = config.agent
    if hasattr(agent, "n_steps"):
        return agent.n_steps * config.env.num_envs
    return getattr(agent, "learning_starts", 0) + 8


def weights(agent, tmp: Path) -> bytes:
    tmp.mkdir(parents=True)
    agent.save(tmp)
    return (tmp / "model.safetensors").read_bytes()


def first_obs(factory):
    env = factory.make()
    obs, _ = env.reset(seed=3)
    env.close()
    return obs


PARAMS = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_COLLECT else name for name in REGISTRY]
# resume is bit-exact only where declared (imitation); the RL agents' weaker check runs with -m slow
RESUME = [
    name if name not in SLOW_TO_COLLECT and REGISTRY[name].tiny_demos else pytest.param(name, marks=pytest.mark.slow)
    for name in REGISTRY
]


@pytest.mark.parametrize("name", PARAMS)
def test_same_seed_same_first_updates(name, demos, tmp_path):
    runs = []
    for i in range(2):
        factory, agent, budget, _ = build(name, demos)
        agent.learn(factory, budget, Hooks())
        assert agent.num_steps >= budget
        runs.append(weights(agent, tmp_path / str(i)))
    assert runs[0] == runs[1], f"{name}: the same seed trained to different weights"


@pytest.mark.parametrize("name", PARAMS)
def test_save_load_gives_identical_actions(name, demos, tmp_path):
    from embodied.checkpoint import load_checkpoint, save_checkpoint

    factory, agent, budget, _ = build(name, demos)
    agent.learn(factory, budget, Hooks())
    path = save_checkpoint(tmp_path, agent.num_steps, agent)
    _, fresh, _, _ = build(name, demos, seed=1)
    load_checkpoint(path, fresh)
    assert fresh.num_steps == agent.num_steps
    obs = first_obs(factory)
    for deterministic in (True, False):
        actions = []
        for a in (agent, fresh):
            a.reset()
            torch.manual_seed(5)
            np.random.seed(5)
            actions.append(a.act(obs, deterministic=deterministic))
        np.testing.assert_array_equal(actions[0], actions[1], err_msg=f"{name}, deterministic={deterministic}")


@pytest.mark.parametrize("name", RESUME)
def test_interrupt_then_resume_reaches_the_budget(name, demos, tmp_path):
    from embodied.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint

    factory, whole, budget, _ = build(name, demos)
    whole.learn(factory, budget, Hooks())
    factory, first, _, _ = build(name, demos)
    first.learn(factory, budget, Hooks(stop_at=budget // 2))  # interrupted half-way, same budget
    assert budget // 2 <= first.num_steps < budget
    save_checkpoint(tmp_path, first.num_steps, first)
    factory, resumed, _, _ = build(name, demos)
    load_checkpoint(find_checkpoint(tmp_path), resumed)
    assert weights(resumed, tmp_path / "at_resume") == weights(first, tmp_path / "at_interrupt")
    resumed.learn(factory, budget, Hooks())
    assert resumed.num_steps == whole.num_steps
    if type(whole).exact_resume:
        assert weights(resumed, tmp_path / "resumed") == weights(whole, tmp_path / "whole"), (
            f"{name} declares exact_resume but the resumed run differs from the uninterrupted one"
        )


def test_a_misspelt_agent_key_is_one_line_naming_the_keys(tmp_path):
    from embodied.cli import validate_overrides
    from embodied.errors import ConfigError

    for name, spec in REGISTRY.items():
        agent_option = [o for o in spec.bench.overrides if o.startswith("agent=")]
        with pytest.raises(ConfigError, match="not_a_key") as err:
            validate_overrides("config", [f"experiment={spec.bench.experiment}", *agent_option, "agent.not_a_key=1"])
        assert "\n" not in str(err.value), name
    proc = run_cli("embodied.train", "experiment=ptp_memory", "agent.horizn=8", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(proc, "agent.horizn", "horizon")
    assert not (tmp_path / "run").exists()


def test_every_agent_declares_its_budget_unit():
    from embodied.train import agent_class

    for name in REGISTRY:
        cls = agent_class(name)
        assert cls.step_unit in ("env steps", "gradient updates"), name
        assert isinstance(cls.exact_resume, bool) and isinstance(cls.multi_process, bool), name
    assert json.dumps(sorted(REGISTRY))  # names are plain strings


def test_a_registry_entry_alone_makes_the_group_options(tmp_path):
    """No YAML needed: an agent entry gives `agent=<name>`, an env family entry `env=<family>`."""
    import subprocess
    import sys

    script = (
        "from embodied.agents.registry import REGISTRY\n"
        "from embodied.envs.registration import FAMILIES\n"
        "REGISTRY['my_sac'] = REGISTRY['sac']\n"
        "FAMILIES['my_tabletop'] = FAMILIES['tabletop']\n"
        "from embodied.cli import compose\n"
        "cfg = compose('config', ['agent=my_sac', 'agent.batch_size=7'])\n"
        "env = compose('config', ['experiment=slim_tabletop', 'env=my_tabletop'])\n"
        "print(cfg.agent.batch_size, env.env.family)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["7", "tabletop"]
