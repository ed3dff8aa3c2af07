"""Command-line plumbing shared by every entry point.

- `run_command` turns `EmbodiedError` into one line on stderr and exit status 2.
- `hydra_command` validates overrides by composing them first, so a misspelt key
  or group option fails in one line naming the allowed keys or choices, instead of
  Hydra's multi-line report, and then hands over to `hydra.main` (runs, multiruns,
  launchers and sweepers all keep working).
- `parse_args` gives non-Hydra commands (`rollout`, `collect`) the same `key=value`
  syntax and the same messages, validated against a dataclass schema.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import re
import sys
from typing import Any, Callable, TypeVar

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
    hint = f" (did you mean '{full_key.rsplit('.', 1)[0] + '.' if '.' in full_key else ''}{close[0]}'?)" if close else ""
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
    if isinstance(cause, MissingConfigException) or (
        isinstance(err, MissingConfigException)
    ):
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
def _split_hydra_args(argv: list[str]) -> tuple[list[str], bool]:
    """Return (config overrides, is_multirun), dropping Hydra's own flags."""
    overrides, multirun, skip_next = [], False, False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "--info", "-i"):
            skip_next = arg not in ("--info", "-i")
        elif arg.startswith("-"):
            continue
        elif arg.split("=", 1)[0].lstrip("+~").startswith("hydra"):
            continue
        else:
            overrides.append(arg)
    return overrides, multirun


def _expand_sweeps(overrides: list[str], limit: int = 64) -> list[list[str]]:
    """All combinations of a multirun's sweep overrides (capped), as plain overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            values = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            values = [override.input_line]
        choices.append(values)
    return [list(combo) for combo in itertools.islice(itertools.product(*choices), limit)]


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose the config as Hydra would (without running anything)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from embodied.config import register_configs

    register_configs()
    if not GlobalHydra.instance().is_initialized():
        initialize_config_module(CONFIG_MODULE, version_base="1.3")
    return hydra_compose(config_name=config_name, overrides=overrides)


def validate_overrides(config_name: str, argv: list[str]) -> None:
    """Compose every combination of the overrides; raise ConfigError on the first failure."""
    from hydra.core.global_hydra import GlobalHydra

    overrides, multirun = _split_hydra_args(argv)
    try:
        combos = _expand_sweeps(overrides) if multirun else [overrides]
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"cannot parse overrides {' '.join(overrides)}: {str(err).splitlines()[0]}") from None
    try:
        for combo in combos:
            try:
                cfg = compose(config_name, combo)
            except Exception as err:  # noqa: BLE001 - every composition failure becomes one line
                raise ConfigError(explain(err, combo, lambda o: compose(config_name, o))) from None
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


def hydra_command(task: Callable[[DictConfig], Any], config_name: str = "config", argv_hook: Callable[[list[str]], list[str]] | None = None) -> Callable[[], Any]:
    """Build a console-script `main` that validates overrides, then runs `task` under Hydra."""
    import hydra

    def main() -> Any:
        from embodied.config import register_configs

        register_configs()
        if argv_hook is not None:
            sys.argv[1:] = run_command(lambda: argv_hook(sys.argv[1:]))
        run_command(lambda: validate_overrides(config_name, sys.argv[1:]))

        @hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=config_name, version_base="1.3")
        def _hydra_entry(cfg: DictConfig) -> Any:
            return run_command(lambda: task(cfg))

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
