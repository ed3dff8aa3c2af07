"""benchmarks/act_jepa.py's expert flags: the embodied-collect overrides and the demos' name they produce."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling `common`
_spec = importlib.util.spec_from_file_location("benchmarks_act_jepa", ROOT / "benchmarks" / "act_jepa.py")
bench = sys.modules["benchmarks_act_jepa"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _options(*argv: str):
    parser_args = bench.argparse.Namespace(expert_gain=1.0, expert_smoothing=0.0, action_noise=0.0, expert_tasks="")
    for flag, value in zip(argv[::2], argv[1::2]):
        setattr(parser_args, flag.lstrip("-").replace("-", "_"), value if flag == "--expert-tasks" else float(value))
    return bench.expert_options(parser_args)


def test_default_expert_adds_nothing() -> None:
    assert _options() == ([], "")
    assert _options("--expert-tasks", "door-close") == ([], ""), "tasks alone change no data"


def test_expert_options_name_their_demos() -> None:
    overrides, suffix = _options(
        "--expert-smoothing", "0.8", "--action-noise", "0.2", "--expert-tasks", "door-close,disassemble"
    )
    assert overrides == ["expert_smoothing=0.8", "action_noise=0.2", "expert_tasks=[door-close,disassemble]"]
    assert suffix == "_smooth0.8_noise0.2-door-close-disassemble"
    assert _options("--expert-gain", "0.3") == (["expert_gain=0.3"], "_gain0.3")
