"""Plasticity as an internal variable: a learning rate that is nudged, not scheduled.

Man, Damasio & Neven (2022) make the learning rate η the network's internal state:
some events are excitatory (η += step), others inhibitory (η -= step), and whether
an event is allowed to act on η is itself decided. Three rules decide:

- `constant`: never (the usual fixed-η learner).
- `random` (LRR): with probability 1/2.
- `homeostatic` (LRH): simulate the next update with η left as it is and with η
  moved in the direction the learner *predicts*; if the moved η scores strictly
  better on recent experience, move η in the *true* direction.

`Plasticity` holds η and the rule; `lookahead` simulates one optimiser step on given
gradients and restores everything afterwards. The supervised `HomeostaticLearner`
and the homeostatic PPO agent both use these two, so the rule lives in one place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

RULES = ("constant", "random", "homeostatic")


@dataclass
class Plasticity:
    """The learning rate as internal state, and the rule that lets events move it."""

    eta: float
    """Current learning rate."""
    step: float
    """How far one excitatory (+) or inhibitory (-) event moves η (the paper: η0/10)."""
    rule: str = "homeostatic"
    """constant, random (LRR) or homeostatic (LRH)."""
    floor: float = 1e-8
    """η never goes below this (the authors' code resets a negative η to 1e-8)."""
    ceiling: float = float("inf")
    """Nor above this (the paper has none; RL agents need one)."""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            from embodied.errors import ConfigError

            raise ConfigError(f"unknown plasticity rule {self.rule!r}; choose from: {', '.join(RULES)}")

    def moved(self, direction: int) -> float:
        """η after one event in `direction` (+1 excitatory, -1 inhibitory), clipped at the floor."""
        eta = self.eta + direction * self.step
        return self.floor if eta < self.floor else min(eta, self.ceiling)

    def decide(
        self,
        true_direction: int,
        rng: np.random.Generator,
        predicted_direction: int | None = None,
        score: Callable[[float], float] | None = None,
    ) -> bool:
        """Apply the rule to one event; return whether η moved.

        `score(eta)` rates the outcome of an update made with learning rate `eta` on
        recent experience (higher is better); only the homeostatic rule calls it.
        """
        if self.rule == "constant":
            return False
        if self.rule == "random":
            take = bool(rng.random() > 0.5)
        else:
            if score is None or predicted_direction is None:
                raise ValueError("the homeostatic rule needs a predicted direction and a score function")
            take = score(self.moved(predicted_direction)) > score(self.eta)
        if take:
            self.eta = self.moved(true_direction)
        return take


def lookahead(
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    grads: Sequence[torch.Tensor],
    lr: float,
    evaluate: Callable[[], float],
) -> float:
    """`evaluate()` after one `optimizer` step with `grads` at learning rate `lr`, then undo it.

    Works for any optimiser: parameters, gradients, optimiser state and learning
    rates are restored exactly, so the simulation leaves no trace.
    """
    saved_params = [p.detach().clone() for p in params]
    saved_grads = [None if p.grad is None else p.grad.clone() for p in params]
    saved_state = copy.deepcopy(optimizer.state_dict()) if optimizer.state else None
    saved_lrs = [group["lr"] for group in optimizer.param_groups]
    try:
        for p, g in zip(params, grads):
            p.grad = g.detach().clone()
        set_lr(optimizer, lr)
        optimizer.step()
        with torch.no_grad():
            return float(evaluate())
    finally:
        with torch.no_grad():
            for p, saved, grad in zip(params, saved_params, saved_grads):
                p.copy_(saved)
                p.grad = grad
        if saved_state is not None:
            optimizer.load_state_dict(saved_state)
        else:
            optimizer.state.clear()
        for group, saved_lr in zip(optimizer.param_groups, saved_lrs):
            group["lr"] = saved_lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def trainable(params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """The parameters that take gradients, in a fixed order."""
    return [p for p in params if p.requires_grad]
