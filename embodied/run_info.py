"""What a run records about itself: versions, git commit, atomic JSON files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "embodied-suite",
    "torch",
    "numpy",
    "gymnasium",
    "mujoco",
    "metaworld",
    "stable-baselines3",
    "hydra-core",
    "zarr",
)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str | None:
    """The source tree's commit (with '-dirty' when modified), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def run_complete(run_dir: Path) -> bool:
    """Whether `embodied-train` finished this run (its summary.json says complete; absent or unreadable: no)."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text()).get("status") == "complete"
    except (OSError, json.JSONDecodeError):
        return False


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
    return path
