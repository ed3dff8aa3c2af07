"""The design loop against the real local model (llama.cpp's server, the pinned GGUF): `make test-llm`.

Asserts the loop's artifacts and the recorded exchanges, not the reward's quality (that is
benchmarks/reward_design.py's job); then replays the recording offline, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]  # a few minutes on a quiet CPU; longer when it is shared

TINY = [
    "task=CollectWood",
    "iterations=1",
    "samples=2",
    "revisions=1",
    "view_episodes=1",
    "train.total_steps=256",
    'train.overrides=["env.num_envs=2","agent.n_steps=64","agent.batch_size=64","agent.n_epochs=1","agent.net_arch=[32]","env.max_episode_steps=60","eval.episodes=2","eval.video=false","log_every=64"]',
]
CANDIDATE = ("reward.py", "critique.json", "metrics.json")


def test_one_iteration_with_the_local_model_records_and_replays(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="the local model needs pip install -e '.[llm]'")
    first = tmp_path / "live"
    proc = run_cli(
        "embodied.agents.auto_mc_reward.loop", *TINY, f"run_dir={first}", "llm.local.n_ctx=8192", timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((first / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["llm"]["model"] == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    metrics = json.loads((first / "iterations" / "1" / "metrics.json").read_text())
    assert sum(metrics["stages"].values()) >= 2, "both candidates made at least one attempt"
    for j in ("0", "1"):
        cand = first / "iterations" / "1" / "candidates" / j
        assert all((cand / name).is_file() for name in CANDIDATE)
        critique = json.loads((cand / "critique.json").read_text())
        assert all(a["answer"] for a in critique["attempts"]), "every answer is kept"
    entries = [json.loads(p.read_text()) for p in (first / "llm_store").glob("*-*.json")]
    designer = [e for e in entries if e["tag"].startswith("designer/1/")]
    assert {e["tag"].split("/")[2] for e in designer} == {"0", "1"}
    assert len({e["request"]["seed"] for e in entries}) == len(entries), "every request has its own seed"
    assert all(e["response"]["choices"][0]["finish_reason"] in ("stop", "length") for e in entries)
    assert all(e["request"]["max_tokens"] == 1024 and e["seconds"] > 0 for e in entries)

    replay = tmp_path / "replay"
    proc = run_cli(
        "embodied.agents.auto_mc_reward.loop",
        *TINY,
        f"run_dir={replay}",
        "llm=endpoint",
        "llm.base_url=http://127.0.0.1:9/v1",
        "llm.model=qwen2.5-coder-1.5b-instruct-q4_k_m",
        "llm.api_key_env=",
        "llm.mode=replay",
        f"llm.store={first / 'llm_store'}",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for j in ("0", "1"):
        for name in ("reward.py", "critique.json"):
            path = Path("iterations") / "1" / "candidates" / j / name
            assert (replay / path).read_bytes() == (first / path).read_bytes(), f"{path} differs in replay"
