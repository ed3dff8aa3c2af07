"""What learned skills are worth: displacement diversity, contact, safety, and a planner over them.

`rollout_skills` runs each skill for one episode and records the object's displacement,
contact and safety events (info keys of embodied/Tabletop-v0); `skill_metrics` turns
those into the report's numbers; `SkillPlanner` predicts each skill's object
displacement from rollouts of chained random skills and greedily chains skills to push
the object to a goal; `SearchPlanner` chains them by trying candidates in the simulator. `report` runs all of it after training and writes
`videos/skills_grid.mp4`, `skills.png` and the per-skill measurements `skills.npz`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embodied.agents.slim.critics import mlp

BIN = 0.05  # metres: coverage counts occupied BIN x BIN cells of final object displacement
SUCCESS_DISTANCE = 0.05


@dataclass
class SkillRollouts:
    skills: np.ndarray  # (S, Z)
    displacement: np.ndarray  # (S, 2): final minus initial object xy
    final_object: np.ndarray  # (S, 2)
    contact: np.ndarray  # (S,) bool: the end-effector touched the object
    violation_rate: np.ndarray  # (S,) fraction of steps with a safety violation
    events: np.ndarray  # (S,) safety events in the episode
    off_table: np.ndarray  # (S,) bool: the object ended off the table (info["object_off_table"])


def rollout_skills(
    agent: Any, env: Any, skills: np.ndarray, starts: int, seed: int, record: int = 0, frame_stride: int = 2
) -> tuple[SkillRollouts, list[list[np.ndarray]]]:
    """Run skill i from reset seed `seed + i % starts` for one episode (deterministic actions).

    Returns the measurements and, for the first `record` skills, their rendered frames
    (every pixel `frame_stride`-th, to keep a grid small).
    """
    out = {k: [] for k in ("displacement", "final_object", "contact", "violation_rate", "events", "off_table")}
    videos: list[list[np.ndarray]] = []
    for i, z in enumerate(skills):
        agent.set_skill(z)
        obs, info = env.reset(seed=seed + i % starts)
        start = np.asarray(info["object_pos"][:2], dtype=float)
        frames = [env.render()[::frame_stride, ::frame_stride]] if i < record else None
        contact, violations, events, done = False, [], 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            contact |= bool(info["contact"])
            violations.append(float(info["safety_violation"]))
            events += int(info["safety_events"])
            done = terminated or truncated
            if frames is not None:
                frames.append(env.render()[::frame_stride, ::frame_stride])
        final = np.asarray(info["object_pos"][:2], dtype=float)
        measured = (
            ("displacement", final - start),
            ("final_object", final),
            ("contact", contact),
            ("violation_rate", np.mean(violations)),
            ("events", events),
            ("off_table", bool(info.get("object_off_table", False))),
        )
        for key, value in measured:
            out[key].append(value)
        if frames is not None:
            videos.append(frames)
    return SkillRollouts(np.asarray(skills), **{k: np.asarray(v) for k, v in out.items()}), videos


def skill_metrics(r: SkillRollouts) -> dict[str, float]:
    """Coverage (occupied 5 cm bins of displacement; all, and only where the object stayed on the table), spread, contact rate and safety."""

    def cells(displacement: np.ndarray) -> int:
        return len({tuple(c) for c in np.round(displacement / BIN).astype(int)})  # cell 0 is centred on "did not move"

    centred = r.displacement - r.displacement.mean(0)
    return {
        "skills/coverage_bins": float(cells(r.displacement)),
        "skills/on_table_coverage_bins": float(cells(r.displacement[~r.off_table])),
        "skills/off_table_rate": float(r.off_table.mean()),
        "skills/displacement_spread_m": float(math.sqrt((centred**2).sum(1).mean())),
        "skills/displacement_mean_m": float(np.linalg.norm(r.displacement, axis=1).mean()),
        "skills/moved_rate": float((np.linalg.norm(r.displacement, axis=1) > BIN).mean()),
        "skills/contact_rate": float(r.contact.mean()),
        "skills/safety_violation_rate": float(r.violation_rate.mean()),
        "skills/unsafe_episode_rate": float((r.events > 0).mean()),
    }


def candidate_skills(prior: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    """Every discrete skill, or `n` continuous ones drawn from the prior."""
    return prior.vectors(np.arange(prior.dim)) if prior.kind == "discrete" else prior.sample(rng, n)


def report_skill_vectors(agent: Any, n: int, seed: int) -> np.ndarray:
    """The skills a report rolls out: every discrete skill, or `n` continuous ones drawn from the prior."""
    return candidate_skills(agent.prior, np.random.default_rng(seed), n)


def run_skill(
    agent: Any, env: Any, obs: np.ndarray, z: np.ndarray, steps: int
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Follow skill `z` for `steps` env steps (deterministic actions); (last obs, last info, whether the episode ended)."""
    agent.set_skill(z)
    info: dict[str, Any] = {}
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        if terminated or truncated:
            return obs, info, True
    return obs, info, False


