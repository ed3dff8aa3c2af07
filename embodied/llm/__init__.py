"""LLM access for Auto MC-Reward: one OpenAI-compatible chat client with record/replay."""

from embodied.llm.client import ChatClient, LLMError, request_key
from embodied.llm.config import LLMConfig

__all__ = ["ChatClient", "LLMConfig", "LLMError", "request_key"]
