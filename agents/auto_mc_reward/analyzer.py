"""The Trajectory Analyzer: statistics of a training run's trajectories, then an LLM summary.

Statistics come from the run directory `embodied-train` leaves: evaluation episodes in
summary.json (success, steps, death cause, and the final `info["mc"]` view: where the
episode ended and what was near) and, from metrics.csv, each reward component's
per-episode sum over training (max/mean/min, as Eureka reports them).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from embodied.metrics import read_metrics


def _share(items: list[Any], n: int) -> dict[str, float]:
    return {key: round(count / n, 3) for key, count in Counter(items).most_common()}


def statistics(train_dir: Path) -> dict[str, Any]:
    """Failed vs successful evaluation episodes and reward-component traces of one run."""
    summary = json.loads((train_dir / "summary.json").read_text())
    episodes = summary.get("eval_episodes", [])
    failed = [e for e in episodes if not e["success"]]
    won = [e for e in episodes if e["success"]]
    stats: dict[str, Any] = {
        "episodes": len(episodes),
        "success_rate": summary["metrics"].get("eval/success_rate", 0.0),
    }
    if failed:
        views = [e["final_view"] for e in failed if e.get("final_view")]
        stats["failed"] = {
            "count": len(failed),
            "death_causes": _share([e["death_cause"] or "survived to the cap" for e in failed], len(failed)),
            "mean_steps": float(np.mean([e["length"] for e in failed])),
            "final_positions": [tuple(v["location_stats"]["pos"]) for v in views[:10]],
            "blocks_in_view_at_end": _share([b for v in views for b in v["near_blocks"]], max(len(views), 1)),
            "creatures_in_view_at_end": _share([c for v in views for c in v["near_entities"]], max(len(views), 1)),
            "inventory_at_end": {
                k: float(np.mean([v["inventory"][k] for v in views]))
                for k in (views[0]["inventory"] if views else {})
                if any(v["inventory"][k] for v in views)
            },
        }
    if won:
        stats["successful"] = {
            "count": len(won),
            "mean_steps_to_success": float(np.mean([e["success_step"] for e in won])),
        }
    rows = read_metrics(train_dir / "metrics.csv")
    traces: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("charts/reward/") or key == "charts/success_rate":
                traces.setdefault(key.removeprefix("charts/"), []).append(float(value))
    stats["during_training"] = {
        name: {"max": max(v), "mean": float(np.mean(v)), "min": min(v), "last": v[-1]} for name, v in traces.items()
    }
    return stats


def report(stats: dict[str, Any], summary_text: str) -> str:
    """analysis.md: the statistics, then the LLM's causes and suggestions."""
    return f"# Trajectory analysis\n\n## Statistics\n\n```json\n{json.dumps(stats, indent=1)}\n```\n\n## Likely causes and suggestions (LLM)\n\n{summary_text.strip()}\n"
