"""Static checks on LLM-written reward code, and the error every sandbox failure raises.

`check_source` parses the code and walks its AST without running it. It is the Python
layer that gives the Critic the most precise feedback (every problem, with its line);
it is not what contains hostile code (the worker's kernel layer is), so its rules are
only those that name something a reward cannot do anyway, or should not need:
imports beyond RULES' modules, names and attributes starting with `_`, builtins that
run code or reach internals (unless the reward binds the name itself, like a local
`dir` or `sum`), numpy's file and memory functions, classes, generators, async and
`global`. `RULES` is the list the Designer's prompt and docs/sandbox.md show.
"""

from __future__ import annotations

import ast
from typing import Any

from embodied.errors import EmbodiedError

KINDS = (
    "syntax",
    "forbidden",
    "signature",
    "exception",
    "timeout",
    "memory",
    "cpu",
    "bad_return",
    "crashed",
    "protocol",
)
ALLOWED_MODULES = frozenset({"math", "numpy", "typing", "collections", "itertools", "functools"})
MAX_SOURCE = 100_000  # characters; an LLM's reward is a few thousand
RULES = (
    "Import only math, numpy, typing, collections, itertools and functools (and `from __future__ import annotations`).",
    "No names or attributes that start with an underscore (no dunders).",
    "No exec, eval, compile, open, getattr/setattr/delattr/hasattr, globals/locals/vars, type, object, super or "
    "input as builtins (a local variable of that name is fine).",
    "No file, pickle or raw-memory functions (np.load, np.save, tofile, fromfile, memmap, ...).",
    "No classes, generators (yield), async code or `global`; keep state in `memory`.",
    "Return (total, {name: value}) with finite numbers and a fixed set of at most 64 component names.",
    "The code runs in a worker with no files, network, processes or environment variables; a call that "
    "takes longer than the timeout or more memory than the limit fails.",
)

# Builtins that read or run arbitrary code, reach frames or namespaces, or build classes.
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
    }
)

# Attribute names forbidden on any object: `m = np; m.load` is as bad as `np.load`.
FORBIDDEN_ATTRS = frozenset(
    {
        # frames and code objects lead to the worker's globals
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "mro",
        # Cython functions' Python 2 aliases lead to their module's globals
        "func_globals",
        "func_code",
        "func_closure",
        "func_dict",
        "func_defaults",
        # numpy: files, pickles, raw memory, compilers, test runners, module internals
        "load",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "fromregex",
        "frombuffer",
        "fromstring",
        "memmap",
        "DataSource",
        "dump",
        "dumps",
        "ctypes",
        "ctypeslib",
        "lib",
        "core",
        "distutils",
        "f2py",
        "testing",
        "test",
        "show_config",
        "show_runtime",
        "info",
        "lookfor",
        "get_include",
        "as_strided",
        "stride_tricks",
        "compat",
        # stdlib modules that numpy submodules expose as attributes, and their dangerous cousins
        "os",
        "sys",
        "builtins",
        "subprocess",
        "socket",
        "importlib",
        "io",
        "pickle",
        "shutil",
        "pathlib",
        "mmap",
        "signal",
        "resource",
        "threading",
        "multiprocessing",
        "gc",
        "inspect",
    }
)

