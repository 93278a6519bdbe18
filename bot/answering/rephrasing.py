"""The response rephraser (like Rasa Pro's contextual rephraser): the configured LLM rewrites a template text the
action server is about to send so that it follows the conversation and is in the customer's language.

Off unless both ``CLOSER_LLM_MODEL`` and ``CLOSER_LLM_REPHRASE=true`` are set. It rewrites the ``text`` messages of
an action's :class:`~bot.core.turn.Outcome` (``actions.base.SafeAction`` calls :func:`rephrase_outcome`); texts
longer than ``llm_rephrase_max_chars`` are sent as they are (a product list is a table, not prose). Rasa's own
``utter_*`` responses — an action's ``response=`` messages and those of rules and stories — are rendered by the
Rasa server from ``domain.yml`` (conditional variations included) and are not rephrased.

A rewrite is sent only if it keeps every fact of the template (:func:`changes`): the same figures (as
:func:`bot.answering.grounding.figures` normalises them; none added), SKUs, links, product names and ``Source:``
line. Otherwise, and on any LLM error or timeout (``llm_timeout``, ``llm_retries``) or with the conversation or
the day over its LLM budget (:func:`bot.answering.budget.exceeded`), the template text is sent. Prices, discounts
and stock therefore always come from the template, never from the model. Like escalation summaries, rephrasing
respects the budget but its usage is not recorded in it. E-mail addresses and phone numbers are masked for the
model and restored.
"""

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from bot.answering import budget, grounding, llm
from bot.commerce.search import get_product
from bot.core import db
from bot.core.business import get_company
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn
from bot.privacy.pii import Masker

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 6  # the conversation's last messages the model sees
HISTORY_CHARS = 300  # each cut to this many characters


@dataclass(frozen=True)
class Rephrasing:
    """What to send for one template text: ``text`` is the rewrite when ``rephrased``, else the template;
    ``reason`` says why the template was kept (None when rephrased); ``completion`` is the LLM call, if one
    was made."""

    text: str
    rephrased: bool
    reason: str | None = None
    completion: llm.Completion | None = None


def enabled() -> bool:
    """Whether rephrasing is on: an LLM is configured and ``llm_rephrase`` is set."""
    settings = get_settings()
    return bool(settings.llm_model and settings.llm_rephrase)


def _source_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip().startswith(("Source: ", "Sources: "))}


def _figures(text: str) -> set[str]:
    """The figures of ``text`` outside its links and SKUs (those are compared whole)."""
    return grounding.figures(grounding.SKU.sub(" ", grounding.LINK.sub(" ", text)))


def changes(template: str, rewrite: str, names: Iterable[str] = ()) -> list[str]:
    """What ``rewrite`` does not keep of ``template`` (empty when it keeps everything): figures dropped or
    added, SKUs dropped or added, links changed, any of the product ``names`` (those in ``template``) dropped,
    and the ``Source:`` line changed."""
    found = []
    for what, extract in (("figure", _figures), ("SKU", grounding.skus), ("link", grounding.links)):
        before, after = extract(template), extract(rewrite)
        found += [f"drops {what} {x}" for x in sorted(before - after)]
        found += [f"adds {what} {x}" for x in sorted(after - before)]
    found += [f"drops product name {n!r}" for n in sorted(set(names)) if n in template and n not in rewrite]
    found += [f"changes the source line {s!r}" for s in sorted(_source_lines(template) - _source_lines(rewrite))]
    return found


def instructions() -> str:
    """The system prompt: stable and first, so that a local server reuses its cache."""
    company = get_company()
    return (
        f"You are {company.assistant_name}, the sales assistant of {company.name}. You rewrite the assistant's "
        "next message so that it follows naturally from the conversation and is in the language the customer "
        "writes in. Keep every number, price, percentage, date, product code (like OC-1006), link and product "
        "name exactly as written, keep one line per list item, keep any line starting with 'Source:' unchanged, "
        "and add no facts, offers, prices or questions. Reply with the rewritten message only."
    )


def messages_for(text: str, said: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages asking to rewrite ``text`` after the conversation ``said`` ((speaker, text), oldest
    first; the last :data:`HISTORY_MESSAGES` are used)."""
    history = "\n".join(
        f"{'Customer' if who == 'customer' else 'Assistant'}: {what[:HISTORY_CHARS]}"
        for who, what in said[-HISTORY_MESSAGES:]
    )
    return [
        {"role": "system", "content": instructions()},
        {"role": "user", "content": f"Conversation so far:\n{history or '(none)'}\n\nMessage to rewrite:\n{text}"},
    ]


async def rephrase(
    text: str, said: Sequence[tuple[str, str]], conversation_id: str, names: Iterable[str] = ()
) -> Rephrasing:
    """Rewrite ``text`` for the conversation ``conversation_id`` (messages ``said``); ``names`` are product
    names the rewrite must keep. Never raises for an LLM failure: the template text is kept with the reason."""
    settings = get_settings()
    if not enabled():
        return Rephrasing(text, False, "off")
    if len(text) > settings.llm_rephrase_max_chars:
        return Rephrasing(text, False, f"longer than {settings.llm_rephrase_max_chars} characters")
    async with db.session_scope() as session:
        over_budget = await budget.exceeded(session, conversation_id)
    if over_budget:
        return Rephrasing(text, False, over_budget)
    masker = Masker(settings.default_phone_region)
    prompt = messages_for(masker.mask(text), [(who, masker.mask(what)) for who, what in said])
    try:
        completion = await llm.complete(prompt)
    except llm.LLMError as exc:
        log.warning("rephrasing failed, sending the template text: %s", exc)
        return Rephrasing(text, False, f"LLM error: {exc}")
    rewrite = masker.restore(completion.text)
    found = changes(text, rewrite, names)
    if found:
        log.info("rephrasing refused (%s): %r", "; ".join(found), rewrite)
        return Rephrasing(text, False, "; ".join(found), completion)
    log.info("rephrased in %.2f s", completion.latency_s)
    return Rephrasing(rewrite, True, None, completion)


async def product_names(text: str) -> list[str]:
    """The catalog names of the products whose SKUs ``text`` names."""
    async with db.session_scope() as session:
        products = [await get_product(session, sku) for sku in sorted(grounding.skus(text))]
    return [p.name for p in products if p is not None]


async def rephrase_outcome(outcome: Outcome, turn: Turn) -> Outcome:
    """``outcome`` with each ``text`` message rephrased (:func:`rephrase`) for ``turn``'s conversation; messages
    with a ``response`` or a ``json_message`` as they are. ``outcome`` itself when rephrasing is off. All its
    messages together take at most one LLM call's bound, ``llm_timeout × (llm_retries + 1)`` seconds: a text not
    rephrased by then is sent as it is. Never raises: a failure keeps the template text and is logged."""
    if not enabled():
        return outcome
    settings = get_settings()
    deadline = time.monotonic() + settings.llm_timeout * (settings.llm_retries + 1)
    said = list(turn.said)
    rephrased = []
    for message in outcome.messages:
        text = message.get("text")
        if text and not message.get("response") and not message.get("json_message"):
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                names = await product_names(text)
                result = await asyncio.wait_for(rephrase(text, said, turn.conversation_id, names), remaining)
                message = {**message, "text": result.text}
            except TimeoutError:
                log.warning("rephrasing ran out of time in conversation %s; sending the template", turn.conversation_id)
            except Exception:
                log.exception("rephrasing failed in conversation %s; sending the template text", turn.conversation_id)
            said.append(("bot", message["text"]))
        rephrased.append(message)
    return replace(outcome, messages=rephrased)
