"""What the local server's prompt cache saves when design requests interleave.

    python benchmarks/llm_prompt_cache.py [--threads 1] [--cache-mb 512]

Replays six real Designer/Critic prompts from the committed CollectWood and DiamondLava design
records (benchmarks/designed/) in the order a design run, or two sharing a server, sends them:
a Designer prompt, a Critic prompt, the same Designer prompt for the next candidate, a revision
(the first prompt plus an answer and feedback), another job's Designer prompt, the revision again.
Each is asked for one token, so the time is prompt evaluation. It runs once with
llm.local.prompt_cache_mb=0 (llama.cpp keeps only the last prompt) and once with the cache, then
prints seconds per request, the server's peak memory and the command line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import command_line

from embodied.llm.config import LocalServerConfig
from embodied.llm.models import DEFAULT_MODEL
from embodied.llm.server import server_argv, wait_for

ALIAS = DEFAULT_MODEL  # the pinned model llm=local serves
DESIGNED = Path(__file__).parent / "designed"
SEQUENCE = (
    ("Designer", "CollectWood", "designer/1/2/0"),
    ("Critic", "CollectWood", "critic/1/1/0"),
    ("Designer, next candidate (same prompt)", "CollectWood", "designer/1/2/0"),
    ("revision of it", "CollectWood", "designer/1/2/1"),
    ("another job's Designer", "DiamondLava", "designer/1/0/0"),
    ("the revision again", "CollectWood", "designer/1/2/1"),
)


def stored_messages(task: str) -> dict[str, list]:
    """tag -> request messages of a committed design record."""
    out = {}
    for path in (DESIGNED / task / "llm_store").glob("*-0.json"):
        entry = json.loads(path.read_text())
        out[entry["tag"]] = entry["request"]["messages"]
    return out


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timings(
    stores: dict[str, dict[str, list]], cache_mb: int, threads: int, port: int
) -> tuple[list[tuple[int, float]], float]:
    """(prompt tokens, seconds) per request of SEQUENCE against a fresh server, and the server's peak RSS in MB."""
    local = LocalServerConfig(enabled=True, threads=threads, prompt_cache_mb=cache_mb)
    proc = subprocess.Popen(
        server_argv(local, ALIAS, "127.0.0.1", port, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        if not wait_for(url, ALIAS, local.startup_timeout_s):
            raise SystemExit(f"the server did not answer on {url}")
        out = []
        for _, task, tag in SEQUENCE:
            body = {"model": ALIAS, "messages": stores[task][tag], "max_tokens": 1, "temperature": 0}
            request = urllib.request.Request(
                url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=3600) as reply:
                usage = json.loads(reply.read())["usage"]
            out.append((usage["prompt_tokens"], time.perf_counter() - start))
        return out, peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-mb", type=int, default=512)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args(argv)
    stores = {task: stored_messages(task) for task in {t for _, t, _ in SEQUENCE}}
    off, off_rss = timings(stores, 0, args.threads, args.port)
    on, on_rss = timings(stores, args.cache_mb, args.threads, args.port)
    lines = [
        f"Prompt evaluation, s per request ({args.threads} llama.cpp thread(s); one token generated)",
        "",
        "| request | prompt tokens | no cache | prompt cache |",
        "|---|---:|---:|---:|",
    ]
    for (name, _, _), (tokens, a), (_, b) in zip(SEQUENCE, off, on):
        lines.append(f"| {name} | {tokens} | {a:.1f} | {b:.1f} |")
    lines.append(f"| **total** | | **{sum(t for _, t in off):.0f}** | **{sum(t for _, t in on):.0f}** |")
    lines.append(f"| server's peak RSS (MB) | | {off_rss:.0f} | {on_rss:.0f} |")
    print("\n".join(lines) + f"\n\n{command_line('benchmarks/llm_prompt_cache.py', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
