"""Chat completions from any provider through litellm, configured by ``CLOSER_LLM_*`` settings.

With ``llm_model`` unset (the default) nothing here is used and litellm is never imported.
litellm reads its model price list from the installed package (``LITELLM_LOCAL_MODEL_COST_MAP``),
never from the network.
"""

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from bot.core.settings import get_settings
from bot.observability.metrics import LLM_CALLS, LLM_COST, LLM_SECONDS, LLM_TOKENS


class LLMError(Exception):
    """The provider failed, timed out or answered with nothing; the message says which."""


@dataclass(frozen=True)
class Completion:
    """One answered call. ``latency_s`` in seconds; ``cost_usd`` from litellm's cost tracking, or
    None when litellm has no price for the model."""

    text: str
    model: str
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def configured() -> bool:
    """Whether an LLM is configured (``CLOSER_LLM_MODEL``)."""
    return bool(get_settings().llm_model)


async def complete(
    messages: list[dict[str, str]],
    *,
    response_format: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    temperature: float = 0.2,
) -> Completion:
    """Send ``messages`` (OpenAI chat format) to the configured model, with its fallbacks, retries
    and per-attempt timeout; the whole call is also bounded by ``timeout × (retries + 1)``.
    ``response_format`` is OpenAI's (e.g. ``{"type": "json_schema", "json_schema": {…}}``; llama.cpp's
    server turns it into a grammar), passed on as is; ``max_tokens`` defaults to ``llm_max_tokens``.
    Raises :class:`LLMError` on any provider error, timeout or empty answer. Counted in
    :mod:`bot.observability.metrics` (calls by outcome, latency, tokens, cost)."""
    try:
        completion = await _complete(messages, response_format, max_tokens, temperature)
    except LLMError:
        LLM_CALLS.labels("error").inc()
        raise
    LLM_CALLS.labels("ok").inc()
    LLM_SECONDS.observe(completion.latency_s)
    LLM_TOKENS.labels("prompt").inc(completion.prompt_tokens)
    LLM_TOKENS.labels("completion").inc(completion.completion_tokens)
    if completion.cost_usd is not None:
        LLM_COST.inc(completion.cost_usd)
    return completion


async def _complete(
    messages: list[dict[str, str]],
    response_format: dict[str, Any] | None,
    max_tokens: int | None,
    temperature: float,
) -> Completion:
    settings = get_settings()
    if not settings.llm_model:
        raise LLMError("no model configured (CLOSER_LLM_MODEL)")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(
            litellm.acompletion(
                model=settings.llm_model,
                messages=messages,
                api_key=settings.llm_api_key,
                api_base=settings.llm_api_base,
                fallbacks=settings.llm_fallbacks or None,
                timeout=settings.llm_timeout,
                num_retries=settings.llm_retries,
                max_tokens=max_tokens or settings.llm_max_tokens,
                temperature=temperature,
                **({"response_format": response_format} if response_format else {}),
            ),
            timeout=settings.llm_timeout * (settings.llm_retries + 1),
        )
    except TimeoutError as exc:
        raise LLMError(f"timeout after {time.perf_counter() - started:.1f} s") from exc
    except Exception as exc:  # litellm maps every provider failure to its own exception types
        raise LLMError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    latency = time.perf_counter() - started
    text = (response.choices[0].message.content or "").strip() if response.choices else ""
    if not text:
        raise LLMError("empty answer")
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # no price known for this model (a local or self-hosted one)
        cost = None
    usage = getattr(response, "usage", None)
    return Completion(
        text,
        response.model or settings.llm_model,
        latency,
        getattr(usage, "prompt_tokens", 0) or 0,
        getattr(usage, "completion_tokens", 0) or 0,
        cost,
    )
