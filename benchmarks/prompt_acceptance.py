"""What each addition to the Designer's prompt does to the share of first answers the Critic's checks accept.

    python benchmarks/prompt_acceptance.py [--tasks CollectWood,EatCow,DiamondLava] [--samples 4]
        [--variants paper,view,example,both] [--out runs/bench_prompts] [--design-args llm.seed=0]

For every variant of the prompt (the paper's six parts alone; plus a real example view;
plus a worked reward for a different task; both), task and sample, one Designer request to
the local model (llm=local, as embodied-design-reward makes it; answers are stored in
--out, so a rerun is answered from the store), then the checks that need no LLM: format,
static, sandbox, semantic. Prints the attempts failing at each stage and the share passing
all four with its 95% Wilson interval, the mean answer length and the LLM's seconds per
answer, then the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from common import command_line

from embodied.evaluation import wilson_interval

VARIANTS = {"paper": (False, False), "view": (True, False), "example": (False, True), "both": (True, True)}
STAGES = ("format", "static", "sandbox", "semantic")


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from embodied.agents.auto_mc_reward import prompts
    from embodied.agents.auto_mc_reward.candidate import check_answer, request_seed
    from embodied.agents.auto_mc_reward.config import DesignConfig
    from embodied.agents.auto_mc_reward.loop import prompt_options, record_views
    from embodied.envs.minecraft.tasks import get_task
    from embodied.llm import ChatClient
    from embodied.llm.server import serving

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="CollectWood,EatCow,DiamondLava")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--out", default="runs/bench_prompts")
    parser.add_argument("--design-args", nargs="*", default=[], help="embodied-design-reward overrides (llm.*)")
    args = parser.parse_args(argv)
    base = OmegaConf.merge(
        OmegaConf.structured(DesignConfig),
        {"llm": OmegaConf.load(Path(__file__).parent.parent / "conf" / "llm" / "local.yaml")},
        OmegaConf.from_dotlist(args.design_args),
    )
    cfg: DesignConfig = OmegaConf.to_object(base)  # type: ignore[assignment]
    seed = cfg.llm.seed if cfg.llm.seed is not None else 0
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    counts: dict[str, Counter[str]] = {v: Counter() for v in variants}
    tokens: dict[str, list[int]] = {v: [] for v in variants}
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    store = Path(args.out) / "llm_store"
    with serving(cfg.llm):
        client = ChatClient(cfg.llm, store_dir=store)
        client.check()
        for name in tasks:
            task = get_task(name)
            episodes = record_views(name, cfg.view_episodes, cfg.view_seed)
            for variant in variants:
                cfg.task = name
                cfg.prompt.example_view, cfg.prompt.worked_example = VARIANTS[variant]
                options = prompt_options(cfg, episodes)
                for i in range(args.samples):
                    (answer,) = client.complete(
                        prompts.designer(task, options=options),
                        seed=request_seed(seed, "prompt", variant, name, i),
                        tag=f"prompt/{variant}/{name}/{i}",
                    )
                    counts[variant][check_answer(answer, cfg, task, episodes)[1] or "passed"] += 1
                    tokens[variant].append(len(answer.text))
                    print(f"{name} {variant} {i}: {dict(counts[variant])}", file=sys.stderr, flush=True)
    for path in store.glob("*-*.json"):
        entry = json.loads(path.read_text())
        variant = entry.get("tag", "").split("/")[1] if entry.get("tag", "").startswith("prompt/") else None
        if variant in seconds:
            seconds[variant].append(entry.get("seconds", 0.0))
    print(
        "| prompt | answers | failed: format | static | sandbox | semantic | passed all four (95% CI) | answer chars | s per answer |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant in variants:
        c, n = counts[variant], sum(counts[variant].values())
        low, high = wilson_interval(c["passed"], n)
        cells = " | ".join(str(c[s]) for s in STAGES)
        mean_s = sum(seconds[variant]) / max(len(seconds[variant]), 1)
        print(
            f"| {variant} | {n} | {cells} | {c['passed'] / n:.0%} ({low:.0%}–{high:.0%}) | {sum(tokens[variant]) / n:.0f} | {mean_s:.0f} |"
        )
    print(
        f"\n{cfg.llm.model}, {args.samples} samples per task and prompt, tasks {', '.join(tasks)}, temperature {cfg.llm.temperature}."
    )
    print(f"command: {command_line('benchmarks/prompt_acceptance.py', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
