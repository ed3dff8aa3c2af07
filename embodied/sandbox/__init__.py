"""Running LLM-designed reward functions (Auto MC-Reward) as hostile code.

A designed reward is Python source defining `def reward(view, memory) -> (total, {name:
value})`, where `view` is `info["mc"]` and `memory` a dict that persists within an
episode. The kernel is what contains it (docs/sandbox.md has the threat model):

1. `RewardSandbox` runs it in a worker process that, after start-up, is locked down by
   the kernel (`kernel.py`: seccomp-bpf, Landlock, a network namespace, rlimits, no
   privileges), with an empty environment and only its pipes;
2. the parent trusts nothing the worker sends: size caps, one deadline per batched
   call, values validated with its own modules, capped stderr and names;
3. `check_source` (static AST rules), restricted builtins and an audit hook give clear,
   early messages for what the reward must not do; they are not relied on for safety.

Every failure raises `RewardError` (kind, message, line, the view that triggered it),
which `as_dict()` turns into the record the Reward Critic reads. Nothing is ever
silently replaced by zero. Linux on x86-64 or arm64 for the kernel layer; elsewhere
`isolation="python"` must be chosen explicitly.
"""

from embodied.sandbox.checks import RULES, RewardError, check_source
from embodied.sandbox.sandbox import IsolationError, RewardSandbox

__all__ = ["RULES", "IsolationError", "RewardError", "RewardSandbox", "check_source"]
