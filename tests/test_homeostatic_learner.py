"""HomeostaticLearner and the concept shift: η rules, look-ahead, swaps, the experiment command."""

from __future__ import annotations

import copy
import gzip
import json
import struct

import numpy as np
import pytest
import torch
from torch import nn

from embodied.agents.homeostatic.concept_shift import mlp
from embodied.agents.homeostatic.data import load, read_idx, swap_classes, swap_points, swaps_in_epoch
from embodied.agents.homeostatic.learner import HomeostaticLearner
from embodied.agents.homeostatic.plasticity import Plasticity, lookahead
from embodied.errors import ConfigError, DatasetError
from helpers import assert_one_line_error, run_cli


# --- the η rule by hand -----------------------------------------------------------------
def test_plasticity_moves_and_floor_by_hand():
    p = Plasticity(eta=3e-4, step=1e-4, rule="random")
    rng = np.random.default_rng(0)
    coins = np.random.default_rng(0).random(6) > 0.5
    directions = [+1, -1, -1, -1, -1, +1]
    expected, eta = [], 3e-4
    for coin, d in zip(coins, directions):
        if coin:
            eta = eta + d * 1e-4
            eta = 1e-8 if eta < 1e-8 else eta
        expected.append(eta)
    got = []
    for d in directions:
        p.decide(d, rng)
        got.append(p.eta)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert Plasticity(eta=5e-5, step=1e-4).moved(-1) == 1e-8
    assert Plasticity(eta=1e-3, step=1e-4, ceiling=1.05e-3).moved(+1) == 1.05e-3


def test_homeostatic_rule_takes_the_true_direction_only_when_the_prediction_scores_better():
    p = Plasticity(eta=1e-3, step=1e-4, rule="homeostatic")
    rng = np.random.default_rng(0)
    # the predicted move (+1) scores better: eta moves the *true* way (-1)
    assert p.decide(-1, rng, predicted_direction=+1, score=lambda lr: lr)
    assert p.eta == pytest.approx(9e-4)
    # a tie is not strictly better: no move
    assert not p.decide(+1, rng, predicted_direction=+1, score=lambda lr: 0.5)
    assert p.eta == pytest.approx(9e-4)
    assert not Plasticity(eta=1e-3, step=1e-4, rule="constant").decide(+1, rng)
    with pytest.raises(ConfigError, match="unknown plasticity rule"):
        Plasticity(eta=1e-3, step=1e-4, rule="sometimes")


