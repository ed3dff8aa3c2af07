"""`embodied-llm`: the local language model, from the command line.

    embodied-llm serve [model=NAME|FILE.gguf] [port=8765] [n_ctx=8192] [threads=N] [prompt_cache_mb=512]
    embodied-llm check [base_url=http://127.0.0.1:8765/v1] [model=NAME] [api_key_env=]
    embodied-llm models
    embodied-llm prepare [model=NAME]

`serve` runs llama-cpp-python's OpenAI-compatible server in the foreground with settings
that work on a CPU (context 8,192, one thread on a 2-core machine, a random seed) and
prints its base URL once it answers; `check` times one short answer from any endpoint;
`models` lists the pinned models and whether they are installed and assembled;
`prepare` assembles and verifies one (done on first use otherwise).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

from embodied.errors import ConfigError, EmbodiedError
from embodied.llm.models import DEFAULT_MODEL, MODELS, cache_dir, installed, model_file

DEFAULT_PORT = 8765
OPTIONS: dict[str, dict[str, Callable[[str], object]]] = {
    "serve": {"model": str, "port": int, "host": str, "n_ctx": int, "threads": int, "prompt_cache_mb": int},
    "check": {"base_url": str, "model": str, "api_key_env": str, "max_tokens": int},
    "models": {},
    "prepare": {"model": str},
}
"""Each subcommand's key=value arguments and their types."""
COMMANDS = tuple(OPTIONS)


def parse_options(command: str, args: list[str]) -> dict[str, object]:
    """The key=value arguments of `embodied-llm <command>`, typed; ConfigError (one line) on anything else."""
    allowed = OPTIONS[command]
    out: dict[str, object] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(
                f"embodied-llm {command}: unknown argument {arg!r}; it takes {', '.join(f'{k}=...' for k in allowed)}"
            )
        try:
            out[key] = allowed[key](value)
        except ValueError:
            raise ConfigError(f"embodied-llm {command}: {key}={value!r} is not a valid value") from None
    return out


def serve(args: list[str]) -> int:
    import random
    import subprocess

    from embodied.llm.config import LocalServerConfig
    from embodied.llm.server import base_url_for, served_models, server_argv, wait_for

    opts = parse_options("serve", args)
    name = str(opts.get("model", DEFAULT_MODEL))
    alias = name if name in MODELS else name.rsplit("/", 1)[-1].removesuffix(".gguf")
    host, port = str(opts.get("host", "127.0.0.1")), int(opts.get("port", DEFAULT_PORT))
    # the server settings given here; the others keep LocalServerConfig's defaults
    tuning = {key: opts[key] for key in ("n_ctx", "threads", "prompt_cache_mb") if key in opts}
    local = LocalServerConfig(enabled=True, gguf=name, **tuning)  # type: ignore[arg-type]
    url = base_url_for(port, host)
    if served_models(url) is not None:
        raise ConfigError(f"something already answers on {url}: stop it or pick another port=")
    argv = server_argv(local, alias, host, port, random.SystemRandom().randrange(2**31))
    proc = subprocess.Popen(argv)
    try:
        if not wait_for(url, alias, local.startup_timeout_s):
            proc.terminate()
            raise ConfigError(f"the server did not answer on {url} within {local.startup_timeout_s:g} s")
        print(f"serving {alias} at {url}   (llm.base_url={url} llm.model={alias} llm.api_key_env='')", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def check(args: list[str]) -> int:
    from embodied.llm import ChatClient, LLMConfig

    opts = parse_options("check", args)
    config = LLMConfig(
        base_url=str(opts.get("base_url", f"http://127.0.0.1:{DEFAULT_PORT}/v1")),
        model=str(opts.get("model", DEFAULT_MODEL)),
        api_key_env=str(opts.get("api_key_env", "")),
        max_tokens=int(opts.get("max_tokens", 64)),
        mode="live",
        retries=0,
    )
    client = ChatClient(config)
    client.check()
    start = time.monotonic()
    (answer,) = client.complete(
        [{"role": "user", "content": "Write a one-line Python function that adds two numbers."}], temperature=0.0
    )
    seconds = time.monotonic() - start
    words = len(answer.text.split())
    print(f"{config.base_url} ({config.model}) answered in {seconds:.1f} s, finish_reason={answer.finish_reason}")
    print(f"  {words} words; first line: {(answer.text.strip().splitlines() or [''])[0][:100]}")
    return 0


def models(args: list[str]) -> int:
    parse_options("models", args)
    print(f"{'model':40} {'size':>14}  installed  assembled file")
    for model in MODELS.values():
        path = cache_dir() / "models" / f"{model.name}.gguf"
        assembled = str(path) if path.is_file() else "- (embodied-llm prepare, or on first use)"
        print(f"{model.name:40} {model.size:>14,}  {'yes' if installed(model) else 'no':9}  {assembled}")
        print(f"  from {model.dist}-part1..{model.parts}=={model.version}; {model.upstream}; licence: {model.licence}")
    print(f"default: {DEFAULT_MODEL}; any other .gguf file works as model=PATH")
    return 0


def prepare(args: list[str]) -> int:
    opts = parse_options("prepare", args)
    print(model_file(str(opts.get("model", DEFAULT_MODEL))))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in rest):
        print(__doc__.strip())
        return 0
    try:
        return {"serve": serve, "check": check, "models": models, "prepare": prepare}[command](rest)
    except EmbodiedError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
