"""Static checks on LLM-written reward code, and the error every sandbox failure raises.

`check_source` parses the code and walks its AST without running it. It is the first
of three layers (the worker's restricted builtins and audit hook are the others), and
the one that gives the Critic the most precise feedback: every problem, with its line.
"""
from __future__ import annotations

import ast
from typing import Any

from embodied.errors import EmbodiedError

KINDS = ("syntax", "forbidden", "signature", "exception", "timeout", "memory", "cpu", "bad_return", "crashed")
ALLOWED_MODULES = frozenset({"math", "numpy"})

# Builtins that read or run arbitrary code, reach frames or namespaces, or build classes.
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "globals", "locals", "vars", "dir", "getattr", "setattr",
    "delattr", "hasattr", "input", "breakpoint", "help", "exit", "quit", "memoryview", "type",
    "object", "super", "classmethod", "staticmethod", "property",
})

# Attribute names forbidden on any object: `m = np; m.load` is as bad as `np.load`.
FORBIDDEN_ATTRS = frozenset({
    # frames and code objects lead to the worker's globals
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code",
    "ag_await", "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame",
    "tb_next", "mro",
    # str.format reads attributes named inside the format string
    "format", "format_map",
    # numpy: files, pickles, raw memory, compilers, test runners, module internals
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile",
    "tofile", "fromregex", "frombuffer", "fromstring", "memmap", "DataSource", "dump", "dumps",
    "ctypes", "ctypeslib", "lib", "core", "distutils", "f2py", "testing", "test", "show_config",
    "show_runtime", "info", "lookfor", "get_include", "as_strided", "stride_tricks", "compat",
    # stdlib modules that numpy submodules expose as attributes, and their dangerous cousins
    "os", "sys", "builtins", "subprocess", "socket", "importlib", "io", "pickle", "shutil", "pathlib",
    "mmap", "signal", "resource", "threading", "multiprocessing", "gc", "inspect", "operator",
    "functools", "itertools", "warnings", "abc", "re", "textwrap",
})

# Statements with no use in a reward and real use in an escape.
FORBIDDEN_NODES: dict[type, str] = {
    ast.ClassDef: "class definitions", ast.Global: "`global`", ast.AsyncFunctionDef: "async functions",
    ast.AsyncFor: "`async for`", ast.AsyncWith: "`async with`", ast.Await: "`await`",
    ast.Yield: "`yield`", ast.YieldFrom: "`yield from`",
}


class RewardError(EmbodiedError):
    """A designed reward failed a static check or a call: what, where, and on which view.

    `kind` is one of KINDS; `line` is a line of the reward source where known; `view` is
    the `info["mc"]` dict the failing call received (None for static and start-up errors).
    """

    def __init__(self, kind: str, message: str, line: int | None = None, view: dict | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown RewardError kind {kind!r}")
        self.kind, self.line, self.view = kind, line, view
        self.message = " ".join(str(message).split())
        super().__init__(f"{kind}{'' if line is None else f' at line {line}'}: {self.message}")

    def __reduce__(self) -> tuple:  # survives pickling between processes (vector-env workers)
        return type(self), (self.kind, self.message, self.line, self.view)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable record for the Reward Critic and run artifacts."""
        return {"kind": self.kind, "message": self.message, "line": self.line, "view": _plain(self.view)}


def _plain(x: Any) -> Any:
    """`x` with tuples as lists, numpy scalars as Python numbers and unknown objects as repr."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x.item() if hasattr(x, "item") and getattr(x, "shape", None) == () else repr(x)


def _bad_name(name: str | None) -> bool:
    return name is not None and name != "_" and (name.startswith("_") or name in FORBIDDEN_NAMES)


class _Checker(ast.NodeVisitor):
    """Collects every forbidden construct in a module."""

    def __init__(self) -> None:
        self.problems: list[RewardError] = []

    def _forbid(self, node: ast.AST, message: str) -> None:
        self.problems.append(RewardError("forbidden", message, getattr(node, "lineno", None)))

    def _name(self, node: ast.AST, name: str | None) -> None:
        if _bad_name(name):
            self._forbid(node, f"name `{name}` is not allowed (no builtins that run code or reach internals, no names starting with `_`)")

    def _attr(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("_") or attr in FORBIDDEN_ATTRS:
            self._forbid(node, f"attribute `.{attr}` is not allowed (no `_` attributes, file/IO, introspection or module internals)")

    def generic_visit(self, node: ast.AST) -> None:
        if type(node) in FORBIDDEN_NODES:
            self._forbid(node, f"{FORBIDDEN_NODES[type(node)]} are not allowed in reward code")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._name(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attr(node, node.attr)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] not in ALLOWED_MODULES or (parts[0] == "math" and len(parts) > 1):
                self._forbid(node, f"import of `{alias.name}` is not allowed (only `math` and `numpy`)")
            for part in parts[1:]:
                self._attr(node, part)
            self._name(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module.split(".")[0] not in ALLOWED_MODULES:
            self._forbid(node, f"import from `{'.' * node.level}{module}` is not allowed (only `math` and `numpy`)")
        for part in module.split(".")[1:]:
            self._attr(node, part)
        for alias in node.names:
            if alias.name == "*":
                self._forbid(node, "`import *` is not allowed; import the names you use")
            else:
                self._attr(node, alias.name)
                self._name(node, alias.asname)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._name(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._name(node, node.arg)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._name(node, node.name)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:  # `case C(attr=x)` reads subject.attr
            self._attr(node, attr)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._name(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._name(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._name(node, node.rest)
        self.generic_visit(node)


def _signature(tree: ast.Module) -> list[RewardError]:
    """Exactly one top-level `def reward(view, memory)`, never rebound."""
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "reward"]
    if not defs:
        return [RewardError("signature", "define a top-level function `def reward(view, memory)`")]
    problems = [RewardError("signature", "`reward` is defined more than once", d.lineno) for d in defs[1:]]
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        aliases = [a.asname or a.name for a in stmt.names] if isinstance(stmt, (ast.Import, ast.ImportFrom)) else []
        if "reward" in aliases or any(isinstance(t, ast.Name) and t.id == "reward" for t in targets):
            problems.append(RewardError("signature", "`reward` must stay the function defined with `def`", stmt.lineno))
    fn, args = defs[0], defs[0].args
    if args.vararg or args.kwarg or args.kwonlyargs or len(args.posonlyargs) + len(args.args) != 2:
        problems.append(RewardError("signature", "`reward` must take exactly two positional parameters: `def reward(view, memory)`", fn.lineno))
    if fn.decorator_list:
        problems.append(RewardError("signature", "`reward` must not be decorated", fn.lineno))
    return problems


def check_source(source: str) -> list[RewardError]:
    """Every static problem in reward source (kinds syntax, forbidden, signature); [] means OK.

    Nothing is executed: the source is parsed, its AST walked, and compiled (to catch the
    syntax errors only the compiler reports, such as `return` outside a function). A
    syntax error is reported alone.
    """
    try:
        tree = ast.parse(source, filename="<reward>")
        checker = _Checker()
        checker.visit(tree)
        problems = checker.problems + _signature(tree)
        compile(tree, "<reward>", "exec", dont_inherit=True)
    except SyntaxError as err:
        return [RewardError("syntax", err.msg, err.lineno)]
    except (ValueError, RecursionError) as err:  # null bytes; expressions nested too deeply to parse or walk
        return [RewardError("syntax", f"{type(err).__name__}: {err}")]
    return sorted(problems, key=lambda p: p.line or 0)
