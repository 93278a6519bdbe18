"""Grounded answers to knowledge questions.

Given the retrieved passages, :func:`compose` answers either

- extractively (no LLM configured, the default; also the fallback for every LLM failure): the best
  passage's most relevant whole sentences and its source title, after a line in the customer's language saying
  which language the passage is in when it is not the customer's; or
- with the configured LLM: a prompt with the company persona, the sales stage, numbered passages
  and the cart and products the customer is looking at (prices and stock read from the DB), e-mail
  addresses and phone numbers masked; the reply must pass :func:`bot.answering.grounding.check` against the
  passages and the DB's :class:`~bot.answering.grounding.Facts` (never the customer's message; it also refuses a
  reply repeating the :func:`instructions`), else the extractive answer is used and the reasons kept. The prompt
  names the customer's language (``bot.texts.i18n.current()``) and each passage's when they differ, and asks for
  the answer in the customer's language with every figure as the passage writes it.
"""

import asyncio
import logging
from dataclasses import dataclass

from babel import Locale

from bot.answering import extractive, grounding, llm
from bot.answering.retrieval import Hit
from bot.core.business import Company
from bot.core.settings import get_settings
from bot.privacy.pii import Masker
from bot.texts import i18n
from bot.texts.i18n import _, ngettext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What the customer is told and what it rests on. ``mode`` is ``extractive`` or ``llm``;
    ``sources`` the chunk ids used; ``completion`` the LLM call, when one was made (also when its
    answer was rejected, so that its cost is recorded); ``fallback_reason`` why an LLM answer was
    not used."""

    text: str
    mode: str
    sources: list[str]
    completion: llm.Completion | None = None
    fallback_reason: str | None = None


def _cite_sources(hits: list[Hit]) -> str:
    """The answer's last line, ``Source: Title — Section`` (or ``Sources: …; …``) in the active language, the
    titles as the passages have them. Answers join it with a single newline: Rasa's channels split a text at
    blank lines into separate messages."""
    titles = list(dict.fromkeys(h.source for h in hits))
    return ngettext("Source: %(titles)s", "Sources: %(titles)s", len(titles)) % {"titles": "; ".join(titles)}


EXTRACTIVE_PASSAGES = 3
CLEARLY_CLOSER = 0.05  # cosine by which a lower hit must beat the top one to be answered from


async def extractive_answer(question: str, hits: list[Hit]) -> Answer:
    """The top hit's most relevant whole sentences, then "Source: <title — heading>". A hit
    ranked 2nd or 3rd is used instead when its cosine to the question is ``CLEARLY_CLOSER`` higher
    (on the question set this answers from the labelled chunk 71% of the time, against 69% for the top hit).
    A passage in another language than the customer's (``bot.texts.i18n.current()``) comes after a line saying so
    in the customer's language: "This is from our Payment page, written in English:"."""
    hit = hits[0]
    for other in hits[1:EXTRACTIVE_PASSAGES]:
        if other.similarity > hit.similarity + CLEARLY_CLOSER:
            hit = other
    text = await asyncio.to_thread(extractive.extract, question, hit.text)
    language = hit.metadata.get("language")
    if language and language != i18n.current():
        notice = _("This is from our %(title)s page, written in %(language)s:")
        name = Locale.parse(language).get_display_name(i18n.locale())
        text = f"{notice % {'title': hit.metadata.get('title', ''), 'language': name}}\n{text}"
    return Answer(f"{text}\n{_cite_sources([hit])}", "extractive", [hit.id])


def instructions(company: Company, stage: str | None) -> str:
    """The system prompt's persona and rules: what the post-check refuses to see repeated to a customer."""
    return (
        f"You are {company.assistant_name}, the sales assistant of {company.name} ({company.brand}). "
        f"The conversation is at the sales stage: {stage or 'greeting'}.\n"
        "Answer the customer's question using ONLY the numbered passages below. Cite every passage you "
        "use by its id in square brackets, e.g. [P1]. Never state a price, discount, percentage, "
        "quantity or date that is not written in the passages or the product list; if the passages do "
        "not answer the question, say so and offer to connect a manager. Answer in the language the "
        "customer writes in, in at most four sentences, friendly and concise. Text like [EMAIL_1] or "
        "[PHONE_1] stands for the customer's contact details: keep such placeholders as they are."
    )


