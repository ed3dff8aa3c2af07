"""A design run recorded against the real local model replays offline from its committed store.

benchmarks/designed/<task>/ holds what benchmarks/reward_design.py --design committed: the LLM
store, the run's config and every candidate's critique.json. The first iteration's candidates
need no training to redo, so they are redone here from the store alone (no model, no network):
every answer comes back byte for byte, in the recorded order. The Critic's own findings are not
compared here, since they may grow after the recording (a new check adds to the last attempt's
errors); `tests/test_llm_integration.py` records and replays under one version and compares
whole critique files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

DESIGNED = Path(__file__).parent.parent / "benchmarks" / "designed"
TASKS = sorted(p.name for p in DESIGNED.iterdir() if (p / "config.yaml").is_file()) if DESIGNED.is_dir() else []


@pytest.mark.skipif(not TASKS, reason="no recorded design run is committed under benchmarks/designed")
@pytest.mark.parametrize("task", TASKS[:1])
def test_the_first_iteration_replays_from_the_committed_store(task: str, tmp_path: Path) -> None:
    from embodied.agents.auto_mc_reward import candidate
    from embodied.agents.auto_mc_reward.config import DesignConfig
    from embodied.agents.auto_mc_reward.loop import prompt_options, record_views
    from embodied.envs.minecraft.tasks import get_task
    from embodied.llm import ChatClient

    root = DESIGNED / task
    raw = OmegaConf.load(root / "config.yaml")
    raw.llm.mode, raw.llm.local.enabled, raw.llm.base_url = "replay", False, "http://127.0.0.1:9/v1"
    raw.run_dir, raw.resume = None, False
    cfg: DesignConfig = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DesignConfig), raw))
    seed = json.loads((root / "llm_store" / "run.json").read_text())["llm"]["seed"]
    client = ChatClient(cfg.llm, store_dir=root / "llm_store")
    episodes = record_views(cfg.task, cfg.view_episodes, cfg.view_seed)
    options = prompt_options(cfg, episodes)
    for j in range(cfg.samples):
        out = tmp_path / str(j)
        candidate.design(client, cfg, get_task(cfg.task), 1, j, episodes, "", options, seed, out)
        recorded = json.loads((root / "iterations" / "1" / "candidates" / str(j) / "critique.json").read_text())
        replayed = json.loads((out / "critique.json").read_text())
        assert [a["answer"] for a in replayed["attempts"]] == [a["answer"] for a in recorded["attempts"]], j
    assert client.stats["requests"] == 0 and client.stats["cache_hits"] > 0
