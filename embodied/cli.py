"""Command-line plumbing shared by every entry point.

- `run_command` turns `EmbodiedError` into one line on stderr and exit status 2.
- `hydra_command` validates overrides by composing them first, so a misspelt key
  or group option fails in one line naming the allowed keys or choices, instead of
  Hydra's multi-line report, and then hands over to `hydra.main` (runs, multiruns,
  launchers and sweepers all keep working). Hydra's own flags are told from the
  overrides by Hydra's own parser, so every flag works as in any Hydra app; `--help`
  lists only the group options a user can pick (conf/hydra/help/embodied.yaml).
- `parse_args` gives non-Hydra commands (`rollout`, `collect`) the same `key=value`
  syntax and the same messages, validated against a dataclass schema.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import functools
import itertools
import os
import re
import sys
from typing import Any, Callable, NoReturn, TypeVar

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from embodied.errors import ConfigError, EmbodiedError

CONFIG_MODULE = "embodied.conf"
T = TypeVar("T")


def run_command(fn: Callable[[], Any]) -> Any:
    """Run `fn`; report an EmbodiedError as one line and exit 2."""
    try:
        return fn()
    except EmbodiedError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


# --- messages ----------------------------------------------------------------------
def _allowed_keys(node: Any) -> list[str]:
    return sorted(str(k) for k in node.keys() if k != "hydra") if isinstance(node, DictConfig) else []


def _touches(override: str, full_key: str) -> bool:
    """Whether `override` sets `full_key`, a parent of it or a child of it."""
    key = override.lstrip("+~").split("=", 1)[0]
    return key == full_key or key.startswith(full_key + ".") or full_key.startswith(key + ".")


def _unknown_key_message(full_key: str, parent: Any) -> str:
    key = full_key.rsplit(".", 1)[-1]
    allowed = _allowed_keys(parent)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = (
        f" (did you mean '{full_key.rsplit('.', 1)[0] + '.' if '.' in full_key else ''}{close[0]}'?)" if close else ""
    )
    return f"unknown config key '{full_key}'{hint}; allowed keys here: {', '.join(allowed)}"


def _group_options(group: str) -> list[str]:
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()  # type: ignore[union-attr]
    names = loader.get_group_options(group)
    return sorted(n for n in names if not n.endswith("_schema"))


def explain(err: BaseException, overrides: list[str], compose: Callable[[list[str]], Any]) -> str:
    """One-line explanation of a composition error."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    cause: BaseException = err
    while isinstance(cause, ConfigCompositionException) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, MissingConfigException) or (isinstance(err, MissingConfigException)):
        missing = cause if isinstance(cause, MissingConfigException) else err
        text = str(missing)
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if "=" in override and "." not in key and f"'{key}/{value}'" in text:
                options = _group_options(key)
                close = difflib.get_close_matches(value, options, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                return f"unknown {key} '{value}'{hint}; choose one of: {', '.join(options)}"
        return text.splitlines()[0]
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = str(cause.full_key)
        others = [o for o in overrides if not _touches(o, full_key)]
        parent_key = full_key.rsplit(".", 1)[0] if "." in full_key else ""
        try:
            cfg = compose(others)
            parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        except Exception:  # noqa: BLE001 - best effort: still name the key
            parent = None
        return _unknown_key_message(full_key, parent)
    if isinstance(cause, ValidationError):
        key = getattr(cause, "full_key", "") or "?"
        first = str(cause).splitlines()[0]
        return f"bad value for '{key}': {first}"
    if isinstance(cause, OverrideParseException):
        return f"cannot parse override: {str(cause).splitlines()[0]}"
    match = re.search(r"In '([^']+)'.*Key '([^']+)' not in '([^']+)'.*full_key: (\S+)", " ".join(str(cause).split()))
    if match:
        source, _, schema, full_key = match.groups()
        return (
            f"config '{source}' sets '{full_key}', which {schema} does not have; "
            f"pick a config made for this choice (e.g. an experiment for this agent) or fix the key"
        )
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        first = str(cause).splitlines()[0]
        return f"{first} (key '{key}')" if key else first
    return " ".join(str(cause).split())


# --- Hydra commands ----------------------------------------------------------------
class _HydraPrintsAndExits(Exception):
    """Hydra's parser would print something and exit (--version): Hydra itself should do it."""


class _QuietParser(argparse.ArgumentParser):
    """Hydra's parser, made quiet: a parse error raises a one-line ConfigError, an exit raises _HydraPrintsAndExits."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _HydraPrintsAndExits

    def _print_message(self, message: str, file: Any = None) -> None:
        pass


@functools.cache
def _hydra_parser() -> argparse.ArgumentParser:
    """Hydra's own argparse definition (which flags take a value, an optional value, none), reused, not copied."""
    from hydra._internal.utils import get_args_parser

    return _QuietParser(parents=[get_args_parser()], add_help=False)


def _default_optional_values(argv: list[str]) -> list[str]:
    """`--info seed=1` means `--info=all seed=1`: a flag with an optional value (Hydra's --info) takes
    the next argument only if it is one of its choices, instead of failing on an override."""
    optional = {opt: a for a in _hydra_parser()._actions if a.nargs == "?" and a.choices for opt in a.option_strings}
    out = []
    for i, arg in enumerate(argv):
        action = optional.get(arg)
        if action is not None and (i + 1 == len(argv) or argv[i + 1] not in action.choices):  # type: ignore[operator]
            arg = f"{arg}={action.const}"
        out.append(arg)
    return out


def parse_hydra_argv(argv: list[str]) -> argparse.Namespace | None:
    """Split a Hydra command line with Hydra's own parser: its flags, and every override in `.overrides`.

    None where Hydra's parser prints and exits by itself (--version). Overrides after a flag count
    too (argparse would refuse them, and argv hooks append overrides); an unknown option is a
    one-line ConfigError naming the closest of Hydra's flags.
    """
    parser = _hydra_parser()
    try:
        args, extra = parser.parse_known_args(_default_optional_values(argv))
    except _HydraPrintsAndExits:
        return None
    unknown = [a.split("=", 1)[0] for a in extra if a.startswith("-")]
    if unknown:
        options = [a.option_strings[0] for a in parser._actions if a.option_strings]
        close = difflib.get_close_matches(unknown[0], options, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown option '{unknown[0]}'{hint}; Hydra's options: {', '.join(options)}")
    args.overrides = [*args.overrides, *extra]
    return args


def hydra_argv(args: argparse.Namespace, overrides: list[str] | None = None, multirun: bool | None = None) -> list[str]:
    """`args` as a command line Hydra's parser reads back the same: flags (`--flag`, `--flag=value`), then overrides."""
    flags = []
    for action in _hydra_parser()._actions:
        if not action.option_strings:
            continue
        value = multirun if action.dest == "multirun" and multirun is not None else getattr(args, action.dest, None)
        if value is True:
            flags.append(action.option_strings[0])
        elif value not in (None, False):
            flags.append(f"{action.option_strings[0]}={value}")
    return [*flags, *(args.overrides if overrides is None else overrides)]


def _acts_alone(args: argparse.Namespace) -> bool:
    """Flags after which Hydra prints something of its own or reruns a pickled job: no argv hook, no validation."""
    return bool(args.help or args.hydra_help or args.shell_completion or args.experimental_rerun is not None)


def _is_hydra_override(override: str) -> bool:
    """hydra.* and hydra/* overrides configure Hydra itself, not the job."""
    key = override.lstrip("+~").split("=", 1)[0]
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _expand_sweeps(overrides: list[str], limit: int | None = 64) -> list[list[str]]:
    """All combinations of a multirun's sweep overrides (the first `limit`), as plain overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"cannot parse overrides {' '.join(overrides)}: {str(err).splitlines()[0]}") from None
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            values = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            values = [override.input_line]
        choices.append(values)
    return [list(combo) for combo in itertools.islice(itertools.product(*choices), limit)]


def _initialize_hydra(config_path: str | None = None, config_dir: str | None = None) -> None:
    """Initialize Hydra with the config search path `hydra_command` gets, `--config-path`/`--config-dir` included."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery

    version.setbase("1.3")
    # The calling module is this one, as for hydra.main in hydra_command: a relative --config-path is under embodied/.
    search_path = create_automatic_config_search_path(None, __name__, config_path or f"pkg://{CONFIG_MODULE}")
    if config_dir is not None:
        path = os.path.abspath(config_dir)
        if not os.path.isdir(path):
            raise ConfigError(f"--config-dir '{config_dir}' is not a directory")
        search_path.prepend("command-line", f"file://{path}", anchor=SearchPathQuery(provider="schema"))
    Hydra.create_main_hydra2(task_name="embodied", config_search_path=search_path)


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose the config as Hydra would (without running anything)."""
    from hydra import compose as hydra_compose
    from hydra.core.global_hydra import GlobalHydra

    from embodied.config import register_configs

    register_configs()
    if not GlobalHydra.instance().is_initialized():
        _initialize_hydra()
    return hydra_compose(config_name=config_name, overrides=overrides)


def validate_overrides(config_name: str, argv: list[str]) -> None:
    """Compose every combination of argv's overrides as Hydra will (with its --config-name, --config-dir
    and --config-path); raise ConfigError on the first failure. Nothing to check where Hydra only
    prints (--help, --info, --shell-completion, --version) or reruns a pickled job."""
    from hydra.core.global_hydra import GlobalHydra

    args = parse_hydra_argv(argv)
    if args is None or _acts_alone(args) or args.info is not None:
        return
    overrides = [o for o in args.overrides if not _is_hydra_override(o)]
    name = args.config_name or config_name
    combos = _expand_sweeps(overrides) if args.multirun else [overrides]
    GlobalHydra.instance().clear()
    try:
        _initialize_hydra(args.config_path, args.config_dir)
        for combo in combos:
            try:
                cfg = compose(name, combo)
            except Exception as err:  # noqa: BLE001 - every composition failure becomes one line
                raise ConfigError(explain(err, combo, lambda o: compose(name, o))) from None
            to_dataclass(cfg)
    finally:
        GlobalHydra.instance().clear()


def to_dataclass(cfg: DictConfig) -> Any:
    """Instantiate the typed dataclasses (running their __post_init__ checks)."""
    if "hydra" in cfg:
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
    try:
        return OmegaConf.to_object(cfg)
    except EmbodiedError:
        raise
    except OmegaConfBaseException as err:
        raise ConfigError(explain(err, [], lambda o: cfg)) from None


HELP_GROUPS_RESOLVER = "embodied_config_groups"
"""Resolver of conf/hydra/help/embodied.yaml: the `--help` group listing."""


def config_groups_help(choices: DictConfig) -> str:
    """`group: option, ...` for each config group the command composes (`hydra.runtime.choices`), for `--help`.

    Unlike Hydra's $APP_CONFIG_GROUPS, it leaves out the `*_schema` entries (the typed bases the YAML
    options start from, not choices) and groups the command does not use.
    """
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():  # resolved outside a Hydra app: no config loader to ask
        return ""
    groups = sorted(str(g) for g in choices if g != "hydra" and not str(g).startswith("hydra/"))
    return "\n".join(f"{g}: {', '.join(_group_options(g))}" for g in groups) or "(none: set the keys below)"


def _show_each_job(args: argparse.Namespace, hydra_entry: Callable[[], Any]) -> None:
    """`-m --cfg ...` / `-m --info ...`: Hydra's output for each job of the sweep (Hydra refuses -m with these)."""
    for num, combo in enumerate(_expand_sweeps(args.overrides, limit=None)):
        print(f"# job {num}: {' '.join(o for o in combo if not _is_hydra_override(o))}", flush=True)
        sys.argv[1:] = hydra_argv(args, overrides=[*combo, "hydra.mode=MULTIRUN"], multirun=False)
        hydra_entry()