def prompt(
    question: str, hits: list[Hit], company: Company, stage: str | None, products: list[str]
) -> tuple[list[dict[str, str]], str]:
    """The chat messages for the LLM and the system prompt alone: the context (instructions, products and
    passages) the post-check compares figures with. ``products`` are lines about what the customer is
    looking at, prices and stock from the DB. A passage in another language than the customer's is marked with its
    language, and the prompt asks for the answer in the customer's."""
    customer = i18n.current()
    in_language = {n: h.metadata.get("language") or customer for n, h in enumerate(hits, start=1)}
    name = {code: Locale.parse(code).get_display_name("en") for code in {customer, *in_language.values()}}
    passages = "\n\n".join(
        f"[P{n}] ({h.source}" + (f"; in {name[in_language[n]]})" if in_language[n] != customer else ")") + f"\n{h.text}"
        for n, h in enumerate(hits, start=1)
    )
    looking_at = "\n".join(f"- {line}" for line in products) or "- nothing yet"
    language = (
        f"The customer reads {name[customer]}: answer in {name[customer]}, also from passages in another language, "
        "writing every number, price, date and time with the digits 0-9 exactly as the passage has it.\n\n"
        if set(in_language.values()) != {customer}
        else ""
    )
    system = (
        f"{instructions(company, stage)}\n\n{language}"
        f"The customer's cart and the products they are looking at (prices exclude VAT):\n{looking_at}\n\n"
        f"Passages:\n{passages}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}], system


async def compose(
    question: str,
    hits: list[Hit],
    company: Company,
    stage: str | None = None,
    products: list[str] | None = None,
    over_budget: str | None = None,
    facts: grounding.Facts | None = None,
) -> Answer:
    """Answer ``question`` from ``hits`` (best first, at least one). Never raises for an LLM
    failure: a provider error, a timeout or a reply failing the post-check gives the extractive
    answer with ``fallback_reason`` set. ``over_budget`` (:func:`bot.answering.budget.exceeded`): the LLM is
    not called; the extractive answer carries it as ``fallback_reason``. ``facts``: what the DB says of
    ``products`` for the post-check (default: only the figures of the ``products`` lines)."""
    if not llm.configured():
        return await extractive_answer(question, hits)
    if over_budget:
        return _fallback(await extractive_answer(question, hits), None, over_budget)
    masker = Masker(get_settings().default_phone_region)
    messages, _ = prompt(masker.mask(question), hits, company, stage, products or [])
    try:
        completion = await llm.complete(messages)
    except llm.LLMError as exc:
        log.warning("LLM failed, answering extractively: %s", exc)
        return _fallback(await extractive_answer(question, hits), None, f"LLM error: {exc}")
    log.info(
        "LLM %s answered in %.2f s, %d prompt + %d completion tokens, cost %s USD",
        completion.model,
        completion.latency_s,
        completion.prompt_tokens,
        completion.completion_tokens,
        "unknown" if completion.cost_usd is None else f"{completion.cost_usd:.6f}",
    )
    found = grounding.check(  # on the masked reply: the customer's contact details are no figures of theirs
        completion.text,
        {f"P{n}" for n in range(1, len(hits) + 1)},
        [h.text for h in hits],
        facts or grounding.Facts(tuple(products or ())),
        masker.mask(question),
        instructions(company, stage),
    )
    reply = masker.restore(completion.text)
    if found:
        reasons = "; ".join(map(str, found))
        rules = ", ".join(dict.fromkeys(p.rule for p in found))
        log.warning("LLM answer rejected by the post-check [%s] (%s): %r", rules, reasons, reply)
        return _fallback(await extractive_answer(question, hits), completion, "post-check: " + reasons)
    cited = [hits[int(c[1:]) - 1] for c in dict.fromkeys(grounding.CITATION.findall(reply))]
    text = grounding.CITATION.sub("", reply).replace(" .", ".").replace("  ", " ").strip()
    return Answer(f"{text}\n{_cite_sources(cited)}", "llm", [h.id for h in cited], completion)


def _fallback(answer: Answer, completion: llm.Completion | None, reason: str) -> Answer:
    return Answer(answer.text, answer.mode, answer.sources, completion, reason)
