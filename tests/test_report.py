"""`embodied-report`: grouping by configuration, the table's mean ± CI, incomplete runs kept out,
the plots, and one-line errors; on a real multirun the tests make and on hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from embodied.evaluation import mean_ci
from embodied.report import ReportConfig, find_runs, group, report
from helpers import TINY, assert_one_line_error, run_cli


def fake_run(path: Path, overrides: list[str], seed: int, success: float, status: str = "complete") -> None:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"seed={seed}", f"run_dir={path}"]))
    (path / "summary.json").write_text(
        json.dumps(
            {
                "status": status,
                "seed": seed,
                "experiment": "x",
                "metrics": {
                    "eval/success_rate": success,
                    "eval/return_mean": 10 * success,
                    "skills/coverage_bins": 3.0,
                },
            }
        )
    )
    rows = ["step,charts/episodic_return"] + [f"{s},{s * success / 100}" for s in (100, 200, 300)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_groups_by_configuration_and_averages_over_seeds(tmp_path: Path) -> None:
    for i, (reward, seed, success) in enumerate(
        [("sparse", 0, 0.2), ("sparse", 1, 0.4), ("handwritten", 0, 0.8), ("handwritten", 1, 1.0)]
    ):
        fake_run(tmp_path / str(i), ["experiment=ppo_crafter_collect_wood", f"reward={reward}"], seed, success)
    fake_run(tmp_path / "4", ["experiment=ppo_crafter_collect_wood", "reward=sparse"], 2, 0.0, status="interrupted")
    runs = find_runs(tmp_path)
    groups = group(runs)
    assert sorted(groups) == ["reward=handwritten", "reward=sparse"]  # named by what varies
    assert [r.seed for r in groups["reward=sparse"]] == [0, 1]  # the interrupted seed 2 is not averaged
    path = report(ReportConfig(dir=str(tmp_path)))
    text = path.read_text()
    mean, half = mean_ci([0.2, 0.4])
    assert "Every run: `experiment=ppo_crafter_collect_wood`." in text
    row = next(line for line in text.splitlines() if line.startswith("| reward=sparse | 0,1 |"))
    header = next(line for line in text.splitlines() if line.startswith("| configuration"))
    column = [c.strip() for c in header.split("|")].index("eval/success_rate")
    assert [c.strip() for c in row.split("|")][column] == f"{mean:.3g} ± {half:.2g}"
    assert text.index("eval/return_mean") < text.index("skills/coverage_bins")  # eval/* first
    assert "1 incomplete runs" in text and str(tmp_path / "4") in text
    for png in ("learning_curves.png", "success.png", "rewards.png"):
        assert (tmp_path / png).stat().st_size > 0 and f"({png})" in text


@pytest.mark.slow  # four training runs and a report: ~30 s; make test-all runs it
def test_report_on_a_real_multirun(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [a for a in TINY if not a.startswith(("eval.", "checkpoint."))]
    run_cli(
        "embodied.train",
        "-m",
        "seed=0,1",
        "agent.learning_rate=0.001,0.0003",
        *args,
        "eval.episodes=2",
        "eval.video=false",
        "checkpoint.every=0",
        f"hydra.sweep.dir={sweep}",
        check=True,
    )
    proc = run_cli("embodied.report", f"dir={sweep}", f"out={tmp_path / 'report'}", check=True)
    path = Path(proc.stdout.strip().splitlines()[-1])
    text = path.read_text()
    rows = [
        line
        for line in text.splitlines()
        if line.startswith(("| agent.learning_rate=0.001 |", "| agent.learning_rate=0.0003 |"))
    ]
    assert len(rows) == 2 and all("| 0,1 |" in row for row in rows)
    summaries = [json.loads(p.read_text()) for p in sweep.rglob("summary.json")]
    lr = [s for s in summaries if "eval/success_rate" in s["metrics"]]
    assert len(lr) == 4
    curves = path.parent / "learning_curves.png"
    assert curves.stat().st_size > 0 and (path.parent / "success.png").exists()
    assert np.isfinite([s["metrics"]["eval/return_mean"] for s in summaries]).all()


def test_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("embodied.report", f"dir={tmp_path / 'nope'}"), "is not a directory")
    assert_one_line_error(run_cli("embodied.report", f"dir={tmp_path}"), "no runs under")
    assert_one_line_error(run_cli("embodied.report", f"dirr={tmp_path}"), "dirr")
