"""Runtime guards for reward code, used inside the worker process (stdlib only).

* `restricted_builtins`: a small allowlist; `__import__` hands out only the preloaded
  math and numpy modules and `print` is a no-op, both compiled in a namespace of their
  own so that their globals lead nowhere;
* `install_audit_guard`: an audit hook that, while armed, refuses every audited action
  (opening files, sockets, processes, imports, frame and code-object access, ...) and
  records it even if the reward swallows the exception;
* `validate`: a reward's return must be (finite number, {str: finite number}), never bool.
"""
from __future__ import annotations

import builtins
import math
import numbers
import reprlib
import sys
from typing import Any

SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "callable", "chr", "complex", "dict", "divmod", "enumerate", "filter",
    "float", "frozenset", "hash", "int", "isinstance", "iter", "len", "list", "map", "max", "min",
    "next", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError",
    "KeyError", "LookupError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
)
HARMLESS_EVENTS = frozenset({"builtins.id"})  # numpy's repr calls id()
MAX_COMPONENTS, MAX_NAME = 64, 100  # keep a reply small whatever the reward returns
_NUMBERS, _STR, _PAIR = frozenset({float, int}), frozenset({str}), (tuple, list)
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class Violation(Exception):
    """Reward code tried something the runtime layer blocks."""


class BadReturn(Exception):
    """The reward returned something other than (finite number, {str: finite number})."""


_HELPERS = '''
def __import__(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name in modules:
        return modules[name] if fromlist else modules[name.partition(".")[0]]
    audit("sandbox.import", name)  # the worker's audit hook records the attempt, with its line, and raises
    raise Violation("import of " + repr(name) + " is blocked")
def print(*args, **kwargs):
    return None
'''


def restricted_builtins(modules: dict[str, Any]) -> dict[str, Any]:
    """The reward's `__builtins__`; the two helpers are compiled in a namespace holding only what they need."""
    scope = {"__builtins__": {"repr": repr}, "modules": modules, "audit": sys.audit, "Violation": Violation}
    exec(compile(_HELPERS, "<sandbox>", "exec"), scope)
    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    return {**safe, "True": True, "False": False, "None": None, "__import__": scope["__import__"], "print": scope["print"]}


def reward_line(frame: Any, namespace: dict) -> int | None:
    """Line of the innermost frame of reward code at or above `frame` (f_globals raises no audit event)."""
    while frame is not None and frame.f_globals is not namespace:
        frame = frame.f_back
    return None if frame is None else frame.f_lineno


def install_audit_guard(blocked: list, namespace: dict) -> list[bool]:
    """Audit hook refusing every audited event while armed; returns its [armed, allow_one_exec] switches.

    The switches live only in this closure and the caller's locals, never in module
    globals, so reward code that reached this module's namespace still could not disarm it.
    """
    state = [False, False]

    def hook(event: str, args: tuple) -> None:
        if not state[0] or event in HARMLESS_EVENTS:
            return
        if event == "exec" and state[1]:  # the one exec() that loads the reward module
            state[1] = False
            return
        state[0] = False  # frame access below raises audit events of its own
        try:
            line = reward_line(sys._getframe(1), namespace)
        finally:
            state[0] = True
        what = f"import of {args[0]!r} is blocked" if event == "sandbox.import" else f"{event} is blocked in reward code"
        blocked.append((what, line))
        raise Violation(what)

    sys.addaudithook(hook)
    return state


def _number(value: Any, what: str) -> float:
    """`value` as a finite float; bool, complex, arrays and non-numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadReturn(f"{what} must be a real number, got {type(value).__name__} {_short.repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise BadReturn(f"{what} is too large for a float") from None
    if not math.isfinite(number):
        raise BadReturn(f"{what} is {number} (must be finite)")
    return number


def validate(out: Any, schemas: dict[tuple[str, ...], int]) -> tuple[int, list[float]]:
    """The index in `schemas` of the component names (added if new) and [total, *components] as floats.

    Raises BadReturn saying what is wrong. Names are checked once per new schema.
    """
    if type(out) in _PAIR and len(out) == 2 and type(out[1]) is dict:  # fast path: plain floats and ints
        names, values = tuple(out[1]), [out[0], *out[1].values()]
        if names in schemas and _NUMBERS.issuperset(map(type, values)):
            try:
                values = list(map(float, values))
            except OverflowError:
                values = [math.inf]
            if math.isfinite(sum(values)):  # a NaN or inf anywhere makes the sum non-finite
                return schemas[names], values
    names, values = _explain(out)
    return schemas.setdefault(names, len(schemas)), values


def _explain(out: Any) -> tuple[tuple[str, ...], list[float]]:
    """The slow path of `validate`: numpy scalars and large values pass, anything else raises with a reason."""
    if type(out) not in _PAIR or len(out) != 2:
        raise BadReturn(f"reward must return (total, components), got {type(out).__name__} {_short.repr(out)}")
    total, comps = out
    if type(comps) is not dict:
        raise BadReturn(f"components must be a dict of name -> number, got {type(comps).__name__} {_short.repr(comps)}")
    if len(comps) > MAX_COMPONENTS:
        raise BadReturn(f"{len(comps)} components; at most {MAX_COMPONENTS} are allowed")
    for name in comps:
        if type(name) is not str or len(name) > MAX_NAME:
            raise BadReturn(f"component names must be str of at most {MAX_NAME} characters, got {type(name).__name__} {_short.repr(name)}")
    values = [_number(total, "total"), *(_number(v, f"component {n!r}") for n, v in comps.items())]
    return tuple(comps), values
