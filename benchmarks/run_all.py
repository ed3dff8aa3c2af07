"""The performance suite: every performance benchmark, one results file, the Performance table in benchmarks/README.md.

    python benchmarks/run_all.py [--budget small|full] [--only env_throughput,pixel_throughput,minecraft_throughput,agent_speed,sandbox]
                                 [--agents sac,ppo,...] [--results benchmarks/results.json] [--readme benchmarks/README.md] [--no-readme]

Benchmarks (each job runs in its own subprocess with a timeout, one after another so they
do not share the cores):

  env_throughput        our Meta-World envs vs raw Meta-World v3 (benchmarks/env_throughput.py)
  pixel_throughput      camera frames and pixel env steps: our fast profile vs Meta-World's rendering, workers, GL
                        backends (benchmarks/pixel_throughput.py)
  minecraft_throughput  our Crafter envs vs raw crafter.Env, with and without numba (benchmarks/minecraft_throughput.py)
  agent_speed           training rate and act() latency of every registered agent, one job per
                        agent (benchmarks/agent_speed.py; full also times act, act_jepa and ptp at
                        their published sizes)
  sandbox               reward calls/s through the reward sandbox vs in-process (benchmarks/sandbox_overhead.py)

`--budget small` takes about 3 minutes on 2 idle cores (numbers for a quick look), `full` about
25 minutes (the numbers to quote); `tiny` only checks the plumbing (tests). A job that fails or
times out is recorded as failed with its error line, never as a number; the suite goes on
and exits with status 1 at the end. Writes `--results` (rows, each with the command that
reproduces it, plus machine, date, git commit and budget) and rewrites the text between
`<!-- perf-table:start -->` and `<!-- perf-table:end -->` in `--readme` (default: benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from embodied.agents.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
TABLE_PATH = ROOT / "benchmarks" / "README.md"  # the Markdown file whose marked section is the generated table
BENCHMARKS = ("env_throughput", "pixel_throughput", "minecraft_throughput", "agent_speed", "sandbox")
AGENTS = tuple(REGISTRY)
PUBLISHED_SIZE = tuple(name for name, spec in REGISTRY.items() if spec.bench.published_size)  # --preset paper too
SCRIPTS = {
    "env_throughput": "benchmarks/env_throughput.py",
    "pixel_throughput": "benchmarks/pixel_throughput.py",
    "minecraft_throughput": "benchmarks/minecraft_throughput.py",
    "agent_speed": "benchmarks/agent_speed.py",
    "sandbox": "benchmarks/sandbox_overhead.py",
}
ARGS: dict[str, dict[str, list[str]]] = {  # benchmark -> budget -> arguments
    "env_throughput": {
        "tiny": ["--steps", "200", "--tasks", "reach", "--repeats", "1", "--no-vector"],
        "small": ["--steps", "2000", "--tasks", "reach", "--repeats", "2"],
        "full": [
            "--steps",
            "4000",
            "--tasks",
            "reach,door-open,pick-place",
            "--repeats",
            "3",
        ],
    },
    "pixel_throughput": {
        "tiny": ["--envs", "tabletop", "--sizes", "32", "--seconds", "0.1", "--repeats", "1", "--measure", "frames"],
        "small": [
            "--envs",
            "reach,tabletop",
            "--sizes",
            "64",
            "--seconds",
            "1",
            "--repeats",
            "1",
            "--measure",
            "frames,steps,vector",
        ],
        "full": ["--seconds", "2", "--repeats", "3"],
    },
    "minecraft_throughput": {
        "tiny": ["--workers", "1", "--seconds", "0.5", "--variants", "raw+numba,ours symbolic"],
        "small": ["--workers", "2", "--seconds", "3"],
        "full": ["--workers", "2", "--seconds", "30"],
    },
    "sandbox": {
        "tiny": ["--seconds", "0.05", "--repeats", "1", "--views", "64"],
        "small": ["--seconds", "0.5", "--repeats", "1"],
        "full": ["--seconds", "3", "--repeats", "3"],
    },
}
TIMEOUT_S: dict[str, dict[str, float]] = {  # budget -> benchmark -> seconds per job (several times the expected time)
    "tiny": {
        "env_throughput": 120,
        "pixel_throughput": 120,
        "minecraft_throughput": 120,
        "agent_speed": 180,
        "sandbox": 120,
    },
    "small": {
        "env_throughput": 240,
        "pixel_throughput": 300,
        "minecraft_throughput": 300,
        "agent_speed": 300,
        "sandbox": 180,
    },
    "full": {
        "env_throughput": 1200,
        "pixel_throughput": 1800,
        "minecraft_throughput": 900,
        "agent_speed": 900,
        "sandbox": 600,
    },
}


@dataclass
class Job:
    """One subprocess of the suite."""

    name: str
    benchmark: str
    argv: list[str]
    """Script and arguments, relative to the repository root, without --json."""
    timeout_s: float

    @property
    def command(self) -> str:
        """The command that reproduces this job's numbers."""
        return "python " + shlex.join(self.argv)


