"""The docs users read stay true to the code: README commands, overrides, links, size.

- every console command the README names is a `[project.scripts]` entry or a Makefile target;
- every command line in the README's shell code blocks validates as the command itself would
  validate it (Hydra commands compose every sweep combination into the typed schemas; the
  key=value commands parse into their dataclass), so a misspelt key or option fails here;
- every relative link in README.md, docs/*.md, agents/*/README.md and benchmarks/README.md
  resolves to a file, and every `#anchor` to a heading of its target;
- README.md has at most 250 lines and no table cell over 200 characters.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted(
    [README, *(ROOT / "docs").glob("*.md"), *(ROOT / "agents").glob("*/README.md"), ROOT / "benchmarks" / "README.md"]
)


def _pyproject() -> dict:
    """pyproject.toml: tomllib where there is one (Python >= 3.11), else the two tables this test reads."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:
        tables: dict[str, dict[str, str]] = {}
        for header, body in re.findall(r"^\[([\w.-]+)\]\n(.*?)(?=^\[|\Z)", text, flags=re.MULTILINE | re.DOTALL):
            tables[header] = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"', body, flags=re.MULTILINE))
        return {"project": {**tables["project"], "scripts": tables["project.scripts"]}}
    return tomllib.loads(text)


PYPROJECT = _pyproject()
SCRIPTS = PYPROJECT["project"]["scripts"]
DISTRIBUTION = PYPROJECT["project"]["name"]
MAKE_TARGETS = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))

# How each console command checks its arguments: ("hydra", config name) or ("schema", "module:Class").
CHECKS = {
    "embodied-train": ("hydra", "config"),
    "embodied-design-reward": ("hydra", "design_reward"),
    "embodied-concept-shift": ("hydra", "concept_shift"),
    "embodied-rollout": ("schema", "embodied.rollout:RolloutConfig"),
    "embodied-collect": ("schema", "embodied.collect:CollectConfig"),
    "embodied-report": ("schema", "embodied.report:ReportConfig"),
    "embodied-llm": ("subcommands", "embodied.llm.cli:parse_options"),
}
MODULE_COMMANDS = {
    "embodied.train": "embodied-train",
    "embodied.rollout": "embodied-rollout",
    "embodied.collect": "embodied-collect",
    "embodied.report": "embodied-report",
}
MAX_README_LINES, MAX_CELL = 250, 200


# --- Markdown helpers -------------------------------------------------------------------------
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(text: str, languages: tuple[str, ...] = ("bash", "sh", "shell")) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang in languages]


def prose(text: str) -> str:
    """`text` without fenced code blocks and inline code spans (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of `path`'s headings (a repeated heading gets -1, -2, ... as on GitHub)."""
    found, counts = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", path.read_text()), flags=re.MULTILINE):
        base = slug(heading)
        found.add(base if base not in counts else f"{base}-{counts[base]}")
        counts[base] = counts.get(base, 0) + 1
    return found


