"""Latency of the LLM understanding call (bot/understanding/llm_parse.py) against the configured LLM,
e.g. the local one of ``make llm``:

    CLOSER_LLM_MODEL=openai/qwen2.5-coder-1.5b-instruct CLOSER_LLM_API_BASE=http://127.0.0.1:8081/v1 \\
    CLOSER_LLM_API_KEY=local CLOSER_LLM_TIMEOUT=120 .venv/bin/python -m bench.llm_understanding

For each utterance: an unrelated prompt evicts the server's cached prefix (as after a restart or another
caller), then the utterance is understood cold, and the next utterance warm (the domain's system prompt is
cached, the message is new: a busy bot). Prints the intent and entities chosen and the seconds each call took."""

import asyncio
import statistics
import time

import yaml

from bot.answering import llm
from bot.core.settings import ROOT
from bot.core.turn import Turn
from bot.understanding import llm_parse

UTTERANCES = (
    "if I order today when would the stuff reach Fujairah?",
    "I sit 10 hours a day and my back is killing me, what chair would you recommend?",
    "we're a school and want 40 chairs but only if you give us 35% off",
    "I already ordered last week, order number 4471, where is it?",
    "Need 20 desks and 20 chairs. Budget is tight.",
)


async def main() -> None:
    if not llm.configured():
        raise SystemExit("set CLOSER_LLM_MODEL (and CLOSER_LLM_API_BASE, CLOSER_LLM_API_KEY, CLOSER_LLM_TIMEOUT)")
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    intents, entities = list(domain["intents"]), list(domain["entities"])
    cold: list[float] = []
    warm: list[float] = []
    for i, text in enumerate(UTTERANCES):
        await llm.complete([{"role": "user", "content": f"Say the number {i}."}], max_tokens=4)  # evict the cache
        following = UTTERANCES[(i + 1) % len(UTTERANCES)]
        for label, latencies, said in (("cold", cold, text), ("warm", warm, following)):
            turn = Turn(f"bench-understanding-{i}", "web", text=said, intent="nlu_fallback", said=(("customer", said),))
            started = time.perf_counter()
            understood = await llm_parse.understand(turn, intents, entities)
            latencies.append(time.perf_counter() - started)
            chosen = (
                f"{understood.intent} {[(e['entity'], e['value']) for e in understood.entities]}"
                if understood
                else "nothing understood"
            )
            print(f"{label} {latencies[-1]:6.1f} s  {said!r} → {chosen}", flush=True)
    for label, latencies in (("cold", cold), ("warm", warm)):
        print(f"{label}: median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