def plan(budget: str, only: list[str], agents: list[str], inject_failure: str | None = None) -> list[Job]:
    """The jobs of a suite run, in order."""
    jobs = []
    for name in only:
        timeout = TIMEOUT_S[budget][name]
        if name != "agent_speed":
            jobs.append(Job(name, name, [SCRIPTS[name], *ARGS[name][budget]], timeout))
            continue
        for agent in agents:
            jobs.append(
                Job(f"agent_speed:{agent}", name, [SCRIPTS[name], "--budget", budget, "--agents", agent], timeout)
            )
        if budget == "full":
            for agent in (a for a in agents if a in PUBLISHED_SIZE):
                argv = [SCRIPTS[name], "--budget", budget, "--agents", agent, "--preset", "paper"]
                jobs.append(Job(f"agent_speed:{agent}:paper", name, argv, timeout))
    if inject_failure == "error":  # tests: a benchmark that fails
        jobs.append(
            Job(
                "injected_failure",
                "injected",
                ["-c", "import sys; sys.exit('error: injected failure (run_all --inject-failure)')"],
                60,
            )
        )
    elif inject_failure == "timeout":  # tests: a benchmark that hangs
        jobs.append(Job("injected_timeout", "injected", ["-c", "import time; time.sleep(60)"], 1))
    return jobs


