"""World-model probe: how well does a frozen encoder's output predict the future?

The paper's evidence that JEPA improves the representation (Vujinovic & Kovacevic,
2025): freeze the trained context encoder, fit a small MLP from its output to the next
`chunk` proprioceptive states on the training episodes, and score it on held-out
episodes. Reported: RMSE in normalised units over every predicted entry, and the
average trajectory error (ATE, env units, Meta-World: metres) of the position entries.
A "static" reference (the current state held for the whole chunk) is reported beside
them so the numbers can be read on their own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def _encode(
    agent: Any, windows: Any, max_samples: int, rng: np.random.Generator, batch_size: int = 512
) -> dict[str, torch.Tensor]:
    """Features, future proprio states, their padding and the current state of (a subsample of) windows."""
    idx = np.arange(len(windows))
    if len(idx) > max_samples:
        idx = np.sort(rng.choice(idx, max_samples, replace=False))
    dims = agent.proprio_dims.to(agent.device)
    agent.model.eval()
    out: dict[str, list[torch.Tensor]] = {"x": [], "y": [], "pad": [], "now": []}
    for start in range(0, len(idx), batch_size):
        batch = agent.to_device(windows.batch(idx[start : start + batch_size]))
        with agent.autocast():
            out["x"].append(agent.features(batch).float().cpu())
        out["y"].append(batch["future/state"][..., dims].cpu())
        out["pad"].append(batch["future_is_pad"].cpu())
        out["now"].append(batch["obs/state"][:, -1, dims].cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def _errors(
    agent: Any, pred: torch.Tensor, data: dict[str, torch.Tensor], position: Sequence[int]
) -> tuple[float, float]:
    """(RMSE over valid normalised entries, ATE over valid steps in env units)."""
    valid = ~data["pad"]
    rmse = float(((pred - data["y"]) ** 2)[valid].mean().sqrt())
    dims = agent.proprio_dims

    def raw(x: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(*x.shape[:-1], agent.obs_shapes["state"][0])
        full[..., dims] = x
        return agent.normalizer.unnormalize("obs/state", full)[..., dims][..., list(position)]

    ate = float((raw(pred) - raw(data["y"])).norm(dim=-1)[valid].mean())
    return rmse, ate


def world_model_probe(
    agent: Any,
    dataset: Any,
    train_episodes: Sequence[int],
    val_episodes: Sequence[int],
    steps: int = 2000,
    hidden: int = 256,
    lr: float = 1e-3,
    batch_size: int = 256,
    max_samples: int = 20000,
    seed: int = 0,
) -> dict[str, float]:
    """Fit the probe on `train_episodes`, report probe/* metrics on `val_episodes`."""
    from embodied.data import WindowDataset
    from embodied.errors import ConfigError

    dims = agent.proprio_dims.tolist()
    missing = [d for d in agent.config.probe_position_dims if d not in dims]
    if missing:
        raise ConfigError(
            f"agent.probe_position_dims {missing} are not in agent.proprio_dims; the probe predicts proprio states only"
        )
    position = [dims.index(d) for d in agent.config.probe_position_dims]
    kwargs = agent.window_kwargs(future=True)
    rng = np.random.default_rng(seed)
    train = _encode(
        agent, WindowDataset(dataset, normalizer=agent.normalizer, episodes=train_episodes, **kwargs), max_samples, rng
    )
    val = _encode(
        agent, WindowDataset(dataset, normalizer=agent.normalizer, episodes=val_episodes, **kwargs), max_samples, rng
    )
    mean, std = train["x"].mean(0), train["x"].std(0).clamp_min(1e-6)
    n, horizon, width = train["y"].shape
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        probe = nn.Sequential(nn.Linear(train["x"].shape[1], hidden), nn.GELU(), nn.Linear(hidden, horizon * width))
        optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
        for _ in range(steps):
            idx = torch.randint(n, (min(batch_size, n),))
            pred = probe((train["x"][idx] - mean) / std).view(-1, horizon, width)
            valid = ~train["pad"][idx]
            loss = ((pred - train["y"][idx]) ** 2)[valid].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def predict(data: dict[str, torch.Tensor]) -> torch.Tensor:
        return probe((data["x"] - mean) / std).view(-1, horizon, width)

    with torch.no_grad():
        rmse, ate = _errors(agent, predict(val), val, position)
        train_rmse, _ = _errors(agent, predict(train), train, position)
        rmse_static, ate_static = _errors(agent, val["now"][:, None].expand_as(val["y"]), val, position)
    return {
        "probe/rmse": rmse,
        "probe/ate": ate,
        "probe/train_rmse": train_rmse,
        "probe/rmse_static": rmse_static,
        "probe/ate_static": ate_static,
        "probe/val_samples": float(len(val["y"])),
    }
