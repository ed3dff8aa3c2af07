"""The performance suite's plumbing (benchmarks/run_all.py): subprocesses, failures, results JSON, README table.

No speeds are asserted: a tiny budget on a subset, only the shape of what is written.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("benchmarks_run_all", ROOT / "benchmarks" / "run_all.py")
run_all = sys.modules["benchmarks_run_all"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)  # by path: benchmarks/ is not put on sys.path

README = f"""# project

intro text

## Performance

{run_all.START}
old table
{run_all.END}

## Benchmarks

the rest, untouched
"""


def table_rows(text: str) -> list[str]:
    """Body rows of every Markdown table in `text` (no header, no separator)."""
    lines = text.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            continue  # a header
        if line.startswith("| "):
            rows.append(line)
    return rows


def run_suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/run_all.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_suite_writes_results_and_table_and_reports_failures(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    results = tmp_path / "results.json"
    proc = run_suite(
        tmp_path,
        "--budget",
        "tiny",
        "--only",
        "sandbox,agent_speed",
        "--agents",
        "ppo",
        "--results",
        str(results),
        "--readme",
        str(readme),
        "--work",
        str(tmp_path / "work"),
        "--inject-failure",
        "error",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the injected failure; the real benchmarks ran
    assert "error: 1 of 3 benchmark jobs failed: injected_failure" in proc.stderr

    data = json.loads(results.read_text())
    assert data["budget"] == "tiny" and data["status"] == "failed" and data["failed"] == ["injected_failure"]
    assert {"date", "git_commit", "command", "duration_s", "machine", "benchmarks"} <= set(data)
    assert {"cpu", "cores", "torch", "torch_threads"} <= set(data["machine"])
    entries = {e["name"]: e for e in data["benchmarks"]}
    assert list(entries) == ["sandbox", "agent_speed:ppo", "injected_failure"]
    for entry in entries.values():
        assert {"name", "benchmark", "command", "status", "seconds", "rows"} <= set(entry)

    sandbox = entries["sandbox"]
    assert sandbox["status"] == "ok" and sandbox["rows"]
    for row in sandbox["rows"]:
        assert row["command"].startswith("python benchmarks/sandbox_overhead.py ") and "--json" not in row["command"]
        assert {"reward", "variant", "calls_per_s", "ratio"} <= set(row)

    (agent,) = entries["agent_speed:ppo"]["rows"]
    assert entries["agent_speed:ppo"]["status"] == "ok"
    assert agent["command"] == "python benchmarks/agent_speed.py --budget tiny --agents ppo"
    assert agent["agent"] == "ppo" and agent["train_unit"] == "env steps/s" and agent["torch_threads"] == 1
    for key in ("train_rate", "latency_ms_median", "latency_ms_p90"):
        assert isinstance(agent[key], float) and agent[key] > 0

    failed = entries["injected_failure"]
    assert failed["status"] == "failed" and failed["rows"] == []
    assert failed["error"].startswith("exit status 1: error: injected failure")

    # The README: only the text between the markers changed; every table row names its command.
    text = readme.read_text()
    head, _, rest = text.partition(run_all.START)
    inside, _, tail = rest.partition(run_all.END)
    assert head == README.partition(run_all.START)[0] and tail == README.partition(run_all.END)[2]
    assert "old table" not in inside
    rows = table_rows(inside)
    assert len(rows) == len(sandbox["rows"]) + 1 + 1  # sandbox rows, the agent, the failure
    for row in rows:
        assert row.rstrip().endswith("` |") and "`python " in row, row
    (failure_row,) = [r for r in rows if "injected_failure" in r]
    assert "**failed**: exit status 1: error: injected failure" in failure_row

    # --rerun-failed runs only the failed job again, keeps the other entries and records the re-run.
    proc = run_suite(
        tmp_path,
        "--budget",
        "tiny",
        "--only",
        "sandbox,agent_speed",
        "--agents",
        "ppo",
        "--results",
        str(results),
        "--readme",
        str(readme),
        "--work",
        str(tmp_path / "work"),
        "--inject-failure",
        "error",
        "--rerun-failed",
    )
    assert proc.returncode == 1 and "[1/1]" in proc.stderr, proc.stderr[-2000:]
    again = json.loads(results.read_text())
    kept = [e for e in again["benchmarks"] if e["name"] != "injected_failure"]
    assert kept == [e for e in data["benchmarks"] if e["name"] != "injected_failure"]
    assert again["reruns"][0]["jobs"] == ["injected_failure"] and again["date"] == data["date"]
    (rerun,) = [e for e in again["benchmarks"] if e["name"] == "injected_failure"]
    assert rerun["rerun_of_failure"].startswith("exit status 1: error: injected failure")
    assert "Re-run with `python benchmarks/run_all.py" in readme.read_text()

    # --update re-runs the named jobs, whatever their status, and keeps every other entry.
    proc = run_suite(tmp_path, "--budget", "tiny", "--only", "sandbox", "--results", str(results), "--readme",
                     str(readme), "--work", str(tmp_path / "work"), "--update")  # fmt: skip
    updated = json.loads(results.read_text())
    assert [e["name"] for e in updated["benchmarks"]] == [e["name"] for e in again["benchmarks"]]
    assert [e for e in updated["benchmarks"] if e["name"] != "sandbox"] == [
        e for e in again["benchmarks"] if e["name"] != "sandbox"
    ]
    assert updated["reruns"][-1]["jobs"] == ["sandbox"] and "--update" in updated["reruns"][-1]["command"]
    assert "UTC: sandbox." in readme.read_text()


def test_a_hanging_job_is_killed_and_recorded_as_failed(tmp_path: Path) -> None:
    job = run_all.Job("hangs", "injected", ["-c", "import time; time.sleep(60)"], timeout_s=1)
    entry = run_all.run_job(job, tmp_path)
    assert entry["status"] == "failed" and entry["error"] == "timed out after 1 s" and entry["rows"] == []
    assert entry["seconds"] < 30


def test_update_readme_rewrites_only_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert run_all.check_readme(readme) is None
    run_all.update_readme(readme, "| a | b |")
    run_all.update_readme(readme, "new table")  # idempotent: a second run replaces the first
    assert readme.read_text() == README.replace("old table", "new table")
    broken = tmp_path / "broken.md"
    broken.write_text("no markers here\n")
    assert "needs exactly one" in run_all.check_readme(broken)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--only", "nope", "--results", "{tmp}/r.json", "--no-readme"], "unknown benchmark 'nope'"),
        (["--agents", "nope", "--results", "{tmp}/r.json", "--no-readme"], "unknown agent 'nope'"),
        (["--budget", "tiny", "--no-readme"], "--budget tiny only checks the plumbing"),
    ],
)
def test_bad_arguments_fail_before_running_anything(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run_suite(tmp_path, *(a.format(tmp=tmp_path) for a in args), "--work", str(tmp_path / "work"))
    assert proc.returncode == 2 and needle in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_missing_markers_fail_before_running_anything(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    proc = run_suite(
        tmp_path, "--readme", str(readme), "--results", str(tmp_path / "r.json"), "--work", str(tmp_path / "work")
    )
    assert proc.returncode == 2 and "needs exactly one" in proc.stderr
    assert not (tmp_path / "r.json").exists() and readme.read_text() == "# no markers\n"


def test_the_table_lives_in_benchmarks_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """By default the table goes to benchmarks/README.md, which holds the only generated copy; the top-level README has none."""
    assert run_all.TABLE_PATH == ROOT / "benchmarks" / "README.md"
    assert run_all.check_readme(run_all.TABLE_PATH) is None
    assert run_all.START not in (ROOT / "README.md").read_text()
    unmarked = tmp_path / "README.md"
    unmarked.write_text("# no markers\n")
    monkeypatch.setattr(run_all, "TABLE_PATH", unmarked)  # main() reads the default when it builds its parser
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--results", str(tmp_path / "r.json"), "--work", str(tmp_path / "work")])
    assert exit_info.value.code == 2 and f"{unmarked} needs exactly one" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_every_registered_agent_is_benchmarked(monkeypatch: pytest.MonkeyPatch) -> None:
    from embodied.agents import REGISTRY

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # agent_speed imports benchmarks/common.py
    spec = importlib.util.spec_from_file_location("benchmarks_agent_speed", ROOT / "benchmarks" / "agent_speed.py")
    agent_speed = sys.modules["benchmarks_agent_speed"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent_speed)
    assert set(run_all.AGENTS) == set(agent_speed.AGENTS) == set(REGISTRY)
    assert set(run_all.PUBLISHED_SIZE) == {"act", "act_jepa", "ptp"}, "read from the registry's published_size"
    for name, bench in agent_speed.AGENTS.items():
        assert bench.imitation == bool(bench.preset), f"{name}: an imitation agent needs a size preset"
