"""Demonstration datasets: zarr storage, normalisation statistics, training windows.

`Normalizer` and `WindowDataset` are imported lazily so that collecting data
(`DatasetWriter`) does not pay for importing torch.
"""
from __future__ import annotations

from typing import Any

from embodied.data.dataset import FORMAT_VERSION, DatasetWriter, DemoDataset, describe_space

__all__ = ["FORMAT_VERSION", "DatasetWriter", "DemoDataset", "Normalizer", "WindowDataset",
           "describe_space"]


def __getattr__(name: str) -> Any:
    if name == "Normalizer":
        from embodied.data.normalizer import Normalizer
        return Normalizer
    if name == "WindowDataset":
        from embodied.data.windows import WindowDataset
        return WindowDataset
    raise AttributeError(f"module 'embodied.data' has no attribute {name!r}")
