"""Stage 2 of multistage training: one frozen-encoder embedding per dataset frame, on disk.

A cache is a folder (default `<dataset>/embeddings/<checksum[:16]>`) holding
`embeddings.npy` (frames x embed_dim, float32) and `meta.json`. The key is the SHA-256 of
the encoder's weights *and* the normalisation statistics its inputs go through, so an
encoder retrained in any way gets a new cache, and a cache made by another encoder (an
explicit `agent.embedding_cache` from an earlier run, say) is refused instead of silently
training the head on features the policy will never see at test time. The folder
appears only when complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodied.errors import DatasetError

FORMAT = 1


def encoder_checksum(agent: Any) -> str:
    """SHA-256 over the acting encoder's weights and the normaliser's statistics."""
    digest = hashlib.sha256()
    tensors = {f"encoder.{k}": v for k, v in agent.model.acting().encoder.state_dict().items()}
    tensors.update(agent.normalizer.state_dict("normalizer."))
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def dataset_fingerprint(dataset: Any) -> str:
    """Identifies the frames a cache is aligned with (episode boundaries and actions)."""
    digest = hashlib.sha256(np.asarray(dataset.episode_ends, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(dataset.array("action"), dtype=np.float32).tobytes())
    return digest.hexdigest()


def cache_path(agent: Any, checksum: str) -> Path:
    if agent.config.embedding_cache:
        return Path(agent.config.embedding_cache).expanduser().absolute()
    return Path(agent.config.dataset).expanduser().absolute() / "embeddings" / checksum[:16]


@torch.no_grad()
def compute(agent: Any, dataset: Any, batch_size: int = 256) -> np.ndarray:
    """(frames, E) embeddings of every dataset frame by the acting encoder (eval mode, centre crop)."""
    encoder = agent.model.acting().encoder.eval()
    arrays = {k: dataset.array(f"obs/{k}") for k in agent.obs_keys}
    frames = len(arrays[agent.obs_keys[0]])
    out = np.empty((frames, agent.config.embed_dim), dtype=np.float32)
    for start in range(0, frames, batch_size):
        batch = {}
        for key, array in arrays.items():
            x = torch.from_numpy(np.asarray(array[start : start + batch_size]))
            if x.dtype != torch.uint8:
                x = agent.normalizer.normalize(f"obs/{key}", x.float())
            batch[f"obs/{key}"] = x.to(agent.device)
        with agent.autocast():
            out[start : start + batch_size] = encoder(batch).float().cpu().numpy()
    return out


def load(path: Path, checksum: str, dataset: Any) -> np.ndarray:
    """The cached embeddings at `path`; DatasetError if they belong to another encoder or dataset."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        embeddings = np.load(path / "embeddings.npy", mmap_mode=None)
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"embedding cache {path} is unreadable ({' '.join(str(err).split())[:120]}); delete it and rerun to recompute it"
        ) from None
    if meta.get("encoder_checksum") != checksum:
        raise DatasetError(
            f"embedding cache {path} is stale: written by encoder {str(meta.get('encoder_checksum'))[:16]}, but this policy's encoder is {checksum[:16]}; "
            "delete it, or leave agent.embedding_cache empty so stage 2 writes a cache for this encoder"
        )
    if meta.get("dataset_fingerprint") != dataset_fingerprint(dataset) or embeddings.shape[0] != int(
        dataset.episode_ends[-1]
    ):
        raise DatasetError(
            f"embedding cache {path} was computed for another dataset than {dataset.path}; delete it and rerun to recompute it"
        )
    return embeddings


def ensure(agent: Any, env_factory: Any) -> np.ndarray:
    """Stage 2: the embeddings of this encoder, reused from disk or computed and written."""
    from embodied.data import DemoDataset

    dataset = DemoDataset.open(agent.config.dataset)
    checksum = encoder_checksum(agent)
    path = cache_path(agent, checksum)
    if (path / "meta.json").exists():
        return load(path, checksum, dataset)
    if path.exists():
        raise DatasetError(
            f"{path} exists but is not an embedding cache (no meta.json); delete it or set agent.embedding_cache to another folder"
        )
    embeddings = compute(agent, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        np.save(tmp / "embeddings.npy", embeddings)
        meta = {
            "format": FORMAT,
            "encoder_checksum": checksum,
            "dataset_fingerprint": dataset_fingerprint(dataset),
            "dataset": str(dataset.path),
            "frames": int(embeddings.shape[0]),
            "embed_dim": int(embeddings.shape[1]),
            "obs_keys": list(agent.obs_keys),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return embeddings