def command_lines(block: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped, split at && ; |."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens:
            if token in ("&&", "||", ";", "|"):
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


def readme_commands() -> list[list[str]]:
    return [cmd for block in code_blocks(README.read_text()) for cmd in command_lines(block)]


# --- checking one command line ------------------------------------------------------------------
def check_arguments(command: str, args: list[str]) -> None:
    """Raise (ConfigError) where `command args` would be refused before it runs."""
    from embodied.cli import parse_args, validate_overrides
    from embodied.config import load_object

    kind, target = CHECKS[command]
    if kind == "hydra":
        validate_overrides(target, args)
    elif kind == "subcommands":
        from embodied.llm.cli import COMMANDS

        words = [a for a in args if a != "|"]
        assert words and words[0].split("|")[0] in COMMANDS, (
            f"{command} {shlex.join(args)}: no subcommand of {COMMANDS}"
        )
        if "|" not in words[0]:
            load_object(target)(words[0], words[1:])
    else:
        parse_args(load_object(target), args, command)


def check_command(tokens: list[str]) -> None:
    """Check one README command line; fail on key=value arguments of a command this test cannot check."""
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]  # VAR=value prefixes
    if not tokens:
        return
    word, args = tokens[0], tokens[1:]
    if word in CHECKS:
        check_arguments(word, args)
    elif word == "make":
        targets = [a for a in args if "=" not in a]
        assert targets and set(targets) <= MAKE_TARGETS, (
            f"make {' '.join(args)}: targets must be among {sorted(MAKE_TARGETS)}"
        )
        for a in args:
            if a.startswith("ARGS=") and "train" in targets:
                check_arguments("embodied-train", shlex.split(a.removeprefix("ARGS=")))
    elif "-m" in args and args[args.index("-m") + 1].startswith("embodied"):  # python -m / torchrun -m
        module = args[args.index("-m") + 1]
        assert module in MODULE_COMMANDS, f"-m {module}: not an entry point ({', '.join(MODULE_COMMANDS)})"
        check_arguments(MODULE_COMMANDS[module], args[args.index("-m") + 2 :])
    elif word.startswith("python") and args and args[0].endswith(".py"):
        assert (ROOT / args[0]).is_file(), f"{args[0]} does not exist"
    else:
        unchecked = [a for a in args if "=" in a and not a.startswith("-")]
        assert not unchecked, f"`{shlex.join(tokens)}`: key=value arguments of a command this test does not know"


# --- tests ----------------------------------------------------------------------------------------
def test_every_console_command_exists() -> None:
    assert set(CHECKS) == set(SCRIPTS), "a new [project.scripts] entry needs its check in CHECKS"
    text = README.read_text()
    code = "\n".join([*code_blocks(text), *inline_code(text)])
    named = set(re.findall(r"(?<![\w/.-])(embodied-[a-z][a-z-]*)", code)) - {DISTRIBUTION}
    assert named, "the README names no console command"
    assert named <= set(SCRIPTS), f"not in [project.scripts]: {sorted(named - set(SCRIPTS))}"
    targets = set(re.findall(r"(?<![\w-])make ([a-z][\w-]*)", code))
    assert {"train", "test"} <= targets <= MAKE_TARGETS, f"not Makefile targets: {sorted(targets - MAKE_TARGETS)}"
    for module in re.findall(r"-m (embodied\.[\w.]+)", code):
        assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"


@pytest.mark.parametrize("tokens", readme_commands(), ids=shlex.join)
def test_readme_command_line_is_valid(tokens: list[str]) -> None:
    check_command(tokens)


def test_the_checks_catch_a_misspelt_key_and_option() -> None:
    from embodied.errors import ConfigError

    with pytest.raises(ConfigError, match="agent.learning_rat"):
        check_command(["embodied-train", "experiment=sac_metaworld_reach", "agent.learning_rat=0.1"])
    with pytest.raises(ConfigError, match="unknown reward"):
        check_command(["embodied-train", "-m", "reward=sparse,handwriten"])
    with pytest.raises(ConfigError, match="episode"):
        check_command(["embodied-rollout", "run=x", "episode=3"])
    with pytest.raises(AssertionError):
        check_command(["pip", "install", "foo=1"])


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_short_with_short_table_cells() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}); move detail to docs/"
    )
    long_cells = []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            long_cells += [f"line {number}: {len(c.strip())} characters" for c in cells if len(c.strip()) > MAX_CELL]
    assert not long_cells, f"table cells over {MAX_CELL} characters: {long_cells}"


def test_readme_has_no_generated_or_project_history_text() -> None:
    text = README.read_text()
    assert "perf-table:" not in text, "the generated Performance table lives in benchmarks/README.md"
    for phrase in ("issue notes", "no GPU was", "in the session"):
        assert phrase not in text, f"README.md: {phrase!r} is about how the project was written"
