"""Config schema of the `slim` agent and its baselines (single critic, LSD, DIAYN)."""

from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import AgentConfig
from embodied.errors import ConfigError

REWARDS = ("discovery", "reach", "safety")


@dataclass
class SLIMConfig(AgentConfig):
    """PPO with skills; `critics=multi` is SLIM, `critics=single` the naive sum.

    The baselines are settings of the same code: `critics=single` (one critic on the
    weighted sum of the same rewards), and pure skill discovery (`weights` with
    reach=0, safety=0) with `discovery=lsd` or `discovery=diayn`.
    """

    name: str = "slim"
    # --- rewards and critics -------------------------------------------------------
    critics: str = "multi"
    """multi: one critic per reward, advantages normalised per critic, then summed with `weights` (SLIM). single: one critic on the weighted reward sum."""
    weights: dict[str, float] = field(default_factory=lambda: {"discovery": 1.0, "reach": 1.0, "safety": 1.0})
    """Weight of each reward (discovery, reach, safety); a reward with weight 0 is not used at all (no critic)."""
    discovery: str = "lsd"
    """lsd: (phi(s') - phi(s))^T z with a Lipschitz (spectral-norm) phi. diayn: log q(z|s') - log p(z)."""
    discovery_obs: list[int] = field(default_factory=lambda: [6, 7])
    """Observation indices the skills are about (default: the Tabletop object's x, y)."""
    reach_scale: float = 10.0
    """Reach reward: 1 while info["contact"], else 1 - tanh(reach_scale * |end-effector - object|) (info ee_pos, object_pos)."""
    safety_key: str = "safety_events"
    """Info key counting the safety events of the step; the safety reward is minus that count."""
    # --- skills --------------------------------------------------------------------
    skill_type: str = "continuous"
    """continuous: z ~ N(0, I) (LSD) or U(-1, 1) (DIAYN). discrete: one of skill_dim skills (zero-centred one-hot for LSD)."""
    skill_dim: int = 2
    # --- PPO -----------------------------------------------------------------------
    n_steps: int = 50
    """Env steps per env per rollout (one Tabletop episode)."""
    n_epochs: int = 5
    batch_size: int = 400
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    log_std_init: float = -0.5
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    # --- skill models (phi for LSD, q(z|s) for DIAYN) --------------------------------
    skill_lr: float = 1e-3
    skill_epochs: int = 3
    """Passes of the skill model over each rollout before its rewards are computed."""
    skill_hidden: list[int] = field(default_factory=lambda: [128, 128])
    diayn_std: float = 0.3
    """Std of DIAYN's Gaussian q(z|s) for continuous skills."""
    # --- after training: skill metrics, planner --------------------------------------
    report_skills: int = 64
    """Skills rolled out after training for the skill metrics and video grid (0: none)."""
    video_grid: int = 16
    """Skills shown in videos/skills_grid.mp4 (0: no video)."""
    report_starts: int = 4
    """Start states (reset seeds) the report skills are spread over."""
    planner_episodes: int = 50
    """Push-to-goal episodes for the planner's success rate after training (0: skip)."""
    planner_segments: int = 5
    """Skills the planner may chain in one push-to-goal episode (each for 0.2, 0.5 or 1 training episode's length)."""
    planner_data_episodes: int = 200
    """Episodes of chained random skills the planner's displacement model is fitted on."""
    planner_candidates: int = 512
    """Continuous skills scored per planning step (discrete: all skills)."""
    search_candidates: int = 16
    """Skills the simulator-search planner tries per decision on the same goals (0: skip it)."""

    def __post_init__(self) -> None:
        if self.critics not in ("multi", "single"):
            raise ConfigError(f"agent.critics must be multi or single, got {self.critics!r}")
        if self.discovery not in ("lsd", "diayn"):
            raise ConfigError(f"agent.discovery must be lsd or diayn, got {self.discovery!r}")
        if self.skill_type not in ("continuous", "discrete"):
            raise ConfigError(f"agent.skill_type must be continuous or discrete, got {self.skill_type!r}")
        unknown = set(self.weights) - set(REWARDS)
        if unknown:
            raise ConfigError(f"agent.weights has unknown reward(s) {sorted(unknown)}; rewards: {', '.join(REWARDS)}")
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.get(r, 0) > 0 for r in REWARDS):
            raise ConfigError(f"agent.weights must be >= 0 with at least one > 0, got {dict(self.weights)}")
        if self.skill_dim < 1 or (self.skill_type == "discrete" and self.skill_dim < 2):
            raise ConfigError(f"agent.skill_dim must be >= 1 (>= 2 for discrete skills), got {self.skill_dim}")
        if self.n_steps < 1 or self.n_epochs < 1 or self.batch_size < 1 or self.skill_epochs < 0:
            raise ConfigError("agent.n_steps, n_epochs and batch_size must be >= 1 and skill_epochs >= 0")
        if not self.discovery_obs:
            raise ConfigError("agent.discovery_obs must name at least one observation index")

    @property
    def rewards(self) -> list[str]:
        """The rewards in use, in the fixed order discovery, reach, safety."""
        return [r for r in REWARDS if self.weights.get(r, 0.0) > 0]