class SkillPlanner:
    """Greedy push-to-goal over (skill, duration) pairs with a learned displacement model.

    f(object - hand, z, duration / episode length) -> object xy change is fitted on rollouts
    of chained random skills run for random durations (`DURATIONS` of a training episode);
    each planning step scores every sampled skill at every duration and runs the pair whose
    predicted push lands the object nearest the goal.
    """

    DURATIONS = (0.2, 0.5, 1.0)

    def __init__(self, agent: Any, candidates: int, seed: int) -> None:
        self.agent, self.candidates = agent, candidates
        self.rng = np.random.default_rng(seed)
        self.model = mlp([3 + agent.prior.dim + 1, 128, 128, 2], nn.ReLU)
        self.fit_error = self.spread = float("nan")
        """Held-out RMSE of the predicted displacement (m), and the RMS spread of the true ones around their mean."""

    def _features(self, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(info["object_pos"], dtype=np.float32) - np.asarray(info["ee_pos"], dtype=np.float32)

    def fit(self, env: Any, episodes: int, segments: int, steps: int, seed: int, epochs: int = 1000) -> None:
        """Collect (features, z, duration) -> displacement from `episodes` of `segments` random skills; fit on 4/5, score on 1/5."""
        x, y = [], []
        for e in range(episodes):
            obs, info = env.reset(seed=seed + e)
            for _ in range(segments):
                z, fraction = candidate_skills(self.agent.prior, self.rng, 1)[0], float(self.rng.choice(self.DURATIONS))
                start, features = np.asarray(info["object_pos"][:2]), self._features(info)
                obs, info, ended = run_skill(self.agent, env, obs, z, max(1, round(fraction * steps)))
                x.append(np.concatenate([features, z, [fraction]]))
                y.append(np.asarray(info["object_pos"][:2]) - start)
                if ended:
                    break
        xs, ys = (
            torch.as_tensor(np.asarray(x), dtype=torch.float32),
            torch.as_tensor(np.asarray(y), dtype=torch.float32) * 10,
        )  # decimetres: O(1) targets
        held_out = np.arange(len(xs)) % 5 == 4  # every fifth sample scores the fit
        optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        for _ in range(epochs):
            loss = ((self.model(xs[~held_out]) - ys[~held_out]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            self.fit_error = float(((self.model(xs[held_out]) - ys[held_out]) ** 2).sum(-1).mean().sqrt()) / 10
            self.spread = float(((ys[held_out] - ys[held_out].mean(0)) ** 2).sum(-1).mean().sqrt()) / 10

    @torch.no_grad()
    def choose(self, info: dict[str, Any], goal: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The (skill, duration fraction) whose predicted push lands the object nearest the goal; None if none beats staying."""
        z = candidate_skills(self.agent.prior, self.rng, self.candidates)
        pairs = np.concatenate(
            [
                np.repeat(z, len(self.DURATIONS), 0),
                np.tile(np.asarray(self.DURATIONS, dtype=np.float32)[:, None], (len(z), 1)),
            ],
            1,
        )
        features = np.broadcast_to(self._features(info), (len(pairs), 3))
        predicted = self.model(torch.as_tensor(np.concatenate([features, pairs], 1), dtype=torch.float32)).numpy() / 10
        here = np.asarray(info["object_pos"][:2])
        distance = np.linalg.norm(here + predicted - goal, axis=1)
        best = int(distance.argmin())
        return (pairs[best, :-1], float(pairs[best, -1])) if distance[best] < np.linalg.norm(here - goal) else None

    def evaluate(self, env: Any, episodes: int, segments: int, steps: int, seed: int) -> dict[str, float]:
        """Push-to-goal on random goals 5-20 cm from the object: success (< 5 cm at the end) and distances."""
        successes, initial, final = [], [], []
        for e in range(episodes):
            goal = _random_goal(env, seed + e)
            obs, info = env.reset(seed=seed + e, options={"goal": goal.tolist()})
            initial.append(float(np.linalg.norm(np.asarray(info["object_pos"][:2]) - goal)))
            for _ in range(segments):
                choice = self.choose(info, goal)
                if choice is None:
                    break
                obs, info, ended = run_skill(self.agent, env, obs, choice[0], max(1, round(choice[1] * steps)))
                if ended:
                    break
            final.append(float(np.linalg.norm(np.asarray(info["object_pos"][:2]) - goal)))
            successes.append(final[-1] < SUCCESS_DISTANCE)
        return {
            "planner/success_rate": float(np.mean(successes)),
            "planner/initial_distance_m": float(np.mean(initial)),
            "planner/final_distance_m": float(np.mean(final)),
            "planner/model_rmse_m": self.fit_error,
            "planner/displacement_rms_m": self.spread,
        }


class SearchPlanner:
    """Greedy push-to-goal that tries skills in the simulator itself (no learned model).

    At each decision it saves the sim state (`env.unwrapped.sim_state()`), rolls out
    each of `candidates` sampled skills for a full skill length, scores every prefix of
    DURATIONS, restores, and executes the best (skill, duration) for real. It measures
    what the skills can do when their outcome is known exactly; `SkillPlanner` adds
    the error of predicting it.
    """

    def __init__(self, agent: Any, candidates: int, seed: int) -> None:
        self.agent, self.candidates = agent, candidates
        self.rng = np.random.default_rng(seed)

    def choose(
        self, env: Any, obs: np.ndarray, info: dict[str, Any], goal: np.ndarray, steps: int
    ) -> tuple[np.ndarray, int] | None:
        """The (skill, number of steps) that ends nearest the goal in simulation; None if none beats staying."""
        sim = env.unwrapped
        saved = sim.sim_state()
        checkpoints = {max(1, round(f * steps)) for f in SkillPlanner.DURATIONS}
        best, best_distance = None, float(np.linalg.norm(np.asarray(info["object_pos"][:2]) - goal))
        for z in candidate_skills(self.agent.prior, self.rng, self.candidates):
            sim.restore(saved)
            self.agent.set_skill(z)
            o = obs
            for k in range(1, max(checkpoints) + 1):
                o, _, _, _, i = sim.step(self.agent.act(o))
                if k in checkpoints:
                    distance = float(np.linalg.norm(np.asarray(i["object_pos"][:2]) - goal))
                    if distance < best_distance:
                        best, best_distance = (z, k), distance
        sim.restore(saved)
        return best

    def evaluate(self, env: Any, episodes: int, segments: int, steps: int, seed: int) -> dict[str, float]:
        """Push-to-goal on the same random goals as `SkillPlanner.evaluate`: success (< 5 cm at the end) and distances."""
        successes, final = [], []
        for e in range(episodes):
            goal = _random_goal(env, seed + e)
            obs, info = env.reset(seed=seed + e, options={"goal": goal.tolist()})
            for _ in range(segments):
                choice = self.choose(env, obs, info, goal, steps)
                if choice is None:
                    break
                obs, info, ended = run_skill(self.agent, env, obs, choice[0], choice[1])
                if ended:
                    break
            final.append(float(np.linalg.norm(np.asarray(info["object_pos"][:2]) - goal)))
            successes.append(final[-1] < SUCCESS_DISTANCE)
        return {
            "search_planner/success_rate": float(np.mean(successes)),
            "search_planner/final_distance_m": float(np.mean(final)),
        }


def _random_goal(env: Any, seed: int) -> np.ndarray:
    """A goal 5-20 cm from where the object starts after `env.reset(seed=seed)`, in a random direction."""
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.20)
    return np.asarray(info["object_pos"][:2]) + radius * np.array([np.cos(angle), np.sin(angle)])


def plot_displacements(r: SkillRollouts, path: Path, title: str) -> Path:
    """Scatter of final object displacement per skill, coloured by the skill's direction (continuous) or index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    z = r.skills
    colour = np.arctan2(z[:, 1], z[:, 0]) if z.shape[1] >= 2 else z[:, 0]
    ax.scatter(
        r.displacement[:, 0] * 100,
        r.displacement[:, 1] * 100,
        c=colour,
        cmap="hsv",
        s=18,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="object dx (cm)", ylabel="object dy (cm)", title=title, aspect="equal")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def grid_frames(videos: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Tile equally sized clips into one square-ish grid clip (shorter clips hold their last frame)."""
    cols = math.ceil(math.sqrt(len(videos)))
    rows = math.ceil(len(videos) / cols)
    h, w, c = videos[0][0].shape
    length = max(len(v) for v in videos)
    frames = []
    for t in range(length):
        canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
        for i, clip in enumerate(videos):
            r, col = divmod(i, cols)
            canvas[r * h : (r + 1) * h, col * w : (col + 1) * w] = clip[min(t, len(clip) - 1)]
        frames.append(canvas)
    return frames


def measure_skills(agent: Any, factory: Any, record: int = 0) -> tuple[SkillRollouts, list[list[np.ndarray]]]:
    """The report's skill rollouts: `report_skills` skills over `report_starts` start states, the first `record` filmed."""
    cfg = agent.config
    env = factory.make(render_mode="rgb_array" if record > 0 else None)
    try:
        return rollout_skills(
            agent,
            env,
            report_skill_vectors(agent, cfg.report_skills, agent.seed + 1000),
            cfg.report_starts,
            seed=agent.seed + 2000,
            record=record,
        )
    finally:
        env.close()


def search_metrics(agent: Any, factory: Any, env: Any | None = None) -> dict[str, float]:
    """The simulator-search planner on the report's push-to-goal tasks (`env`: a planner env to reuse)."""
    cfg = agent.config
    planner_env = env or _planner_env(factory, cfg.planner_segments)
    result = SearchPlanner(agent, cfg.search_candidates, seed=agent.seed).evaluate(
        planner_env, cfg.planner_episodes, cfg.planner_segments, _episode_length(factory), seed=agent.seed + 4000
    )
    if env is None:
        planner_env.close()
    return result


def report(agent: Any, factory: Any, run_dir: Path) -> dict[str, float]:
    """Skill metrics, videos/skills_grid.mp4, skills.png and the planners' push-to-goal success."""
    from embodied.video import write_video

    cfg = agent.config
    metrics: dict[str, float] = {}
    if cfg.report_skills > 0:
        rollouts, videos = measure_skills(agent, factory, record=cfg.video_grid)
        metrics.update(skill_metrics(rollouts))
        np.savez(run_dir / "skills.npz", **vars(rollouts))
        plot_displacements(
            rollouts, run_dir / "skills.png", f"{cfg.critics} critic(s), {cfg.discovery}, {agent.num_steps} steps"
        )
        if videos:
            (run_dir / "videos").mkdir(exist_ok=True)
            write_video(run_dir / "videos" / "skills_grid.mp4", grid_frames(videos), fps=20)
    if cfg.planner_episodes > 0:
        env = _planner_env(factory, cfg.planner_segments)
        steps = _episode_length(factory)
        planner = SkillPlanner(agent, cfg.planner_candidates, seed=agent.seed)
        planner.fit(env, cfg.planner_data_episodes, cfg.planner_segments, steps, seed=agent.seed + 3000)
        metrics.update(planner.evaluate(env, cfg.planner_episodes, cfg.planner_segments, steps, seed=agent.seed + 4000))
        if cfg.search_candidates > 0 and hasattr(env.unwrapped, "sim_state"):
            metrics.update(search_metrics(agent, factory, env))
        env.close()
    agent.reset()
    return metrics


def _episode_length(factory: Any) -> int:
    import gymnasium as gym

    return factory.config.max_episode_steps or gym.spec(factory.config.id).max_episode_steps


def _planner_env(factory: Any, segments: int) -> Any:
    """The training env with room for `segments` skills of one training episode each."""
    from embodied.envs import make
    from embodied.envs.factory import env_kwargs

    return make(factory.config.id, max_episode_steps=segments * _episode_length(factory), **env_kwargs(factory.config))
