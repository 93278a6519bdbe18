"""Answering a customer's question about the business from ``knowledge/``: retrieve, decide,
answer (:mod:`bot.answering.answers`) and record the answer for feedback and the console. Retrieval is
routed by the question's script and prefers passages in the customer's language (:mod:`bot.answering.retrieval`).

Below ``answer_min_similarity`` Closer does not answer: it asks back with buttons for the likeliest
topics (passages above ``TOPIC_MIN_SIMILARITY``), or, when there are none, says it does not know
and offers a person.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass, field

from bot.answering import budget, grounding, llm
from bot.answering.answers import compose
from bot.answering.index import KNOWLEDGE
from bot.answering.retrieval import Hit, get_retriever
from bot.commerce import cart as carts
from bot.commerce.pricing import load_pricing
from bot.commerce.search import get_product
from bot.core import db
from bot.core.business import Company
from bot.core.models import KnowledgeAnswer
from bot.core.settings import get_settings
from bot.texts import i18n, replies
from bot.texts.i18n import _

TOPIC_MIN_SIMILARITY = 0.25
MAX_TOPICS = 3


@dataclass(frozen=True)
class KnowledgeReply:
    """What to send. ``response`` names a domain response to use instead of ``text``; ``answer_id``
    is the stored :class:`~bot.core.models.KnowledgeAnswer` (feedback is asked for when ``feedback``)."""

    answer_id: str
    text: str | None = None
    response: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    feedback: bool = False


def topic_buttons(hits: list[Hit]) -> list[dict[str, str]]:
    """One button per distinct section among ``hits`` that is similar enough, then "Talk to a
    person". A topic button sends ``/ask_knowledge{"topic": <chunk id>}``."""
    buttons: list[dict[str, str]] = []
    for hit in hits:
        if hit.similarity >= TOPIC_MIN_SIMILARITY and len(buttons) < MAX_TOPICS:
            payload = "/ask_knowledge" + json.dumps({"topic": hit.id})
            buttons.append({"title": hit.metadata.get("heading") or hit.source, "payload": payload})
    return buttons


async def _products(conversation_id: str, skus: list[str]) -> tuple[list[str], grounding.Facts]:
    """Lines on the cart's products (with quantities) and those just shown, prices and stock from the DB, and
    their facts for the post-check. The cart is priced for segment ``new`` with no conversation discount: the
    discounts it gets are a subset of the customer's, so the post-check never accepts a discount they do not get.
    The lines are in the default language whatever the customer's: the post-check reads their figures in its
    formats ("AED 1,290.00")."""
    with i18n.use(None):
        async with db.session_scope() as session:
            cart = await carts.get_cart(session, conversation_id)
            in_cart = [
                f"in the cart: {line.quantity} × " + replies.product_line(line.product).lstrip("• ")
                for line in cart.lines
            ]
            shown = [
                p
                for p in [await get_product(session, sku) for sku in skus[:5]]
                if p and p.sku not in {x.sku for x in cart.lines}
            ]
            rules = load_pricing()
            lines = [*in_cart, *(replies.product_line(p).lstrip("• ") for p in shown)]
            priced = rules.price(carts.items(cart)) if cart.lines else None
            facts = grounding.Facts.of(lines, [*(line.product for line in cart.lines), *shown], priced, rules)
    return lines, facts


async def _hits(question: str, topic: str | None) -> list[Hit]:
    retriever = await asyncio.to_thread(get_retriever, KNOWLEDGE)
    if topic and topic in retriever.documents:
        return [Hit(topic, retriever.documents[topic], retriever.metadatas[topic], 1.0, 1.0)]
    return await retriever.asearch(question, get_settings().retrieval_top_k, "routed", i18n.current())


async def answer_question(
    conversation_id: str,
    question: str,
    company: Company,
    stage: str | None = None,
    shown_skus: list[str] | None = None,
    topic: str | None = None,
) -> KnowledgeReply:
    """Answer ``question`` (or, when the customer picked a topic button, answer it from the chunk
    ``topic``), store the answer and return what to send; within the LLM budget
    (:mod:`bot.answering.budget`) with the LLM, when one is configured. Raises what Chroma or the DB raise."""
    hits = await _hits(question, topic)
    best = hits[0].similarity if hits else 0.0
    row = KnowledgeAnswer(id=uuid.uuid4().hex, conversation_id=conversation_id, question=question, similarity=best)
    if best < get_settings().answer_min_similarity:
        buttons = topic_buttons(hits)
        row.mode, row.sources = ("clarify" if buttons else "unanswered"), [h.id for h in hits]
        row.answer = "utter_clarify_question" if buttons else "utter_no_answer"
        reply = KnowledgeReply(
            row.id,
            response=row.answer,
            buttons=[*buttons, {"title": _("Talk to a person"), "payload": "/request_human"}] if buttons else [],
        )
    else:
        over_budget = None
        if llm.configured():
            async with db.session_scope() as session:
                over_budget = await budget.exceeded(session, conversation_id)
        lines, facts = await _products(conversation_id, shown_skus or [])
        answer = await compose(question, hits, company, stage, lines, over_budget, facts)
        row.mode, row.sources, row.answer, row.fallback_reason = (
            answer.mode,
            answer.sources,
            answer.text,
            answer.fallback_reason,
        )
        if answer.completion:
            c = answer.completion
            row.llm_model, row.latency_s, row.prompt_tokens, row.completion_tokens, row.cost_usd = (
                c.model,
                c.latency_s,
                c.prompt_tokens,
                c.completion_tokens,
                c.cost_usd,
            )
        reply = KnowledgeReply(row.id, text=answer.text, sources=answer.sources, feedback=True)
    async with db.session_scope() as session:
        session.add(row)
    return reply