# Statements with no use in a reward and real use in an escape.
FORBIDDEN_NODES: dict[type, str] = {
    ast.ClassDef: "class definitions",
    ast.Global: "`global`",
    ast.AsyncFunctionDef: "async functions",
    ast.AsyncFor: "`async for`",
    ast.AsyncWith: "`async with`",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield from`",
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


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the module binds anywhere (assignments, parameters, defs, imports, except and match captures)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


class _Checker(ast.NodeVisitor):
    """Collects every forbidden construct in a module."""

    def __init__(self, bound: set[str]) -> None:
        self.problems: list[RewardError] = []
        self.bound = bound

    def _bad_name(self, name: str | None, binding: bool) -> bool:
        if name is None or name == "_":
            return False
        return name.startswith("_") or (name in FORBIDDEN_NAMES and not binding and name not in self.bound)

    def _forbid(self, node: ast.AST, message: str) -> None:
        self.problems.append(RewardError("forbidden", message, getattr(node, "lineno", None)))

    def _name(self, node: ast.AST, name: str | None, binding: bool = True) -> None:
        if self._bad_name(name, binding):
            self._forbid(
                node,
                f"name `{name}` is not allowed (no builtins that run code or reach internals, no names starting with `_`)",
            )

    def _attr(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("_") or attr in FORBIDDEN_ATTRS:
            self._forbid(
                node,
                f"attribute `.{attr}` is not allowed (no `_` attributes, file/IO, introspection or module internals)",
            )

    def generic_visit(self, node: ast.AST) -> None:
        if type(node) in FORBIDDEN_NODES:
            self._forbid(node, f"{FORBIDDEN_NODES[type(node)]} are not allowed in reward code")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._name(node, node.id, binding=not isinstance(node.ctx, ast.Load))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attr(node, node.attr)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] not in ALLOWED_MODULES or (parts[0] != "numpy" and len(parts) > 1):
                self._forbid(node, f"import of `{alias.name}` is not allowed (only {_MODULES})")
            for part in parts[1:]:
                self._attr(node, part)
            self._name(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module == "__future__" and not node.level:  # compiler directives, e.g. `annotations`
            return
        if node.level or module.split(".")[0] not in ALLOWED_MODULES:
            self._forbid(node, f"import from `{'.' * node.level}{module}` is not allowed (only {_MODULES})")
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


_MODULES = ", ".join(f"`{m}`" for m in sorted(ALLOWED_MODULES))


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
        problems.append(
            RewardError(
                "signature",
                "`reward` must take exactly two positional parameters: `def reward(view, memory)`",
                fn.lineno,
            )
        )
    if fn.decorator_list:
        problems.append(RewardError("signature", "`reward` must not be decorated", fn.lineno))
    return problems


def check_source(source: str | bytes) -> list[RewardError]:
    """Every static problem in reward source (kinds syntax, forbidden, signature); [] means OK.

    Nothing is executed: the source is parsed, its AST walked, and compiled (to catch the
    syntax errors only the compiler reports, such as `return` outside a function). A
    syntax error is reported alone. Any input, however large, deep or badly encoded,
    gives RewardErrors, never another exception.
    """
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError as err:
            return [RewardError("syntax", f"reward source is not UTF-8 (byte {err.start}); write it as UTF-8 text")]
    if not isinstance(source, str):
        return [RewardError("syntax", f"reward source must be text, not {type(source).__name__}")]
    if len(source) > MAX_SOURCE:
        return [
            RewardError("syntax", f"reward source is {len(source):,} characters; at most {MAX_SOURCE:,} are allowed")
        ]
    try:
        tree = ast.parse(source, filename="<reward>")
        checker = _Checker(_bound_names(tree))
        checker.visit(tree)
        problems = checker.problems + _signature(tree)
        compile(tree, "<reward>", "exec", dont_inherit=True)
    except SyntaxError as err:
        return [RewardError("syntax", err.msg, err.lineno)]
    except (ValueError, RecursionError, MemoryError, UnicodeError, OverflowError) as err:
        # null bytes, lone surrogates; expressions nested too deeply to parse, walk or compile
        return [
            RewardError("syntax", f"the code cannot be compiled ({type(err).__name__}); nested too deeply or malformed")
        ]
    return sorted(problems, key=lambda p: p.line or 0)


def view_keys(source: str) -> tuple[str, ...] | None:
    """The top-level view keys `reward` reads, when it only reads them as view["k"], view.get("k") or "k" in view.

    None (send the whole view) when the view is used any other way: passed on, iterated,
    rebound, indexed by a variable. The parent sends only these keys, a pure speed-up.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "reward"]
    if len(defs) != 1 or not defs[0].args.args:
        return None
    name, keys, allowed = defs[0].args.args[0].arg, set(), set()
    try:
        nodes = list(ast.walk(defs[0]))
    except RecursionError:
        return None
    for node in nodes:
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key, target = node.slice, node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and not node.keywords
            and len(node.args) <= 2
        ):
            key, target = node.args[0], node.func.value
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            key, target = node.left, node.comparators[0]
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None
            keys.add(key.value)
            allowed.add(id(target))
    for node in nodes:
        if isinstance(node, ast.Name) and node.id == name and id(node) not in allowed:
            return None
        if isinstance(node, ast.arg) and node.arg == name and node is not defs[0].args.args[0]:
            return None
    return tuple(sorted(keys))
