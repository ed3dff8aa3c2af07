"""Where the suite keeps what it makes once and reuses: `$EMBODIED_CACHE`, else `~/.cache/embodied`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: assembled models (`models/`), generated datasets (`data/`), LLM server leases."""
    return Path(os.environ.get("EMBODIED_CACHE") or Path.home() / ".cache" / "embodied")