# --- an independent reference of the authors' per-sample loop -----------------------------
def _reference_eta_sequence(weights, x, y, rule, epochs, seed, m=10, interval=10, memory=20, eta0=1e-3, step=1e-4):
    """The authors' algorithm written out per sample in numpy (ELU MLP, softmax, summed gradients)."""
    (w1, b1), (w2, b2), (w3, b3) = [(w.copy(), b.copy()) for w, b in weights]
    elu = lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1)  # noqa: E731
    delu = lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))  # noqa: E731

    def forward(params, a):
        (v1, c1), (v2, c2), (v3, c3) = params
        z1 = v1 @ a + c1
        z2 = v2 @ elu(z1) + c2
        z3 = v3 @ elu(z2) + c3
        e = np.exp(z3 - z3.max())
        return z1, z2, e / e.sum()

    rng = np.random.default_rng(seed)
    eta, etas = eta0, []
    for _ in range(epochs):
        for j in range(len(y) // m):
            params = [(w1, b1), (w2, b2), (w3, b3)]
            grads = [np.zeros_like(w) for w in (w1, b1, w2, b2, w3, b3)]
            for i in range(j * m, (j + 1) * m):
                a0 = x[i]
                z1, z2, out = forward(params, a0)
                guess = int(np.argmax(out))
                e3 = out - np.eye(10)[y[i]]
                e2 = (w3.T @ e3) * delu(z2)
                e1 = (w2.T @ e2) * delu(z1)
                for g, add in zip(grads, (np.outer(e1, a0), e1, np.outer(e2, elu(z1)), e2, np.outer(e3, elu(z2)), e3)):
                    g += add
                if i % interval == 0 and ((rule == "homeostatic" and i > memory) or (rule == "random" and i != 0)):
                    true_dir = 1 if y[i] >= 5 else -1
                    if rule == "random":
                        take = rng.random() > 0.5
                    else:

                        def acc(lr):
                            sim = [
                                (w1 - lr / m * grads[0], b1 - lr / m * grads[1]),
                                (w2 - lr / m * grads[2], b2 - lr / m * grads[3]),
                                (w3 - lr / m * grads[4], b3 - lr / m * grads[5]),
                            ]
                            return np.mean([np.argmax(forward(sim, x[k])[2]) == y[k] for k in range(i - memory, i)])

                        moved = eta + (1 if guess >= 5 else -1) * step
                        take = acc(1e-8 if moved < 1e-8 else moved) > acc(eta)
                    if take:
                        eta = eta + true_dir * step
                        eta = 1e-8 if eta < 1e-8 else eta
            w1, b1, w2, b2, w3, b3 = (p - eta / m * g for p, g in zip((w1, b1, w2, b2, w3, b3), grads))
            etas.append(eta)
    return etas, (w3, b3)


@pytest.mark.parametrize("rule", ["homeostatic", "random", "constant"])
def test_eta_sequence_and_weights_match_the_reference(rule):
    torch.manual_seed(0)
    gen = np.random.default_rng(1)
    x = gen.random((120, 8)).astype(np.float64)
    y = np.argmax(x @ gen.normal(size=(8, 10)), axis=1)  # learnable, so updates change recent accuracy
    model = mlp(8, [6, 5]).double()
    weights = [
        (layer.weight.detach().numpy(), layer.bias.detach().numpy()) for layer in model if isinstance(layer, nn.Linear)
    ]
    # large η0 and step, and events every 3 samples (so mid-batch, on multi-sample gradients too):
    # the look-ahead then often changes the recent accuracy and η actually moves
    ref_etas, (w3, b3) = _reference_eta_sequence(weights, x, y, rule, epochs=3, seed=7, eta0=2.0, step=1.5, interval=3)
    learner = HomeostaticLearner(
        model, torch.optim.SGD(model.parameters(), lr=2.0), rule=rule, eta0=2.0, step=1.5, interval=3, seed=7
    )
    for _ in range(3):
        learner.new_epoch()
        for j in range(len(y) // 10):
            learner.train_batch(torch.from_numpy(x[j * 10 : (j + 1) * 10]), torch.from_numpy(y[j * 10 : (j + 1) * 10]))
    np.testing.assert_allclose(learner.eta_history, ref_etas, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model[-1].weight.detach().numpy(), w3, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model[-1].bias.detach().numpy(), b3, rtol=1e-7, atol=1e-9)
    if rule != "constant":
        assert len(set(ref_etas)) > 2, "the case must exercise η moves"


def test_lookahead_leaves_no_trace_and_equals_a_real_step():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for _ in range(2):  # give Adam some state
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    grads = [torch.randn_like(p) for p in model.parameters()]
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
    simulated = lookahead(list(model.parameters()), opt, grads, 0.05, lambda: float(model.weight.detach().sum()))
    for k, v in before[0].items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    assert opt.param_groups[0]["lr"] == 0.1
    torch.testing.assert_close(
        opt.state_dict()["state"][0]["exp_avg"], before[1]["state"][0]["exp_avg"], rtol=0, atol=0
    )
    for p, g in zip(model.parameters(), grads):
        p.grad = g.clone()
    opt.param_groups[0]["lr"] = 0.05
    opt.step()
    assert simulated == pytest.approx(float(model.weight.detach().sum()), abs=1e-6)


def test_learner_state_round_trip():
    torch.manual_seed(0)
    model = mlp(8, [6, 5])
    learner = HomeostaticLearner(model, torch.optim.SGD(model.parameters(), lr=1e-3), rule="random", seed=3)
    x, y = torch.rand(30, 8), torch.randint(0, 10, (30,))
    for j in range(2):
        learner.train_batch(x[j * 10 : (j + 1) * 10], y[j * 10 : (j + 1) * 10])
    state = learner.state_dict()
    twin_model = copy.deepcopy(model)
    twin = HomeostaticLearner(twin_model, torch.optim.SGD(twin_model.parameters(), lr=1e-3), rule="random", seed=99)
    twin.load_state_dict(state)
    a, b = learner.train_batch(x[20:], y[20:]), twin.train_batch(x[20:], y[20:])
    assert a == b


# --- concept shift -------------------------------------------------------------------------
def test_swap_points_are_equal_intervals_ending_at_the_epoch_end():
    assert swap_points(143, 0) == []
    assert swap_points(143, 1) == [143]
    assert swap_points(100, 4) == [25, 50, 75, 100]
    assert swap_points(10, 50) == list(range(1, 11))  # at most one per minibatch
    assert swaps_in_epoch(3, 5, None) == 5
    assert swaps_in_epoch(3, 5, [0, 1]) == 1 and swaps_in_epoch(4, 5, [0, 1]) == 0


def test_swap_classes_changes_both_splits_identically():
    train, val = np.array([0, 1, 2, 3, 1, 0]), np.array([3, 0, 1])
    rng = np.random.default_rng(5)
    a, b = np.random.default_rng(5).choice(10, 2, replace=False)
    mapping = swap_classes(rng, train, val)
    assert mapping == {int(a): int(b), int(b): int(a)}
    originals = (np.array([0, 1, 2, 3, 1, 0]), np.array([3, 0, 1]))
    for new, old in zip((train, val), originals):
        np.testing.assert_array_equal(new, [mapping.get(int(v), int(v)) for v in old])


def test_swaps_happen_as_scheduled_in_the_experiment(tmp_path):
    from embodied.agents.homeostatic.concept_shift import run
    from embodied.agents.homeostatic.config import ConceptShiftConfig

    data = load("digits")
    config = ConceptShiftConfig(epochs=3, swaps_schedule=[2, 0, 5], plot=False, rule="constant")
    summary = run(config, tmp_path, data)
    rows = np.genfromtxt(tmp_path / "swaps.csv", delimiter=",", names=True, dtype=None, encoding=None)
    batches = len(data.y_train) // 10
    expected = [(0, b) for b in swap_points(batches, 2)] + [(2, b) for b in swap_points(batches, 5)]
    assert [(int(r["epoch"]), int(r["batch"])) for r in rows] == expected
    assert summary["swaps"] == 7


@pytest.mark.parametrize("rule", ["random", "constant"])
def test_the_summary_counts_how_often_the_gate_let_eta_move(tmp_path, rule):
    from embodied.agents.homeostatic.concept_shift import run
    from embodied.agents.homeostatic.config import ConceptShiftConfig

    metrics = run(ConceptShiftConfig(epochs=1, plot=False, rule=rule), tmp_path, load("digits"))["metrics"]
    assert metrics["moves_up"] + metrics["moves_down"] == metrics["moves"] <= metrics["events"]
    if rule == "constant":
        assert metrics["events"] == 0 and metrics["eta_min"] == metrics["eta_max"] == 1e-3
    else:  # LRR lets an event through with probability 1/2
        assert metrics["events"] > 100 and 0.35 < metrics["gate_open_rate"] < 0.65
        assert metrics["eta_min"] < 1e-3 or metrics["eta_max"] > 1e-3


def test_digits_split_and_missing_or_corrupt_files(tmp_path):
    split = load("digits", seed=0)
    assert split.input_dim == 64 and len(split.y_train) + len(split.y_val) == 1797
    assert split.x_train.max() <= 1.0 and set(np.unique(split.y_val)) == set(range(10))
    with pytest.raises(ConfigError, match="needs data_path"):
        load("mnist")
    with pytest.raises(ConfigError, match="does not exist"):
        load("fashion_mnist", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="train-labels-idx1-ubyte"):
        (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
        load("mnist", str(tmp_path))
    bad = tmp_path / "broken.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="not a readable IDX"):
        read_idx(bad)


def test_mnist_from_idx_files(tmp_path):
    def idx(path, array):
        header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    gen = np.random.default_rng(0)
    idx(tmp_path / "train-images-idx3-ubyte.gz", gen.integers(0, 256, (20, 28, 28)))
    idx(tmp_path / "train-labels-idx1-ubyte.gz", gen.integers(0, 10, 20))
    idx(tmp_path / "t10k-images-idx3-ubyte.gz", gen.integers(0, 256, (5, 28, 28)))
    idx(tmp_path / "t10k-labels-idx1-ubyte.gz", gen.integers(0, 10, 5))
    split = load("mnist", str(tmp_path))
    assert split.input_dim == 784 and split.x_train.shape == (20, 784) and split.x_val.max() <= 1.0
    np.savez(
        tmp_path / "m.npz",
        x_train=np.zeros((3, 28, 28), np.uint8),
        y_train=np.arange(3),
        x_test=np.zeros((2, 28, 28), np.uint8),
        y_test=np.arange(2),
    )
    assert load("fashion_mnist", str(tmp_path / "m.npz")).x_val.shape == (2, 784)


# --- the command ----------------------------------------------------------------------------
def test_concept_shift_command_writes_metrics_and_plot_and_is_deterministic(tmp_path):
    runs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        proc = run_cli(
            "embodied.agents.homeostatic.concept_shift",
            "epochs=2",
            "swaps_per_epoch=3",
            f"run_dir={run_dir}",
            check=True,
        )
        assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
        for name in ("metrics.csv", "curve.csv", "swaps.csv", "plot.png", "summary.json", ".hydra/config.yaml"):
            assert (run_dir / name).stat().st_size > 0, name
        runs.append(json.loads((run_dir / "summary.json").read_text()))
    assert runs[0]["status"] == "complete" and runs[0]["swaps"] == 6
    assert runs[0]["metrics"] == runs[1]["metrics"]
    assert (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0].split(",")[2:] == [
        "charts/epoch",
        "charts/train_acc",
        "eval/val_acc",
        "charts/eta",
    ]


def test_concept_shift_bad_input_is_one_line_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "r"
    proc = run_cli("embodied.agents.homeostatic.concept_shift", "dataset=mnist", f"run_dir={run_dir}")
    assert_one_line_error(proc, "data_path")
    assert not run_dir.exists()
    proc = run_cli("embodied.agents.homeostatic.concept_shift", "rule=sometimes", f"run_dir={run_dir}")
    assert_one_line_error(proc, "rule", "homeostatic")
    assert not run_dir.exists()


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_baseline_optimizers_train_and_are_recorded(tmp_path, optimizer):
    from embodied.agents.homeostatic.concept_shift import run
    from embodied.agents.homeostatic.config import ConceptShiftConfig

    summary = run(
        ConceptShiftConfig(epochs=1, plot=False, rule="constant", optimizer=optimizer), tmp_path, load("digits")
    )
    assert summary["optimizer"] == optimizer and summary["metrics"]["val_acc_final"] > 0.3  # it learned something


def test_an_unknown_optimizer_is_one_line():
    from embodied.agents.homeostatic.config import ConceptShiftConfig
    from embodied.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown optimizer 'rmsprop'; choose from: sgd, momentum, adam"):
        ConceptShiftConfig(optimizer="rmsprop")
