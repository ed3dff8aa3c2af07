"""One candidate design: the Reward Designer and the Reward Critic until it is accepted or given up.

Every attempt passes the stages in order and stops at the first that fails: `format` (a
```python block defining reward, not cut off), `static` (the sandbox's rules), `sandbox`
(execution on recorded views: no exception, hang or bad return), `semantic` (the logic
checks of critic.semantic_errors) and `llm_review` (the LLM Critic: a "revise" with at
least one problem sends it back; an empty "pass" is recorded as no review, not as a pass).
critique.json is rewritten after every attempt, so a run stopped by the LLM keeps them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

from embodied.llm import LLMError

STAGES = ("format", "static", "sandbox", "semantic", "llm_review")


class Stopped(Exception):
    """The LLM failed mid-design: where (role, iteration, candidate, attempt) and the one-line error."""

    def __init__(self, where: dict[str, Any], error: LLMError) -> None:
        super().__init__(str(error))
        self.where, self.error = where, error


def request_seed(base: int, *path: object) -> int:
    """The sampling seed of one request, fixed by the run's seed and the request's place in the loop."""
    digest = hashlib.sha256("/".join(str(p) for p in (base, *path)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _format_errors(answer: Any, code: Optional[str], max_tokens: Optional[int]) -> list[dict[str, Any]]:
    if answer.cut_off:
        return [
            {
                "kind": "cut_off",
                "message": f"the answer was cut off at llm.max_tokens={max_tokens} tokens (finish_reason 'length'): "
                "write a shorter function with fewer comments (or raise llm.max_tokens / llm.local.n_ctx)",
                "line": None,
                "view": None,
            }
        ]
    if code is None:
        return [
            {
                "kind": "format",
                "message": "no ```python block defining reward(view, memory)",
                "line": None,
                "view": None,
            }
        ]
    return []


def check_answer(answer: Any, cfg: Any, task: Any, episodes: list) -> tuple[Optional[str], Optional[str], list, dict]:
    """The stages that need no LLM, in order: (code, the first failed stage or None, its errors, the execution record)."""
    from embodied.agents.auto_mc_reward import critic

    code = None if answer.cut_off else critic.extract_code(answer.text)
    errors = _format_errors(answer, code, cfg.llm.max_tokens)
    if errors:
        return code, "format", errors, {}
    errors = critic.static_errors(code)
    if errors:
        return code, "static", errors, {}
    execution, errors = critic.execute(
        code, episodes, cfg.scale_constraint, cfg.timeout_s, cfg.memory_mb, cfg.isolation, task.achievement
    )
    if errors:
        return code, "sandbox", errors, execution
    errors = critic.semantic_errors(code, execution)
    return code, ("semantic" if errors else None), errors, execution


def review_outcome(review: Optional[dict[str, Any]]) -> str:
    """ "revise" (a verdict with at least one problem), "pass" (with at least one checked item) or "empty"."""
    if not isinstance(review, dict):
        return "empty"
    problems = (
        [p for p in (review.get("problems") or []) if str(p).strip()]
        if isinstance(review.get("problems"), list)
        else []
    )
    checked = review.get("checked")
    if str(review.get("verdict", "")).lower() == "revise" and problems:
        return "revise"
    if (
        str(review.get("verdict", "")).lower() == "pass"
        and isinstance(checked, list)
        and any(str(c).strip() for c in checked)
    ):
        return "pass"
    return "empty"


def design(
    client: Any, cfg: Any, task: Any, k: int, j: int, episodes: list, analysis: str, options: Any, seed: int, out: Path
) -> tuple[Optional[str], dict[str, Any]]:
    """Candidate j of iteration k: (the accepted code or None, the critique record) ; raises Stopped on an LLM failure."""
    from embodied.agents.auto_mc_reward import critic, prompts
    from embodied.run_info import write_json
    from embodied.sandbox.checks import MAX_SOURCE

    out.mkdir(parents=True, exist_ok=True)
    messages = prompts.designer(task, failure_stats=analysis, options=options)
    record: dict[str, Any] = {"accepted": False, "attempts": []}
    code: Optional[str] = None
    for revision in range(cfg.revisions + 1):
        where = {"role": "designer", "iteration": k, "candidate": j, "attempt": revision}
        try:
            (answer,) = client.complete(
                messages, seed=request_seed(seed, "designer", k, j, revision), tag=f"designer/{k}/{j}/{revision}"
            )
        except LLMError as err:
            record["stopped"] = {**where, "error": str(err)}
            write_json(out / "critique.json", record)
            raise Stopped(where, err) from None
        attempt: dict[str, Any] = {"revision": revision, "answer": critic.clip(answer.text, MAX_SOURCE)}
        code, stage, errors, execution = check_answer(answer, cfg, task, episodes)
        review = None
        if stage is None:
            where = {**where, "role": "critic"}
            try:
                (text,) = client.chat(
                    prompts.critic(task, code, execution),
                    temperature=0.0,
                    seed=request_seed(seed, "critic", k, j, revision),
                    tag=f"critic/{k}/{j}/{revision}",
                )
            except LLMError as err:
                record["attempts"].append({**attempt, "failed_stage": None, "errors": [], "execution": execution})
                record["stopped"] = {**where, "error": str(err)}
                write_json(out / "critique.json", record)
                raise Stopped(where, err) from None
            review = critic.extract_json(text)
            attempt["review_outcome"] = review_outcome(review)
            stage = "llm_review" if attempt["review_outcome"] == "revise" else None
        attempt.update(failed_stage=stage, errors=errors, execution=execution, review=review)
        record["attempts"].append(attempt)
        if stage is None:
            record["accepted"] = True
            write_json(out / "critique.json", record)
            (out / "reward.py").write_text(code)
            return code, record
        write_json(out / "critique.json", record)
        previous = critic.clip(code or answer.text, MAX_SOURCE)
        messages = prompts.designer(
            task, analysis, critic.feedback(errors, review, code or ""), previous_code=previous, options=options
        )
    record["last_code"] = code
    write_json(out / "critique.json", record)
    (out / "reward.py").write_text(code or "# no design was produced\n")
    return None, record