def hydra_command(
    task: Callable[[DictConfig], Any],
    config_name: str = "config",
    argv_hook: Callable[[list[str]], list[str]] | None = None,
) -> Callable[[], Any]:
    """Build a console-script `main` that validates overrides, then runs `task` under Hydra.

    Hydra's own flags pass through (parsed by Hydra's parser, so `--flag value` and `--flag=value`
    alike); `argv_hook` (run_dir checks, resume) and validation are skipped where Hydra only prints
    help, completion or its version, or reruns a pickled job.
    """
    import hydra

    def main() -> Any:
        from embodied.config import register_configs

        register_configs()
        if not OmegaConf.has_resolver(HELP_GROUPS_RESOLVER):
            OmegaConf.register_new_resolver(HELP_GROUPS_RESOLVER, config_groups_help)

        @hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=config_name, version_base="1.3")
        def _hydra_entry(cfg: DictConfig) -> Any:
            return run_command(lambda: task(cfg))

        args = run_command(lambda: parse_hydra_argv(sys.argv[1:]))
        if args is None:  # --version
            return _hydra_entry()
        if _acts_alone(args):
            sys.argv[1:] = hydra_argv(
                args, multirun=False
            )  # -m changes nothing here, but Hydra refuses it with --shell-completion
            return _hydra_entry()
        if argv_hook is not None:
            args = run_command(lambda: parse_hydra_argv(argv_hook(sys.argv[1:])))
        run_command(lambda: validate_overrides(config_name, hydra_argv(args)))
        if args.multirun and (args.cfg is not None or args.info is not None):
            return run_command(lambda: _show_each_job(args, _hydra_entry))
        sys.argv[1:] = hydra_argv(args)
        return _hydra_entry()

    return main


