"""A machine with no GL library at all: importing works, state-only training works, frames fail in one line.

The libraries are hidden for real, in a private mount namespace: every libOSMesa/libEGL/libGL
file is covered by an empty one and the loader cache is rebuilt without them, so
`ctypes.util.find_library` and `dlopen` both fail, as on a fresh Debian machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("libOSMesa", "libEGL", "libGL.", "libGLX", "libGLESv", "libGLdispatch")


def _gl_libraries() -> list[str]:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = {
        line.rsplit("=>", 1)[1].strip() for line in out.splitlines() if "=>" in line and any(h in line for h in HIDDEN)
    }
    return sorted({os.path.realpath(p) for p in paths} | paths)


def run_without_gl(tmp_path: Path, command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `command` where no GL library can be found or loaded."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        pytest.skip("needs util-linux unshare (mount namespaces)")
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    cache = tmp_path / "ld.so.cache"
    script = "\n".join(
        [
            "set -e",
            *(f"mount --bind {shlex.quote(str(empty))} {shlex.quote(p)}" for p in _gl_libraries() if os.path.isfile(p)),
            f"ldconfig -C {shlex.quote(str(cache))} 2>/dev/null",
            f"mount --bind {shlex.quote(str(cache))} /etc/ld.so.cache",
            "exec " + shlex.join(command),
        ]
    )
    wrapper = ["unshare", "--mount"] if os.getuid() == 0 else ["unshare", "--mount", "--map-root-user"]
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(
        [*wrapper, "sh", "-c", script], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def test_import_works_and_rendering_is_disabled(tmp_path: Path) -> None:
    probe = (
        "import ctypes.util, os, embodied.envs, mujoco; "
        "print(ctypes.util.find_library('OSMesa'), ctypes.util.find_library('EGL'), os.environ['MUJOCO_GL'])"
    )
    proc = run_without_gl(tmp_path, [sys.executable, "-c", probe], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["None", "None", "disabled"]


def test_state_only_training_runs_and_a_video_fails_before_training(tmp_path: Path) -> None:
    base = [
        sys.executable,
        "-m",
        "embodied.train",
        "total_steps=64",
        "agent.learning_starts=32",
        "eval.episodes=1",
        "log_every=32",
    ]
    ok = run_without_gl(tmp_path, [*base, f"run_dir={tmp_path / 'state'}", "eval.video=false"])
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / "state" / "summary.json").exists()
    video = run_without_gl(tmp_path, [*base, f"run_dir={tmp_path / 'video'}", "eval.video=true"])
    errors = [line for line in video.stderr.splitlines() if line.startswith("error: ")]
    assert (
        video.returncode == 2 and len(errors) == 1 and "libOSMesa" in errors[0] and "Traceback" not in video.stderr
    ), video.stderr[-3000:]
    assert not (tmp_path / "video" / "checkpoints").exists()  # nothing trained
