"""Fuzzing the kernel layer: random programs of numpy and math attribute chains touch no file and no socket.

Each program is a valid module of a few statements `x = <chain>(<args>)`, each in its own
try/except, where a chain is a random walk over public attributes of numpy, its
submodules and math (plus the Cython `func_globals` route to the real builtins), and the
arguments include paths into a canary folder and a URL of a listening socket on the
loopback. The programs run with every Python layer off (`guards=False`, no static check),
so only the kernel stands between them and the machine. Whatever a program does, the
canary folder must be unchanged, the socket must see no connection, and the call must
end in a result or a `RewardError`, within the time limit.
"""

from __future__ import annotations

import math
import os
import random
import socket
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from embodied.sandbox import RewardError, RewardSandbox

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the kernel layer is Linux-only")
PROGRAMS, STATEMENTS, BUDGET_S = 24, 8, 90.0
DANGEROUS = [
    "save",
    "savetxt",
    "load",
    "loadtxt",
    "fromfile",
    "tofile",
    "memmap",
    "genfromtxt",
    "DataSource",
    "open",
    "func_globals",
    "system",
    "listdir",
    "remove",
    "mkdir",
]


def attribute_pool() -> list[str]:
    """Dotted chains (up to 3 hops) over public attributes reachable from numpy and math."""
    roots = {"np": np, "math": math, "np.random": np.random, "np.linalg": np.linalg, "np.lib": np.lib, "np.fft": np.fft}
    chains = []
    for prefix, obj in roots.items():
        for name in dir(obj):
            if name.startswith("_"):
                continue
            chains.append(f"{prefix}.{name}")
            value = getattr(obj, name, None)
            if isinstance(value, (types.ModuleType, type)):
                chains += [f"{prefix}.{name}.{sub}" for sub in dir(value) if not sub.startswith("_")][:40]
    return sorted(set(chains))


def program(rng: random.Random, pool: list[str], canary: Path, url: str) -> str:
    paths = [
        repr(str(canary / "new.npy")),
        repr(str(canary / "existing.txt")),
        repr(str(canary)),
        repr(url),
        "'/etc/passwd'",
    ]
    args = ["0", "1", "-1", "0.5", "'a'", "[1, 2]", "np.zeros(2)", "x", "view", *paths]
    escape = "np.random.default_rng.func_globals['__builtins__']"
    lines = ["import math", "import numpy as np", "def reward(view, memory):", "    x = None"]
    for _ in range(STATEMENTS):
        roll = rng.random()
        if roll < 0.25:
            target = f"{escape}.{rng.choice(['open', '__import__'])}"
            call = (
                f"{target}({rng.choice(paths)})"
                if target.endswith("open")
                else f"{target}('os').{rng.choice(DANGEROUS[-4:])}({rng.choice(paths)})"
            )
        elif roll < 0.55:
            name = rng.choice(DANGEROUS[:9])
            owner = rng.choice(["np", "np.zeros(3)", "np.lib.npyio"])
            call = f"{owner}.{name}({rng.choice(paths)}{', np.zeros(2)' if name in ('save', 'savetxt') else ''})"
        else:
            call = f"{rng.choice(pool)}({', '.join(rng.choice(args) for _ in range(rng.randint(0, 2)))})"
        lines += ["    try:", f"        x = {call}", "    except Exception:", "        pass"]
    lines.append("    return 0.0, {}")
    return "\n".join(lines) + "\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_random_programs_touch_no_file_and_no_socket(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "existing.txt").write_text("untouched\n")
    before = snapshot(canary)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/x.npy"
    rng, pool = random.Random(20261201), attribute_pool()
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    try:
        for _ in range(PROGRAMS):
            if time.monotonic() - started > BUDGET_S:
                break
            source = program(rng, pool, canary, url)
            try:
                with RewardSandbox._unchecked(source, guards=False, timeout_s=2.0, memory_mb=256) as sandbox:
                    sandbox.call([{"step": 0}], [0])
                outcome = "ok"
            except RewardError as err:
                outcome = err.kind
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        with pytest.raises(BlockingIOError):
            server.accept()  # no program got a connection through
    finally:
        server.close()
    assert snapshot(canary) == before, "a fuzzed program changed the canary folder"
    print("outcomes:", outcomes)
    assert sum(outcomes.values()) >= 10 and "forbidden" in outcomes, outcomes  # the dangerous calls were reached
    assert os.getpid() > 0
