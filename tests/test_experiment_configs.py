"""Every experiment config composes into the typed schemas (a misspelt key fails here, not mid-run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from embodied.cli import compose, to_dataclass

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes(name: str) -> None:
    config = to_dataclass(compose("config", [f"experiment={name}"]))
    assert config.env.id and config.agent.name


def test_command_line_agent_beats_the_experiments_choice() -> None:
    """`experiment=act_jepa_metaworld15 agent=act` is how the ACT baseline row is run."""
    config = to_dataclass(compose("config", ["experiment=act_jepa_metaworld15", "agent=act"]))
    assert config.agent.name == "act" and config.agent.jepa is False
    assert config.agent.dataset == "data/metaworld15" and config.env.id == "embodied/MetaWorld-MT15-v0"
