"""Runtime guards for reward code, used inside the worker process (stdlib only).

These are the Python layer: they turn what reward code must not do into clear error
messages early. They are not what keeps reward code contained; the kernel is (`kernel.py`).

* `restricted_builtins`: a small allowlist; `__import__` hands out only the modules the
  worker preloaded and `print` is a no-op, both compiled in a namespace of their own;
* `install_audit_guard`: an audit hook that, while armed, refuses every audited action
  (opening files, sockets, processes, imports, frame and code-object access, ...) and
  records it even if the reward swallows the exception;
* `plain_message`: an exception's text built without running any reward-defined code;
* `validate`: a reward's return must be (finite number, {str: finite number}), never bool
  (the parent checks the values again with its own modules).
"""

from __future__ import annotations

import builtins
import math
import numbers
import reprlib
import sys
from typing import Any, Callable

SAFE_BUILTINS = (
    "abs",
    "all",
    "any",
    "bool",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "hash",
    "int",
    "isinstance",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "format",
    "bin",
    "hex",
    "oct",
    "ascii",
    "Ellipsis",
    "NotImplemented",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "Exception",
    "IndexError",
    "KeyError",
    "LookupError",
    "NotImplementedError",
    "OverflowError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
)
HARMLESS_EVENTS = frozenset({"builtins.id"})  # numpy's repr calls id()
MAX_COMPONENTS, MAX_NAME = 64, 100  # keep a reply small whatever the reward returns
_NUMBERS, _PAIR = frozenset({float, int}), (tuple, list)
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class Violation(Exception):
    """Reward code tried something the runtime layer blocks."""


class BadReturn(Exception):
    """The reward returned something other than (finite number, {str: finite number})."""


_HELPERS = """
def __import__(name, globals=None, locals=None, fromlist=(), level=0):
    found = module(name) if level == 0 else None
    if found is not None:
        if fromlist or "." not in name:
            return found
        return module(name.partition(".")[0])
    audit("sandbox.import", name)  # the worker's audit hook records the attempt, with its line, and raises
    raise Violation("import of " + repr(name) + " is blocked")
def print(*args, **kwargs):
    return None
"""
_HELPER_CODE = compile(_HELPERS, "<sandbox>", "exec")
_SAFE = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
_PLAIN = (str, int, float, bool, type(None))


def restricted_builtins(module: Callable[[str], Any]) -> dict[str, Any]:
    """A reward namespace's `__builtins__`: `__import__` hands out what `module(name)` returns (None: blocked).

    The two helpers run in a namespace holding only what they need, so their globals lead nowhere.
    """
    scope = {"__builtins__": {"repr": repr}, "module": module, "audit": sys.audit, "Violation": Violation}
    exec(_HELPER_CODE, scope)
    return {
        **_SAFE,
        "True": True,
        "False": False,
        "None": None,
        "__import__": scope["__import__"],
        "print": scope["print"],
    }


def reward_line(frame: Any, namespaces: set[int]) -> int | None:
    """Line of the innermost frame of reward code at or above `frame`: one whose globals are a reward namespace.

    (f_globals, f_back and f_lineno raise no audit event, unlike f_code.)
    """
    while frame is not None and id(frame.f_globals) not in namespaces:
        frame = frame.f_back
    return None if frame is None else frame.f_lineno


def type_name(value: Any) -> str:
    """The name of `value`'s type, read through `type` itself (a metaclass cannot substitute its own)."""
    return _TYPE_NAME.__get__(type(value))


def plain_message(exc: BaseException, with_type: bool = True, limit: int = 300) -> str:
    """ "Type: message" for an exception, built from plain data only: no reward-defined __str__ or __repr__ runs.

    Arguments that are not exactly str, int, float, bool or None are shown as <type name>.
    """
    args = _ARGS.__get__(exc)
    if type(args) is not tuple:
        args = ()
    shown = [
        a
        if type(a) is str and len(args) == 1 and type(exc) is not KeyError
        else repr(a)
        if type(a) in _PLAIN
        else f"<{type_name(a)}>"
        for a in args[:4]
    ]
    text = ", ".join(s[:limit] for s in shown)
    name = type_name(exc)
    return (f"{name}: {text}" if with_type else text)[:limit].rstrip(": ") or name


_TYPE_NAME = type.__dict__["__name__"]
_ARGS = BaseException.__dict__["args"]


def install_audit_guard(blocked: list, namespaces: set[int]) -> list[bool]:
    """Audit hook refusing every audited event while armed; returns its [armed, allow_one_exec] switches.

    The switches live only in this closure and the caller's locals, never in module
    globals. It gives clear messages; the kernel layer (kernel.py) is what contains code that gets past it.
    """
    state = [False, False]

    def hook(event: str, args: tuple) -> None:
        if not state[0] or event in HARMLESS_EVENTS:
            return
        if event == "exec" and state[1]:  # the one exec() the worker itself runs (the reward module)
            state[1] = False
            return
        state[0] = False  # frame access below raises audit events of its own
        try:
            line = reward_line(sys._getframe(1), namespaces)
        finally:
            state[0] = True
        what = (
            f"import of {args[0]!r} is blocked" if event == "sandbox.import" else f"{event} is blocked in reward code"
        )
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
            raise BadReturn(
                f"component names must be str of at most {MAX_NAME} characters, got {type(name).__name__} {_short.repr(name)}"
            )
    values = [_number(total, "total"), *(_number(v, f"component {n!r}") for n, v in comps.items())]
    return tuple(comps), values