# --- running ----------------------------------------------------------------------------------
def error_line(stderr: str, returncode: int) -> str:
    """The line that says why a job failed: its `error: ...` line, else its last stderr line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else "no output")
    return f"exit status {returncode}: {chosen[:300]}"


def finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def rows_of(benchmark: str, data: Any) -> list[dict[str, Any]]:
    """A benchmark's --json output as flat rows."""
    if benchmark in ("env_throughput", "pixel_throughput"):
        return [dict(r) for r in data["rows"]]
    if benchmark == "minecraft_throughput":
        results = data["results"]
        raw, numba = (results.get(k, {}).get("steps_per_s") for k in ("raw", "raw+numba"))
        return [
            {
                "variant": variant,
                **r,
                "workers": data["workers"],
                "seconds": data["seconds"],
                "vs_raw": r["steps_per_s"] / raw if raw else None,
                "vs_raw_numba": r["steps_per_s"] / numba if numba else None,
            }
            for variant, r in results.items()
        ]
    if benchmark == "agent_speed":
        return [dict(r) for r in data["rows"]]
    if benchmark == "sandbox":
        return [dict(r) for r in data]
    return []


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a job started with start_new_session=True and the workers it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_job(job: Job, work: Path) -> dict[str, Any]:
    """Run one job in its own process group; its entry for results.json (status ok or failed)."""
    out_json = work / f"{job.name.replace(':', '_')}.json"
    out_json.unlink(missing_ok=True)
    argv = [sys.executable, *job.argv] + (["--json", str(out_json)] if job.benchmark in BENCHMARKS else [])
    entry: dict[str, Any] = {
        "name": job.name,
        "benchmark": job.benchmark,
        "command": job.command,
        "timeout_s": job.timeout_s,
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        stdout, stderr = proc.communicate(timeout=job.timeout_s)
        error = error_line(stderr, proc.returncode) if proc.returncode != 0 else None
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
        error = f"timed out after {job.timeout_s:g} s"
    except KeyboardInterrupt:  # the job runs in its own session, so Ctrl-C does not reach it
        kill_group(proc)
        raise
    entry["seconds"] = round(time.perf_counter() - start, 1)
    (work / f"{job.name.replace(':', '_')}.log").write_text(
        f"$ {job.command}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    )
    if error is None:
        try:
            rows = rows_of(job.benchmark, json.loads(out_json.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            error = f"unreadable results ({type(err).__name__}: {err})"
        else:
            if not rows:
                error = "no results written"
    if error is not None:
        return {**entry, "status": "failed", "error": error, "rows": []}
    return {**entry, "status": "ok", "rows": [{**finite(r), "command": job.command} for r in rows]}


# --- what the numbers come from ---------------------------------------------------------------
def git_commit(root: Path = ROOT) -> str | None:
    """HEAD's commit, read from .git (no git process)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU, cores, torch and the threads the benchmarks use."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": metadata.version("torch"),
        "torch_threads": 1,  # agent_speed sets one thread; each row records what it used
        "torch_default_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# --- the README table -------------------------------------------------------------------------
def _num(value: Any, fmt: str = ",.0f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def _code(command: str) -> str:
    """A command as table-safe inline code."""
    return "`" + command.replace("|", "\\|") + "`"


def _failed_row(entry: dict[str, Any], columns: int) -> str:
    cells = (
        [entry["name"], f"**failed**: {entry['error']}".replace("|", "\\|")]
        + [""] * (columns - 3)
        + [_code(entry["command"])]
    )
    return "| " + " | ".join(cells) + " |"


def load(results: dict[str, Any]) -> str:
    """ ", load average X at the start, Y at the end" (1 min), or nothing where unknown."""
    start, end = results["machine"].get("load_average_at_start"), results.get("load_average_at_end")
    return f", load average {start[0]:.1f} at the start and {end[0]:.1f} at the end" if start and end else ""


def table(results: dict[str, Any]) -> str:
    """The Markdown that goes between the README markers."""
    m = results["machine"]
    commit = (results.get("git_commit") or "unknown")[:10]
    lines = [
        f"Generated by `{results['command']}` (budget `{results['budget']}`, {results['duration_s'] / 60:.1f} min) on "
        f"{results['date'][:16].replace('T', ' ')} UTC, commit {commit}: {m['cpu']}, {m['cores']} cores, torch {m['torch']}{load(results)}. "
        f"Raw numbers: `{results['results_path']}`. `make bench` reruns the small budget; `--budget full` gives the numbers to quote. "
        "Every row names the command that reproduces it; a failed benchmark shows its error, never a number.",
    ]
    for rerun in results.get("reruns", []):
        errors = "; ".join(
            f"{e['name']} ({e['rerun_of_failure']})"
            for e in results["benchmarks"]
            if e["name"] in rerun["jobs"] and e.get("rerun_of_failure")
        )
        when = f" Re-run with `{rerun['command']}` on {rerun['date'][:16].replace('T', ' ')} UTC"
        lines[0] += f"{when} after failing: {errors}." if errors else f"{when}: {', '.join(rerun['jobs'])}."
    by_benchmark: dict[str, list[dict[str, Any]]] = {}
    for entry in results["benchmarks"]:
        by_benchmark.setdefault(entry["benchmark"], []).append(entry)

    def section(title: str, header: list[str], numeric: int, fmt_row: Any, entries: list[dict[str, Any]]) -> None:
        """A titled table: `header` (the command column is added), the last `numeric` columns right-aligned."""
        header = [*header, "command"]
        align = ["---"] * (len(header) - 1 - numeric) + ["---:"] * numeric + ["---"]
        lines.extend(["", title, "", "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"])
        for entry in entries:
            if entry["status"] != "ok":
                lines.append(_failed_row(entry, len(header)))
                continue
            lines.extend("| " + " | ".join([*fmt_row(r), _code(r["command"])]) + " |" for r in entry["rows"])

    def agent_row(r: dict[str, Any]) -> list[str]:
        details = [f"preset {r['preset']}" if r.get("preset") else "", r.get("notes") or ""]
        experiment = r["experiment"] + "".join(f", {d}" for d in details if d)
        what = r["latency_what"] + (
            f"; a cached step: {r['cached_ms_median']:.3f} ms" if r.get("cached_ms_median") is not None else ""
        )
        return [
            r["agent"],
            experiment,
            what,
            f"{r['train_rate']:,.1f} {r['train_unit']}",
            f"{r['latency_ms_median']:.2f} / {r['latency_ms_p90']:.2f}",
        ]

    if "env_throughput" in by_benchmark:
        section(
            "**Env throughput, Meta-World**: ours vs raw Meta-World v3 (random actions, resets included; vector rows: "
            "2-worker async vs 1-env sync, so the ratio is the speed-up)",
            ["env", "mode", "reference steps/s", "ours steps/s", "ratio"],
            3,
            lambda r: [r["env"], r["mode"], _num(r["raw"]), _num(r["ours"]), _num(r["ratio"], ".2f")],
            by_benchmark["env_throughput"],
        )
    if "pixel_throughput" in by_benchmark:
        section(
            "**Pixels on a CPU**: camera frames/s and pixel-observation env steps/s of our `fast` render profile against "
            "Meta-World's own rendering (our scenes: against our `full` profile), one core each unless the row says "
            "otherwise; the worker rows give the speed-up of ShardedVecEnv",
            ["env", "measurement", "reference", "ours", "ratio"],
            3,
            lambda r: [r["env"], r["mode"], _num(r["raw"], ",.1f"), _num(r["ours"], ",.1f"), _num(r["ratio"], ".2f")],
            by_benchmark["pixel_throughput"],
        )
    if "minecraft_throughput" in by_benchmark:
        section(
            "**Env throughput, Minecraft-like worlds**: our Crafter envs vs `crafter.Env` (uniform-random policy, resets "
            "included, every variant on the same cores)",
            ["variant", "env steps/s", "vs raw", "vs raw+numba", "mean reset (ms)"],
            4,
            lambda r: [
                r["variant"],
                _num(r["steps_per_s"]),
                _num(r["vs_raw"], ".1f", "×"),
                _num(r["vs_raw_numba"], ".1f", "×"),
                _num(r["reset_ms"], ".1f"),
            ],
            by_benchmark["minecraft_throughput"],
        )
    if "agent_speed" in by_benchmark:
        section(
            "**Agents**: training rate of the agent's own learn loop on its experiment's env after a warm-up, over whole "
            "rollout + update cycles (start-up, dataset loading and evaluation excluded; imitation agents count gradient "
            "updates on a small scripted-expert dataset); inference latency of `agent.act(obs)` on one observation, CPU, "
            "1 torch thread",
            ["agent", "experiment", "act() times", "training rate", "act() ms, median / p90"],
            2,
            agent_row,
            by_benchmark["agent_speed"],
        )
    if "sandbox" in by_benchmark:
        section(
            "**Reward sandbox overhead**: reward calls/s through the sandbox worker vs the same reward in-process "
            "(recorded Crafter views)",
            ["reward", "variant", "calls/s", "µs per call", "vs in-process"],
            3,
            lambda r: [
                r["reward"],
                r["variant"],
                _num(r["calls_per_s"]),
                _num(r["us_per_call"], ".1f"),
                _num(r["ratio"], ".2f"),
            ],
            by_benchmark["sandbox"],
        )
    other = [e for e in results["benchmarks"] if e["benchmark"] not in BENCHMARKS]
    if other:
        section("**Other jobs**", ["job", "result"], 0, lambda r: [], other)
    return "\n".join(lines)


def update_readme(path: Path, text: str) -> None:
    """Replace what lies between the markers (and nothing else)."""
    content = path.read_text()
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    os.replace(tmp, path)


def display_path(path: Path) -> str:
    """`path` relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check_readme(path: Path) -> str | None:
    """Why `path` cannot take the table, or None."""
    try:
        content = path.read_text()
    except OSError as err:
        return f"cannot read {path}: {err.strerror}"
    if content.count(START) != 1 or content.count(END) != 1 or content.index(START) > content.index(END):
        return f"{path} needs exactly one '{START}' followed by one '{END}'"
    return None


def previous_error(results: dict[str, Any], name: str) -> str | None:
    """The error a job had in an earlier results file."""
    return next((e.get("error") for e in results["benchmarks"] if e["name"] == name), None)


# --- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget",
        choices=("tiny", "small", "full"),
        default="small",
        help="small: ~3 min, full: ~25 min (2 cores); tiny: plumbing tests only",
    )
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--agents", default=",".join(AGENTS), help="agents for agent_speed")
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks" / "results.json", help="where the results JSON goes"
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=TABLE_PATH,
        help="the Markdown file whose marked table is rewritten (default: benchmarks/README.md)",
    )
    parser.add_argument("--no-readme", action="store_true", help="do not touch the --readme file")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "runs" / "bench" / "run_all", help="each job's log and raw JSON"
    )
    parser.add_argument("--list", action="store_true", help="print the jobs (commands and timeouts) and exit")
    parser.add_argument(
        "--rerun-failed",
        action="store_true",
        help="re-run only the jobs that failed in --results (same budget) and record that they were re-run",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-run the --only jobs (same budget) and keep every other entry of --results, recording the re-run",
    )
    parser.add_argument("--inject-failure", choices=("error", "timeout"), help=argparse.SUPPRESS)  # tests
    args = parser.parse_args(argv)
    raw_argv = argv if argv is not None else sys.argv[1:]

    only = [b.strip() for b in args.only.split(",") if b.strip()]
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if unknown := [b for b in only if b not in BENCHMARKS]:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from: {', '.join(BENCHMARKS)}")
    if unknown := [a for a in agents if a not in AGENTS]:
        parser.error(f"unknown agent {unknown[0]!r}; choose from: {', '.join(AGENTS)}")
    if args.list:
        for job in plan(args.budget, only, agents, args.inject_failure):
            print(f"{job.name:<28} timeout {job.timeout_s:>5.0f} s  {job.command}")
        return 0
    if args.budget == "tiny" and (
        not any(a.startswith("--results") for a in raw_argv)
        or not (args.no_readme or any(a.startswith("--readme") for a in raw_argv))
    ):
        parser.error(
            "--budget tiny only checks the plumbing: pass --results PATH and --readme PATH (or --no-readme) so its numbers go nowhere they could be quoted"
        )
    if not args.no_readme and (problem := check_readme(args.readme)):
        parser.error(problem)
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)

    jobs = plan(args.budget, only, agents, args.inject_failure)
    previous: dict[str, Any] | None = None
    if args.rerun_failed or args.update:
        flag = "--rerun-failed" if args.rerun_failed else "--update"
        previous = json.loads(args.results.read_text()) if args.results.exists() else None
        if previous is None or previous.get("budget") != args.budget:
            parser.error(f"{flag} needs {args.results} from a --budget {args.budget} run")
        if args.rerun_failed:
            jobs = [job for job in jobs if job.name in previous["failed"]]
        if not jobs:
            parser.error(f"{flag}: no job of this selection {'failed ' if args.rerun_failed else ''}in {args.results}")
    started, date = time.perf_counter(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    info = machine()
    entries = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.command}", file=sys.stderr, flush=True)
        entry = run_job(job, args.work)
        status = "ok" if entry["status"] == "ok" else f"FAILED: {entry['error']}"
        print(f"        {status} ({entry['seconds']:.0f} s)", file=sys.stderr, flush=True)
        entries.append(entry)

    if previous is not None:  # keep the earlier run's entries; the re-run ones replace theirs, marked as such
        rerun = {e["name"]: {**e, "rerun_of_failure": previous_error(previous, e["name"])} for e in entries}
        known = {e["name"] for e in previous["benchmarks"]}
        entries = [rerun.get(e["name"], e) for e in previous["benchmarks"]] + [
            e for n, e in rerun.items() if n not in known
        ]
    failed = [e["name"] for e in entries if e["status"] != "ok"]
    command = "python " + shlex.join(["benchmarks/run_all.py", *raw_argv])
    if previous is not None:
        command, date = previous["command"], previous["date"]
    results = {
        "schema": 1,
        "command": command,
        "budget": args.budget,
        "date": date,
        "git_commit": git_commit(),
        "machine": info,
        "duration_s": round(time.perf_counter() - started, 1),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "status": "failed" if failed else "ok",
        "failed": failed,
        "results_path": display_path(args.results),
        "benchmarks": entries,
    }
    if previous is not None:  # the header describes the original run; the re-run keeps its own load figures
        results["duration_s"], results["machine"] = previous["duration_s"], previous["machine"]
        results["load_average_at_end"] = previous.get("load_average_at_end")
        results["reruns"] = [
            *previous.get("reruns", []),
            {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": "python " + shlex.join(["benchmarks/run_all.py", *raw_argv]),
                "jobs": [e["name"] for e in rerun.values()],
                "load_average": {"start": info.get("load_average_at_start"), "end": list(os.getloadavg())},
            },
        ]
    tmp = args.results.with_name(f".{args.results.name}.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, args.results)
    text = table(results)
    if not args.no_readme:
        update_readme(args.readme, text)
    print(text)
    print(f"\nresults: {args.results}" + ("" if args.no_readme else f"; table written to {args.readme}"))
    if failed:
        print(f"error: {len(failed)} of {len(entries)} benchmark jobs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
