"""Placeholder: the MineDojo adapter is being written."""


def register() -> list[str]:
    return []
