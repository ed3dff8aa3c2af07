"""The MNIST-scale stand-in (agents/homeostatic/standin.py): deterministic, split by source, cached with a checksum."""

from __future__ import annotations

import numpy as np
import pytest

from embodied.agents.homeostatic import standin
from embodied.agents.homeostatic.config import ConceptShiftConfig
from embodied.agents.homeostatic.data import load
from embodied.errors import DatasetError


def test_generation_is_deterministic_and_mnist_shaped() -> None:
    a, b = standin.generate(train=120, test=30), standin.generate(train=120, test=30)
    assert standin.checksum(a) == standin.checksum(b)
    assert a["x_train"].shape == (120, 28, 28) and a["x_train"].dtype == np.uint8 and a["x_test"].shape == (30, 28, 28)
    assert set(np.unique(a["y_train"])) == set(range(10))
    assert a["x_train"].max() > 200 and (a["x_train"] == 0).mean() > 0.5  # bright strokes on a dark ground, as MNIST
    assert not np.array_equal(a["x_train"][0], a["x_train"][1])


def test_sources_are_split_by_class_before_any_variant_is_made() -> None:
    x, y, xt, yt = standin.source_split()
    assert len(x) + len(xt) == 1797 and len(xt) == pytest.approx(0.2 * 1797, abs=5)
    for label in range(10):  # stratified: every class in both parts at about the same share
        assert abs((yt == label).mean() - (y == label).mean()) < 0.02
    variants = standin.variant(x[0], np.random.default_rng(0)), standin.variant(x[0], np.random.default_rng(1))
    assert not np.array_equal(*variants)  # the deformation is random


def test_the_cache_is_written_once_and_checked(tmp_path, monkeypatch) -> None:
    calls = []
    small = standin.generate(train=50, test=20)
    monkeypatch.setattr(standin, "generate", lambda: calls.append(1) or small)
    arrays, digest = standin.load_standin(tmp_path)
    again, digest2 = standin.load_standin(tmp_path)
    assert calls == [1] and digest == digest2 == standin.checksum(small)
    np.testing.assert_array_equal(again["x_train"], small["x_train"])
    split = load("mnist_standin", str(tmp_path))
    assert split.input_dim == 784 and len(split.y_train) == 50 and split.sha256 == digest
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    path = tmp_path / f"mnist_standin-{standin.VERSION}.npz"
    corrupt = dict(small, y_train=(small["y_train"] + 1) % 10)
    np.savez_compressed(path, **corrupt)
    with pytest.raises(DatasetError, match="does not match its checksum; delete it to regenerate"):
        standin.load_standin(tmp_path)


def test_the_config_needs_no_data_path_for_the_standin() -> None:
    ConceptShiftConfig(dataset="mnist_standin")
    with pytest.raises(Exception, match="dataset=mnist_standin"):
        ConceptShiftConfig(dataset="mnist")  # the real files still need data_path, and the error names the stand-in


def _load_in_child(cache: str, calls: str) -> str:
    """In a fresh process: a slow stand-in generator that records each call, then load_standin."""
    import time
    from pathlib import Path

    small = standin.generate(train=30, test=10)

    def slow():
        with open(calls, "a") as f:
            f.write("x")
        time.sleep(0.5)
        return small

    standin.generate = slow
    return standin.load_standin(Path(cache))[1]


def test_processes_starting_together_on_an_empty_cache_generate_once(tmp_path) -> None:
    """A sweep's jobs start at once: one generates under the lock, the others read its file (no race)."""
    import multiprocessing

    calls = tmp_path / "calls"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        digests = pool.starmap(_load_in_child, [(str(tmp_path / "cache"), str(calls))] * 3)
    assert len(set(digests)) == 1 and calls.read_text() == "x"
    assert not list((tmp_path / "cache").glob("*.tmp*"))