def fresh_run_dir_argv(argv: list[str], marker: str, what: str) -> list[str]:
    """argv hook for commands that start a new run: refuse a run_dir holding `marker`, map run_dir to Hydra's run dir."""
    from pathlib import Path

    values = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a and not a.startswith("-")}
    run_dir = values.get("run_dir")
    if run_dir and (Path(run_dir) / marker).exists():
        raise ConfigError(f"run_dir '{run_dir}' already holds {what}; choose a new run_dir")
    if run_dir and not any(a.startswith("hydra.run.dir=") for a in argv):
        argv = [*argv, f"hydra.run.dir={run_dir}"]
    return argv


# --- non-Hydra commands ------------------------------------------------------------
def parse_args(schema: type[T], argv: list[str], command: str) -> T:
    """Parse `key=value` arguments into `schema` (a dataclass), with one-line errors."""
    base = OmegaConf.structured(schema)
    pairs = []
    for arg in argv:
        if arg in ("-h", "--help"):
            keys = ", ".join(_allowed_keys(base))
            print(f"usage: {command} key=value ...  (keys: {keys}; docs: README.md)")
            sys.exit(0)
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not key=value; allowed keys: {', '.join(_allowed_keys(base))}")
        pairs.append(arg)
    for pair in pairs:
        key = pair.split("=", 1)[0]
        node: Any = base
        for i, part in enumerate(key.split(".")):
            if not isinstance(node, DictConfig) or part not in node.keys():
                raise ConfigError(_unknown_key_message(".".join(key.split(".")[: i + 1]), node))
            node = node._get_node(part)
    try:
        merged = OmegaConf.merge(base, OmegaConf.from_dotlist(pairs))
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"{command} needs {', '.join(f'{k}=...' for k in missing)}")
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except EmbodiedError:
        raise
    except OmegaConfBaseException as err:
        raise ConfigError(explain(err, pairs, lambda o: base)) from None
