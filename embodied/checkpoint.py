"""Atomic checkpoints: `checkpoints/<step>/` plus a `last` pointer, no pickles.

A checkpoint is written into a temporary folder, its `trainer_state.json` (step,
agent, RNG state, SHA-256 of every file) last, then renamed into place; only then
does `last` move (an atomic symlink replace). A crash at any point leaves `last`
on a complete checkpoint. Loading re-checks the hashes, so a truncated or edited
file is reported instead of half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from embodied.errors import CheckpointError
from embodied.seeding import rng_state, set_rng_state

STATE_FILE = "trainer_state.json"
RNG_FILE = "rng.safetensors"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(run_dir: Path, step: int, agent: Any, extra: dict[str, Any] | None = None, keep: int = 3) -> Path:
    """Write the agent and trainer state at `step`; point `last` at it; prune to `keep`."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{step:08d}"
    tmp = root / f".tmp-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        agent.save(tmp)
        rng = rng_state()
        save_file({k: v for k, v in rng.items() if isinstance(v, torch.Tensor)}, str(tmp / RNG_FILE))
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        state = {
            "format_version": FORMAT_VERSION,
            "step": int(step),
            "agent": agent.config.name,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "rng": {k: v for k, v in rng.items() if not isinstance(v, torch.Tensor)},
            "files": files,
            **(extra or {}),
        }
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link = root / ".last.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(final.name)
    os.replace(link, root / "last")
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    steps = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit())
    last = (root / "last").resolve()
    for old in steps[: max(len(steps) - keep, 0)]:
        if old.resolve() != last:
            shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(run_dir: Path, which: str = "last") -> Path:
    """The checkpoint folder for `which` ("last" or a step number) in `run_dir`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory '{run_dir}' does not exist; pass run=<path printed by embodied-train>")
    root = run_dir / "checkpoints"
    if which == "last":
        path = root / "last"
        if not path.exists():
            raise CheckpointError(
                f"'{run_dir}' has no complete checkpoint (no checkpoints/last); train longer or check the path"
            )
        return path.resolve()
    if not str(which).isdigit():
        raise CheckpointError(f"checkpoint must be 'last' or a step number, got '{which}'")
    path = root / f"{int(which):08d}"
    if not path.is_dir():
        have = sorted(p.name.lstrip("0") or "0" for p in root.glob("[0-9]*")) if root.is_dir() else []
        raise CheckpointError(
            f"no checkpoint at step {which} in '{run_dir}'; available steps: {', '.join(have) or 'none'}"
        )
    return path


def verify_checkpoint(path: Path, agent_name: str | None = None) -> dict[str, Any]:
    """Check completeness, hashes and agent name; return the trainer state."""
    path = Path(path)
    state_file = path / STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"checkpoint '{path}' is incomplete ({STATE_FILE} missing); resume from another step"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt ({STATE_FILE} is not valid JSON); resume from another step"
        ) from None
    for name, digest in state.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(
                f"checkpoint '{path}' is missing {name}; it was truncated or moved; use another checkpoint"
            )
        if _sha256(file) != digest:
            raise CheckpointError(
                f"checkpoint '{path}' file {name} does not match its recorded hash (truncated or modified); use another checkpoint"
            )
    if agent_name is not None and state.get("agent") != agent_name:
        raise CheckpointError(
            f"checkpoint '{path}' was written by agent '{state.get('agent')}', not '{agent_name}'; load it with agent={state.get('agent')}"
        )
    return state


def load_checkpoint(path: Path, agent: Any, restore_rng: bool = True) -> dict[str, Any]:
    """Verify `path`, load it into `agent`, optionally restore global RNGs; return the state."""
    state = verify_checkpoint(path, agent.config.name)
    agent.load(Path(path))
    if restore_rng:
        rng = dict(state["rng"])
        rng.update(load_file(str(Path(path) / RNG_FILE)))
        set_rng_state(rng)
    return state


def write_agent_files(
    directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], state: dict[str, Any]
) -> None:
    """An agent's part of a checkpoint: weights (model.safetensors), what it is (config.json), training state (train_state.*)."""
    from embodied.tensor_state import save_state

    directory = Path(directory)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(meta, indent=1, default=list))
    save_state(state, directory, "train_state")


def read_agent_files(
    directory: Path, agent_name: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """(meta, tensors, state) written by `write_agent_files`; CheckpointError if unreadable or another agent's."""
    from embodied.tensor_state import load_state

    directory = Path(directory)
    try:
        meta = json.loads((directory / "config.json").read_text())
        tensors = load_file(str(directory / "model.safetensors"))
        state = load_state(directory, "train_state")
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise CheckpointError(f"cannot read checkpoint '{directory}': {' '.join(str(err).split())[:160]}") from None
    if meta.get("agent") != agent_name:
        raise CheckpointError(f"checkpoint '{directory}' holds agent '{meta.get('agent')}', not '{agent_name}'")
    return meta, tensors, state
