"""Config schemas of the homeostatic experiments and agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from embodied.agents.sb3.config import PPOConfig
from embodied.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass
class ConceptShiftConfig:
    """The root config of `embodied-concept-shift` (Man, Damasio & Neven 2022, faithful defaults)."""

    rule: str = "homeostatic"
    """homeostatic (LRH), random (LRR) or constant."""
    dataset: str = "digits"
    """digits (scikit-learn's bundled 8x8 digits; the paper used MNIST), mnist or fashion_mnist."""
    data_path: Optional[str] = None
    """For mnist/fashion_mnist: a folder of IDX files or an .npz (x_train, y_train, x_test, y_test)."""
    val_fraction: float = 0.2
    """digits only: the stratified validation share."""
    swaps_per_epoch: int = 0
    """Concept shift: two random classes swap labels (train and validation) this many times per epoch."""
    swaps_schedule: Optional[list[int]] = None
    """Second-order shift: swaps per epoch for epoch 0, 1, ... (cycled); overrides swaps_per_epoch."""
    epochs: int = 50
    batch_size: int = 10
    eta0: float = 1e-3
    """Initial learning rate (of plain SGD, as in the authors' code, unless `optimizer` says otherwise)."""
    optimizer: str = "sgd"
    """sgd (momentum-free, the paper's), momentum (SGD with momentum 0.9) or adam: the baselines the
    paper lacks; the rule then moves that optimiser's learning rate."""
    eta_step: Optional[float] = None
    """η change per event; None: eta0 / 10."""
    eta_floor: float = 1e-8
    excitatory: list[int] = field(default_factory=lambda: [5, 6, 7, 8, 9])
    """Classes that raise η; the others lower it."""
    interval: int = 10
    """An event every this many samples."""
    memory: int = 20
    """Recent samples the homeostatic rule scores its two simulations on."""
    hidden: list[int] = field(default_factory=lambda: [80, 60])
    """MLP hidden sizes (ELU), He-initialised weights, N(0, 1) biases as in the authors' code."""
    eval_every: int = 10
    """Validation accuracy every this many minibatches (the recovery curves), besides each epoch's end."""
    recovery_window: int = 20
    """Minibatches after a swap over which recovery is measured."""
    seed: int = 0
    run_dir: Optional[str] = None
    """Output folder; None: runs/<date>/<time>_concept_shift."""
    plot: bool = True
    """Write plot.png (accuracy and η over training, swaps marked)."""

    def __post_init__(self) -> None:
        from embodied.agents.homeostatic.data import DATASETS
        from embodied.agents.homeostatic.plasticity import RULES

        if self.rule not in RULES:
            raise ConfigError(f"unknown rule {self.rule!r}; choose from: {', '.join(RULES)}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose from: {', '.join(DATASETS)}")
        if self.epochs < 1 or self.batch_size < 1 or self.interval < 1 or self.memory < 1 or self.eval_every < 1:
            raise ConfigError("epochs, batch_size, interval, memory and eval_every must be >= 1")
        if self.swaps_per_epoch < 0 or any(s < 0 for s in self.swaps_schedule or ()):
            raise ConfigError("swaps per epoch must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose from: {', '.join(OPTIMIZERS)}")
        if self.eta0 <= 0:
            raise ConfigError(f"eta0 must be > 0, got {self.eta0}")
        if self.dataset in ("mnist", "fashion_mnist"):
            from pathlib import Path

            if not self.data_path or not Path(self.data_path).expanduser().exists():
                raise ConfigError(
                    f"dataset={self.dataset} needs data_path=<an existing folder of IDX files or an .npz> (got {self.data_path!r}); it cannot be downloaded here, or use dataset=mnist_standin (MNIST-scale, generated offline) or dataset=digits"
                )


@dataclass
class HomeostaticPPOConfig(PPOConfig):
    """PPO whose learning rate is homeostatically regulated (plasticity=constant: plain PPO)."""

    name: str = "homeostatic_ppo"
    plasticity: str = "homeostatic"
    """constant (fixed learning rate), random (LRR-style coin) or homeostatic (LRH-style look-ahead)."""
    plasticity_step: float = 0.1
    """One event moves the learning rate by this fraction of agent.learning_rate."""
    plasticity_floor: float = 1e-7
    """The learning rate never goes below this."""
    plasticity_ceiling: float = 3e-3
    """Nor above this (an RL update at a runaway learning rate destroys the policy)."""
    drive_key: str = "drive"
    """info key of the internal drive (distance from the set-point); its rise is excitatory, its fall inhibitory."""
    lookahead_samples: int = 512
    """Transitions of the previous rollout the homeostatic rule scores its two critic updates on."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from embodied.agents.homeostatic.plasticity import RULES

        if self.plasticity not in RULES:
            raise ConfigError(f"agent.plasticity must be one of {', '.join(RULES)}, got {self.plasticity!r}")
        if not 0 < self.plasticity_step < 1:
            raise ConfigError(f"agent.plasticity_step must be in (0, 1), got {self.plasticity_step}")
