"""Errors that reach the user as one line: what is wrong and how to fix it.

Entry points catch `EmbodiedError`, print `error: <message>` on stderr and exit
with status 2, so a bad override, a missing checkpoint or a corrupt dataset never
produces a traceback or a half-written artifact passed off as complete.
"""

from __future__ import annotations


class EmbodiedError(Exception):
    """Base class for user-facing errors; the message is a single line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(EmbodiedError):
    """A configuration key, value or group option is invalid."""


class CheckpointError(EmbodiedError):
    """A checkpoint or run directory is missing, incomplete or incompatible."""


class DatasetError(EmbodiedError):
    """A demonstration dataset is missing, corrupt or does not match the env."""


class OutputError(EmbodiedError):
    """An output location (run dir, video dir, dataset path) cannot be written."""


class RenderingError(EmbodiedError):
    """MuJoCo offscreen rendering is unavailable."""
