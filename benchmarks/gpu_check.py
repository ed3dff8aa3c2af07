"""What only a GPU can show, in one command: CUDA, bf16 training rates, EGL rendering, an nccl DDP step.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--budget small|full] [--skip agents,egl,ddp]
    make gpu-check

Checks, each in its own subprocess with a timeout, so one failure never hides the others:

  cuda     torch sees a CUDA device: its name, capability, memory, torch and CUDA versions
  agents   `benchmarks/agent_speed.py --device cuda --preset paper` for act, act_jepa and ptp
           (bf16 autocast training steps/s and act() latency at the published sizes)
  egl      a Meta-World frame rendered with MUJOCO_GL=egl on the GPU: ms per 64x64 frame, not blank
  ddp      one DistributedDataParallel step over nccl with one process (`torchrun --nproc-per-node=1`)

Writes one JSON (machine, date, commit, every check's status, figures and error) and
prints a table; exits non-zero if any check failed. The figures go in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("cuda", "agents", "egl", "ddp")
TIMEOUT_S = {"cuda": 120, "agents": 420, "egl": 180, "ddp": 180}

CUDA = """
import json, torch
assert torch.cuda.is_available(), "torch sees no CUDA device"
p = torch.cuda.get_device_properties(0)
x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
import time; t = time.perf_counter()
for _ in range(20): y = x @ x
torch.cuda.synchronize()
tflops = 20 * 2 * 4096**3 / (time.perf_counter() - t) / 1e12
print(json.dumps({"device": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": round(p.total_memory / 2**30, 1),
                  "count": torch.cuda.device_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
                  "bf16_matmul_tflops": round(tflops, 1)}))
"""

EGL = """
import json, os, time
os.environ["MUJOCO_GL"] = "egl"
import embodied.envs as envs
env = envs.make("embodied/MetaWorld-reach-v0", obs_mode="pixels", image_size=(64, 64))
obs, _ = env.reset(seed=0)
frames = []
t = time.perf_counter()
for _ in range(100):
    obs, *_ = env.step(env.action_space.sample())
elapsed = time.perf_counter() - t
image = next(v for k, v in obs.items()) if isinstance(obs, dict) else obs
assert image.std() > 1.0, "the EGL frame is blank"
print(json.dumps({"backend": os.environ["MUJOCO_GL"], "ms_per_step_with_frame": round(elapsed / 100 * 1e3, 2),
                  "frame_std": round(float(image.std()), 1)}))
"""

DDP = """
import json, os, torch, torch.distributed as dist
dist.init_process_group("nccl")
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(512, 512).cuda())
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
before = model.module.weight.detach().clone()
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss = model(torch.randn(64, 512, device="cuda")).square().mean()
loss.backward()
opt.step()
changed = bool((model.module.weight - before).abs().max() > 0)
assert changed, "the DDP step changed no weight"
if dist.get_rank() == 0:
    print(json.dumps({"backend": dist.get_backend(), "world_size": dist.get_world_size(), "loss": round(float(loss), 4)}))
dist.destroy_process_group()
"""


def run(command: list[str], timeout: float, env: dict[str, str] | None = None, parse: bool = True) -> dict[str, Any]:
    """Run one check; {"status": "ok", **the JSON on its last line} or {"status": "failed", "error": <last line>}."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout:g} s", "seconds": timeout}
    seconds = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return {
            "status": "failed",
            "error": lines[-1][:500] if lines else f"exit {proc.returncode}",
            "seconds": seconds,
        }
    return {"status": "ok", **(json.loads(proc.stdout.strip().splitlines()[-1]) if parse else {}), "seconds": seconds}


def check(name: str, budget: str, workdir: Path) -> dict[str, Any]:
    python = sys.executable
    if name == "cuda":
        return run([python, "-c", CUDA], TIMEOUT_S[name])
    if name == "egl":
        return run([python, "-c", EGL], TIMEOUT_S[name], env={"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"})
    if name == "ddp":
        script = workdir / "ddp_step.py"
        script.write_text(DDP)
        return run([python, "-m", "torch.distributed.run", "--nproc-per-node=1", str(script)], TIMEOUT_S[name])
    out = workdir / "agent_speed.json"
    command = [python, "benchmarks/agent_speed.py", "--budget", budget, "--agents", "act,act_jepa,ptp", "--preset", "paper",
               "--device", "cuda", "--json", str(out)]  # fmt: skip
    result = run(command, TIMEOUT_S[name], parse=False)
    if result["status"] != "ok" or not out.exists():
        return result
    data = json.loads(out.read_text())
    return {"status": "ok", "command": data["command"], "rows": data["rows"], "seconds": result.get("seconds")}


def git_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return proc.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON to write")
    parser.add_argument("--budget", choices=("tiny", "small", "full"), default="small", help="agent_speed.py's budget")
    parser.add_argument("--skip", default="", help=f"comma-separated checks to skip, of: {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(CHECKS):
        parser.error(f"unknown check {sorted(skip - set(CHECKS))[0]!r}; choose from: {', '.join(CHECKS)}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CHECKS:
            if name in skip:
                continue
            print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
            results[name] = check(name, args.budget, Path(tmp))
            if name == "cuda" and results[name]["status"] != "ok":
                break  # nothing else can run
    command = shlex.join(["python", "benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])])
    record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
              "host": platform.node(), "cpus": os.cpu_count(), "command": command, "checks": results}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1))
    print("| check | status | result |\n|---|---|---|")
    for name, result in results.items():
        shown = {k: v for k, v in result.items() if k not in ("status", "rows", "command")}
        print(f"| {name} | {result['status']} | {json.dumps(shown)[:300]} |")
        for row in result.get("rows", []):
            print(f"|  | {row.get('agent')} | {json.dumps(row)[:300]} |")
    print(f"\n{command}")
    return 0 if results and all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
