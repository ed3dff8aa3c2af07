"""`HomeostaticLearner`: any classifier + optimiser whose learning rate is internal state.

A faithful, reusable form of the learners in Man, Damasio & Neven (2022) and their
public code: samples arrive in minibatches; each sample has a position in the epoch;
at every position i with i % interval == 0 (and i > warmup) one event happens:
the label of sample i says its direction (excitatory classes: +step, the rest:
-step). What lets the event act on η is the `Plasticity` rule:

- homeostatic (LRH, warmup = memory = 20): two look-ahead updates on the gradient
  accumulated so far in this minibatch (samples up to and including i, scaled by
  1/batch like the real update), one with η and one with η moved in the direction
  of the *predicted* label of sample i; both are scored by accuracy on the `memory`
  samples before i; if the moved η is strictly better, η moves in the direction of
  the *true* label.
- random (LRR, warmup = 0): with probability 1/2, η moves in the true label's direction.
- constant: η never moves.

After the events of a minibatch, the real update is one optimiser step at the new
η on the minibatch's summed loss / batch size (the authors' `w -= η/m Σ grad`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from embodied.agents.homeostatic.plasticity import Plasticity, lookahead, set_lr, trainable

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per sample: its logit gradient is the paper's `a4 - y`."""
    return nn.functional.cross_entropy(logits, targets, reduction="none")


@dataclass
class BatchResult:
    """What one minibatch did: its loss, how many it got right, the events and η after."""

    loss: float
    correct: int
    events: int
    moves: int
    eta: float
    ups: int = 0
    """Of the moves, those up (excitatory); the rest went down."""


class HomeostaticLearner:
    """Wraps `module` and `optimizer`; `train_batch` is one minibatch of the paper's loop."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        rule: str = "homeostatic",
        eta0: float = 1e-3,
        step: float | None = None,
        floor: float = 1e-8,
        excitatory: Sequence[int] = (5, 6, 7, 8, 9),
        interval: int = 10,
        memory: int = 20,
        warmup: int | None = None,
        loss_fn: LossFn = per_sample_cross_entropy,
        seed: int = 0,
    ) -> None:
        """
        Args:
            module: maps a batch of inputs to class logits.
            optimizer: steps `module`'s parameters; its learning rate is overwritten by η.
            rule: constant, random (LRR) or homeostatic (LRH).
            eta0: initial η.
            step: η change per event; None: eta0 / 10.
            floor: η never goes below this.
            excitatory: classes whose samples raise η; every other class lowers it.
            interval: an event every this many samples.
            memory: recent samples the homeostatic rule scores its simulations on.
            warmup: events start after this many samples of an epoch; None: `memory`
                for homeostatic (the authors' `i > nMemo`), 0 otherwise (`i != 0`).
            loss_fn: per-sample loss (logits, targets) -> (batch,).
            seed: seeds the random rule's coin.
        """
        self.module, self.optimizer, self.loss_fn = module, optimizer, loss_fn
        self.plasticity = Plasticity(eta=eta0, step=eta0 / 10 if step is None else step, rule=rule, floor=floor)
        self.excitatory = frozenset(int(c) for c in excitatory)
        self.interval, self.memory_size = interval, memory
        self.warmup = (memory if rule == "homeostatic" else 0) if warmup is None else warmup
        self.rng = np.random.default_rng(seed)
        self.position = 0
        self._memory: deque[tuple[torch.Tensor, int]] = deque(maxlen=memory)
        self.eta_history: list[float] = []
        set_lr(optimizer, eta0)

    @property
    def eta(self) -> float:
        return self.plasticity.eta

    def direction(self, label: int) -> int:
        """+1 for an excitatory class, -1 for an inhibitory one."""
        return 1 if int(label) in self.excitatory else -1

    def new_epoch(self) -> None:
        """Positions count from 0 again and the memory empties (events restart after warmup)."""
        self.position = 0
        self._memory.clear()

    def relabel(self, mapping: dict[int, int]) -> None:
        """Apply a label change (a concept shift) to the remembered samples too."""
        self._memory = deque(((x, mapping.get(y, y)) for x, y in self._memory), maxlen=self.memory_size)

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> BatchResult:
        """One minibatch: the events at its positions, then one update at the resulting η."""
        params = trainable(self.module.parameters())
        batch = len(x)
        with torch.no_grad():
            guesses = self.module(x).argmax(dim=1)
        events = moves = ups = 0
        for p in range(batch):
            i = self.position + p
            if i % self.interval == 0 and i > self.warmup and self.plasticity.rule != "constant":
                events += 1
                if self._event(x, y, guesses, p, params, batch):
                    moves += 1
                    ups += self.direction(int(y[p])) > 0
            self._memory.append((x[p], int(y[p])))
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.loss_fn(self.module(x), y)
        (losses.sum() / batch).backward()
        set_lr(self.optimizer, self.eta)
        self.optimizer.step()
        self.position += batch
        self.eta_history.append(self.eta)
        return BatchResult(float(losses.detach().mean()), int((guesses == y).sum()), events, moves, self.eta, ups)

    def _event(self, x: torch.Tensor, y: torch.Tensor, guesses: torch.Tensor, p: int, params: list, batch: int) -> bool:
        true_direction = self.direction(int(y[p]))
        if self.plasticity.rule == "random":
            return self.plasticity.decide(true_direction, self.rng)
        grads = torch.autograd.grad(self.loss_fn(self.module(x[: p + 1]), y[: p + 1]).sum() / batch, params)
        recent_x = torch.stack([m[0] for m in self._memory])
        recent_y = torch.tensor([m[1] for m in self._memory], device=recent_x.device)

        def recent_accuracy() -> float:
            return float((self.module(recent_x).argmax(dim=1) == recent_y).float().mean())

        def score(lr: float) -> float:
            return lookahead(params, self.optimizer, grads, lr, recent_accuracy)

        return self.plasticity.decide(
            true_direction, self.rng, predicted_direction=self.direction(int(guesses[p])), score=score
        )

    # --- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """η, the epoch position, the memory and the coin's state (weights live in `module`)."""
        return {
            "eta": self.plasticity.eta,
            "position": self.position,
            "memory": [(x.clone(), y) for x, y in self._memory],
            "rng": self.rng.bit_generator.state,
            "eta_history": list(self.eta_history),
        }

    def load_state_dict(self, state: dict) -> None:
        self.plasticity.eta = float(state["eta"])
        self.position = int(state["position"])
        self._memory = deque(state["memory"], maxlen=self.memory_size)
        self.rng.bit_generator.state = state["rng"]
        self.eta_history = list(state["eta_history"])
