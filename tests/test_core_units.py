"""Unit tests of core pieces: intervals, metric CSV, tensor state, CLI parsing, rendering choice."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.cli import parse_args
from embodied.errors import ConfigError
from embodied.evaluation import EpisodeResult, summarize, wilson_interval
from embodied.metrics import MetricLogger, read_metrics
from embodied.tensor_state import flatten_state, load_state, save_state, unflatten_state


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)


def test_summarize() -> None:
    results = [EpisodeResult(0, 1.0, 10, True), EpisodeResult(1, 3.0, 20, False)]
    m = summarize(results)
    assert m["eval/success_rate"] == 0.5 and m["eval/return_mean"] == 2.0 and m["eval/length_mean"] == 15.0


def test_metric_csv_widens_and_appends(tmp_path: Path) -> None:
    logger = MetricLogger(tmp_path, ["csv"])
    logger.log(1, {"charts/SPS": 10.0})
    logger.log(2, {"charts/SPS": 11.0, "losses/x": 0.5})
    logger.log(3, {"losses/x": float("nan")})
    logger.close()
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["charts/SPS"] == 10.0 and "losses/x" not in rows[0] and rows[1]["losses/x"] == 0.5
    resumed = MetricLogger(tmp_path, ["csv"], resume_step=3)
    resumed.log(4, {"eval/success_rate": 1.0})
    resumed.close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [1, 2, 3, 4]


def test_resume_rewinds_the_logs_to_the_checkpoint(tmp_path: Path) -> None:
    """Rows logged after the last checkpoint by a killed run leave metrics.csv; TensorBoard purges them too."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = MetricLogger(tmp_path, ["csv", "tensorboard"])
    for step in (10, 20, 30):
        logger.log(step, {"charts/SPS": float(step)})
    logger.close()  # the killed run had checkpointed at 20 and logged 30
    resumed = MetricLogger(tmp_path, ["csv", "tensorboard"], resume_step=20)
    for step in (30, 40):
        resumed.log(step, {"charts/SPS": step + 0.5})
    resumed.close()
    assert [(r["step"], r["charts/SPS"]) for r in read_metrics(tmp_path / "metrics.csv")] == [
        (10, 10.0),
        (20, 20.0),
        (30, 30.5),
        (40, 40.5),
    ]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.discarded.csv")] == [30]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("charts/SPS")] == [(10, 10.0), (20, 20.0), (30, 30.5), (40, 40.5)]


def test_tensor_state_round_trip(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    state = {"opt": opt.state_dict(), "counter": np.int64(7), "array": np.arange(3)}
    save_state(state, tmp_path, "s")
    back = load_state(tmp_path, "s")
    assert back["counter"] == 7 and back["array"].tolist() == [0, 1, 2]
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(back["opt"])
    assert fresh.param_groups[0]["lr"] == 1e-3
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    skeleton, tensors = flatten_state({1: {"a": torch.zeros(2)}})
    assert unflatten_state(skeleton, tensors)[1]["a"].shape == (2,)


@dataclass
class _Args:
    name: str = "x"
    count: int = 1


def test_parse_args_messages() -> None:
    assert parse_args(_Args, ["count=3"], "cmd").count == 3
    with pytest.raises(ConfigError, match="did you mean 'count'"):
        parse_args(_Args, ["cont=3"], "cmd")
    with pytest.raises(ConfigError, match="count"):
        parse_args(_Args, ["count=abc"], "cmd")
    with pytest.raises(ConfigError, match="not key=value"):
        parse_args(_Args, ["count"], "cmd")


def test_rendering_backend_is_chosen() -> None:
    import embodied.rendering as rendering

    assert os.environ["MUJOCO_GL"] in ("egl", "osmesa", "glfw")
    assert rendering.rendering_problem() is None, rendering.rendering_problem()
