"""The Prometheus metrics of the LLM calls (against the local fake OpenAI server) and of scheduled jobs, read from
prometheus-client's registry; the action server's are scraped from the real process (tests/test_action_server.py)."""

import pytest
from prometheus_client import REGISTRY

from bot.answering import llm
from bot.scheduling.runner import run_job
from tests.fakes.llm_server import closer_on_a_fake_llm


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_llm_calls_are_counted_with_tokens_and_latency(db_url, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/qwen-test", timeout_s=2) as fake:
        before = {
            "ok": sample("closer_llm_calls_total", outcome="ok"),
            "error": sample("closer_llm_calls_total", outcome="error"),
            "prompt": sample("closer_llm_tokens_total", kind="prompt"),
            "answered": sample("closer_llm_seconds_count"),
        }
        fake.reply = "Delivery takes 3 to 5 days."
        await llm.complete([{"role": "user", "content": "how long is delivery"}])
        fake.status = 503
        with pytest.raises(llm.LLMError):
            await llm.complete([{"role": "user", "content": "and to Fujairah"}])
    assert sample("closer_llm_calls_total", outcome="ok") == before["ok"] + 1
    assert sample("closer_llm_calls_total", outcome="error") == before["error"] + 1
    assert sample("closer_llm_tokens_total", kind="prompt") == before["prompt"] + 4  # the fake counts words
    assert sample("closer_llm_seconds_count") == before["answered"] + 1  # only the answered call is timed


async def test_scheduled_job_runs_are_counted_by_outcome(db_url):
    before = sample("closer_scheduler_job_runs_total", job="escalation_watchdog", outcome="ok")
    timed = sample("closer_scheduler_job_seconds_count", job="escalation_watchdog")
    run = await run_job("escalation_watchdog")  # no escalation waits: it runs and finds nothing
    assert run.outcome == "ok"
    assert sample("closer_scheduler_job_runs_total", job="escalation_watchdog", outcome="ok") == before + 1
    assert sample("closer_scheduler_job_seconds_count", job="escalation_watchdog") == timed + 1
