"""Safe execution of LLM-designed reward functions (Auto MC-Reward).

A designed reward is Python source defining `def reward(view, memory) -> (total, {name:
value})`, where `view` is `info["mc"]` and `memory` a dict that persists within an
episode. It is untrusted, so it goes through three layers:

1. `check_source`: static AST rules (imports only math and numpy; no `_` names or
   attributes, no builtins that run code or reach internals, no file/IO/internal numpy
   attributes, no classes, generators, async or `global`) and the `reward` signature;
2. `RewardSandbox`: a separate worker process with restricted builtins, an audit hook
   that blocks files, sockets, processes and imports while reward code runs, memory and
   CPU rlimits, and a per-call timeout enforced by the parent;
3. return validation: (finite number, {str: finite number}), never bool.

Every failure raises `RewardError` (kind, message, line, the view that triggered it),
which `as_dict()` turns into the record the Reward Critic reads. Nothing is ever
silently replaced by zero. POSIX only (rlimits); the memory limit is exact on Linux.
"""
from embodied.sandbox.checks import RewardError, check_source
from embodied.sandbox.sandbox import RewardSandbox

__all__ = ["RewardError", "RewardSandbox", "check_source"]
