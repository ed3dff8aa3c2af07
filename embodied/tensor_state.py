"""Nested training state <-> flat safetensors + JSON, so checkpoints hold no pickles.

`flatten_state` walks dicts and lists (an optimizer's `state_dict()`, an RL
algorithm's counters): tensors and arrays go to a flat {dotted.key: tensor} map for
safetensors, everything else stays in a JSON skeleton with placeholders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"
_ARRAY = "__ndarray__"
_INTKEYS = "__intkeys__"


def flatten_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split `obj` into a JSON-able skeleton and a flat dict of tensors."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[key] = node.detach().cpu().contiguous()
            return {_TENSOR: key}
        if isinstance(node, np.ndarray):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(node))
            return {_ARRAY: key}
        if isinstance(node, dict):
            int_keys = all(isinstance(k, int) for k in node) and bool(node)
            out = {str(k): walk(v, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
            return {_INTKEYS: out} if int_keys else out
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{key}.{i}" if key else str(i)) for i, v in enumerate(node)]
        if isinstance(node, (np.integer, np.floating, np.bool_)):
            return node.item()
        return node

    return walk(obj, prefix), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {_TENSOR}:
            return tensors[skeleton[_TENSOR]]
        if set(skeleton) == {_ARRAY}:
            return tensors[skeleton[_ARRAY]].numpy()
        if set(skeleton) == {_INTKEYS}:
            return {int(k): unflatten_state(v, tensors) for k, v in skeleton[_INTKEYS].items()}
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def save_state(obj: Any, directory: Path, name: str) -> None:
    """Write `<name>.safetensors` and `<name>.json` into `directory`."""
    skeleton, tensors = flatten_state(obj)
    save_file(tensors, str(Path(directory) / f"{name}.safetensors"))
    (Path(directory) / f"{name}.json").write_text(json.dumps(skeleton))


def load_state(directory: Path, name: str) -> Any:
    """Read what `save_state` wrote."""
    skeleton = json.loads((Path(directory) / f"{name}.json").read_text())
    tensors = load_file(str(Path(directory) / f"{name}.safetensors"))
    return unflatten_state(skeleton, tensors)
