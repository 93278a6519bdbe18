"""Conversation quality scoring: a scorecard of 15 criteria, each 0–2 (total 0–30), over every finished
conversation — one whose latest message is ``score_idle_s`` seconds old (settings) — by the scheduled job
``scoring``; a conversation that goes on is scored again once it is idle again. Scores are stored in
``conversation_scores`` (:class:`bot.core.models.ConversationScore`) and shown in the console's conversation
list and transcript, in analytics and in the managers' digest.

Every criterion is scored from the tracker (Rasa's events: intents, actions, slots, the bot's messages) and
the business DB (the conversation index, the contact, knowledge answers and their 👍/👎) by rules. With an LLM
configured (``CLOSER_LLM_MODEL``) the criteria marked ``judged`` — those about how well, not whether,
something was done — are then scored by an LLM judge with the fixed rubric below over the transcript, and its
rationale is stored (``by: "llm"``); when the judge fails or answers out of the rubric, the rules' score
stands. A criterion that does not apply to a conversation (no objection was raised, nothing was asked) scores
2: nothing went wrong, and totals of short conversations stay comparable with long ones.

The rules were checked against hand labels of 30 conversations of the real bot (``tests/data/scoring/``;
per-criterion accuracy and Spearman's rank correlation of the totals are printed by ``tests/review/test_scoring.py``).
As first written they agreed at a mean accuracy of 0.92 and a Spearman of 0.66; they were then corrected where
they misread the rubric — a handoff to a manager is a next step and not an answer, an out-of-scope reply or a lead
form answer the form rejects is a misunderstanding, offering to take contact details is asking for them, a quote
counts as progress only once it is made, a product is shown when the reply names its SKU — and agree at 0.97 and
0.95 on the same 30 conversations: figures of a fit, not of held-out data. What the rules cannot see — a message
the NLU misread and the bot answered beside the point, an extractive answer that does not answer — is what the
LLM judge is for.
"""

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering import llm
from bot.contracts.languages import detect
from bot.core.business import SALES_STAGES, get_company
from bot.core.db import session_scope
from bot.core.models import Contact, Conversation, ConversationScore
from bot.core.settings import Settings
from bot.core.tracker import TrackerEvent, get_reader
from bot.review import conversations
from bot.review.conversations import BotAction, BotMessage, CustomerMessage, Entry, Marker

log = logging.getLogger(__name__)

MAX_SCORE = 2
BATCH = 200  # conversations scored per run of the job; the next run takes the rest
TRANSCRIPT_CHARS = 12_000  # the LLM judge reads at most this much of a transcript (its end is kept)

SALES_INTENTS = frozenset(
    {
        "ask_products",
        "ask_price",
        "ask_stock",
        "ask_product_details",
        "compare_products",
        "add_to_cart",
        "change_quantity",
        "show_cart",
        "request_quote",
        "accept_quote",
        "ask_discount",
        "objection_price",
        "objection_delivery",
        "objection_competitor",
        "objection_think",
    }
)
PRODUCT_INTENTS = frozenset({"ask_products", "ask_price", "ask_stock", "ask_product_details", "compare_products"})
OBJECTION_INTENTS = frozenset(
    {"objection_price", "objection_delivery", "objection_competitor", "objection_think", "ask_discount"}
)
OBJECTION_ACTIONS = frozenset({"action_handle_objection", "action_handle_discount"})
QUESTION_INTENTS = frozenset(
    {"ask_delivery", "ask_payment", "ask_warranty", "ask_returns", "ask_knowledge", "ask_order_status"}
)
HUMAN_INTENTS = frozenset({"request_human", "complain"})
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_REPLIES = frozenset({"utter_default", "utter_ask_rephrase", "utter_out_of_scope"})
INVALID_ANSWER = "utter_invalid_"  # a lead form answer the form could not use (actions/leads.py re-asks)
CONTACT_ASKS = frozenset({"lead_form", "action_request_quote", "action_send_quote", "utter_offer_contacts"})
PRODUCT_MENTION = re.compile(r"\([A-Z]{2,3}-\d{3,5}\)")  # "(OC-1006)": how the bot names a catalog product
UNANSWERED_MODES = frozenset({"unanswered", "clarify"})
QUALIFYING_SLOTS = ("category", "quantity", "budget", "timeline")
QUOTE_PATH = "/quotes/"
STAGE_RANK = {stage: rank for rank, stage in enumerate(SALES_STAGES, start=1)}
QUESTION_MARKS = ("?", "؟")


@dataclass(frozen=True)
class Criterion:
    """One criterion of the scorecard: ``name`` (the key stored), ``title`` for people, ``rubric``: what
    0, 1 and 2 mean (shown in the console and given to the LLM judge); ``judged``: scored by the LLM judge
    when one is configured."""

    name: str
    title: str
    rubric: str
    judged: bool = False


CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "greeting",
        "Greeting",
        "2: the bot greeted the customer (or answered a first message that already asked for something); "
        "1: its first reply neither greeted nor answered; 0: its first reply was a fallback or nothing.",
    ),
    Criterion(
        "needs_found",
        "Needs found",
        "2: before presenting products the bot learned at least two of category, quantity, budget, timeline "
        "(or nothing was sold); 1: one of them; 0: none although the customer wanted to buy.",
        judged=True,
    ),
    Criterion(
        "products_with_prices",
        "Products shown with real prices",
        "2: every request for products or prices got catalog products (or none was made); 1: some got only a "
        "question or a category overview; 0: none got products.",
    ),
    Criterion(
        "objections_handled",
        "Objections handled",
        "2: every objection or discount request got an answer that addressed it (or none was raised); "
        "1: some did; 0: none did.",
        judged=True,
    ),
    Criterion(
        "next_step",
        "Next step proposed",
        "2: the bot's last message proposes a concrete next step (a question, buttons, a quote link); "
        "1: an earlier message did but the conversation ended without one; 0: never.",
        judged=True,
    ),
    Criterion(
        "lead_captured",
        "Lead captured",
        "2: a customer who wanted to buy left an e-mail or phone (or did not want to buy); 1: the bot asked "
        "for contact details but got none; 0: it never asked.",
    ),
    Criterion(
        "quote_offered",
        "Quote offered when appropriate",
        "2: a customer with a cart or a quote request got a quote (or had neither); 1: a quote was offered "
        "or asked for but not made; 0: a cart with lines was left without any mention of a quote.",
    ),
    Criterion(
        "no_fallback_loops",
        "No fallback loops",
        "2: the bot never failed to understand; 1: it failed on messages that were not consecutive; "
        "0: it failed on two or more messages in a row.",
    ),
    Criterion(
        "customer_language",
        "Answered in the customer's language",
        "2: at least 95% of the bot's messages are in the customer's language; 1: at least 70%; 0: fewer.",
    ),
    Criterion(
        "escalated_when_needed",
        "Escalated when it should",
        "2: a customer who asked for a person, complained or was misunderstood twice in a row was handed to a "
        "manager (or none of that happened); 0: was not.",
    ),
    Criterion(
        "politeness",
        "Politeness",
        "2: greetings, thanks and goodbyes were answered in kind and the tone was courteous; 1: one was "
        "ignored or the tone was curt; 0: several were ignored or the tone was rude.",
        judged=True,
    ),
    Criterion(
        "questions_answered",
        "No unanswered question",
        "2: every question about the business (delivery, payment, warranty, returns, orders, policies) got an "
        "answer (or none was asked); 1: some got 'I don't know' or a clarifying question only; 0: none got an "
        "answer.",
    ),
    Criterion(
        "every_message_replied",
        "Every message replied",
        "2: every customer message got a reply from the bot or a manager; 1: one got none; 0: several got none.",
    ),
    Criterion(
        "customer_satisfied",
        "Customer satisfied",
        "2: no sign of dissatisfaction (no complaint, no 👎); 1: the customer complained or rated an answer 👎 "
        "once; 0: more than once, or left angry.",
        judged=True,
    ),
    Criterion(
        "sales_progress",
        "Sale moved forward",
        "2: a customer who wanted to buy reached a quote or a manager (or did not want to buy); 1: was shown "
        "products but got no further; 0: was never shown products.",
    ),
)
CRITERIA_BY_NAME = {criterion.name: criterion for criterion in CRITERIA}
MAX_TOTAL = conversations.MAX_TOTAL  # MAX_SCORE × the 15 criteria


@dataclass(frozen=True)
class Facts:
    """What the scorer reads from the business DB besides the transcript: the conversation index's
    ``quote_created`` and ``furthest_stage``, and whether its contact has an ``email``/``phone``."""

    quote_created: bool = False
    furthest_stage: str | None = None
    contact_email: bool = False
    contact_phone: bool = False


@dataclass(frozen=True)
class Score:
    """One criterion's ``score`` (0–2), who scored it (``by``: ``rules`` or ``llm``) and why."""

    score: int
    by: str
    rationale: str


@dataclass(frozen=True)
class Scorecard:
    """The 15 criteria's :class:`Score` by criterion name (in :data:`CRITERIA` order), their ``total`` (0–30)
    and the LLM judge's model (None when only the rules scored)."""

    criteria: dict[str, Score]
    llm_model: str | None = None

    @property
    def total(self) -> int:
        return sum(score.score for score in self.criteria.values())

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {name: {"score": s.score, "by": s.by, "rationale": s.rationale} for name, s in self.criteria.items()}


@dataclass
class _Turn:
    """A customer message and what followed it up to the next one."""

    message: CustomerMessage
    actions: list[str] = field(default_factory=list)
    replies: list[BotMessage] = field(default_factory=list)
    handed_over: bool = False  # the conversation was paused for a manager in this turn, or already was

    @property
    def intent(self) -> str | None:
        return self.message.intent

    @property
    def fallback(self) -> bool:
        """Not understood: classified ``nlu_fallback`` and not answered from the knowledge, answered with a
        fallback or out-of-scope response, or a lead form answer the form could not use."""
        if self.intent == FALLBACK_INTENT and not any(
            reply.knowledge and reply.knowledge.mode not in UNANSWERED_MODES for reply in self.replies
        ):
            return True
        responses = {reply.utter_action or "" for reply in self.replies} | set(self.actions)
        return bool(responses & FALLBACK_REPLIES) or any(name.startswith(INVALID_ANSWER) for name in responses)


def _turns(entries: Iterable[Entry]) -> tuple[list[BotMessage], list[_Turn]]:
    """The bot's messages before the first customer message, and the turns."""
    opening: list[BotMessage] = []
    turns: list[_Turn] = []
    paused = False
    for entry in entries:
        if isinstance(entry, CustomerMessage):
            turns.append(_Turn(entry, handed_over=paused))
        elif isinstance(entry, BotAction) and turns:
            turns[-1].actions.append(entry.name)
        elif isinstance(entry, BotMessage):
            (turns[-1].replies if turns else opening).append(entry)
        elif isinstance(entry, Marker):
            paused = entry.kind == "pause"
            if paused and turns:
                turns[-1].handed_over = True
    return opening, turns


def _rules(criterion: str, score: int, rationale: str) -> tuple[str, Score]:
    return criterion, Score(score, "rules", rationale)


def _share_score(share: float, full: float, half: float) -> int:
    return 2 if share >= full else 1 if share >= half else 0


def _slots(turns: list[_Turn]) -> dict[str, Any]:
    slots: dict[str, Any] = {}
    for turn in turns:
        slots.update(turn.message.slots)
    return slots


def score_rules(entries: list[Entry], facts: Facts) -> Scorecard:
    """The scorecard of one conversation's transcript ``entries`` (:func:`bot.review.conversations.entries_of`)
    and its ``facts``, every criterion by the rules. Pure: no I/O (the language of the bot's messages is
    detected with lingua's models, loaded on first use)."""
    opening, turns = _turns(entries)
    slots = _slots(turns)
    intents = [turn.intent for turn in turns]
    buying = any(intent in SALES_INTENTS for intent in intents)
    actions = {action for turn in turns for action in turn.actions}
    replies = [reply for turn in turns for reply in turn.replies]
    scores = dict(
        (
            _greeting(opening, turns),
            _needs_found(turns, slots, buying),
            _products_with_prices(turns),
            _objections_handled(turns),
            _next_step(turns, replies),
            _lead_captured(facts, actions, buying),
            _quote_offered(turns, facts, actions),
            _no_fallback_loops(turns),
            _customer_language(turns),
            _escalated_when_needed(turns),
            _politeness(turns),
            _questions_answered(turns),
            _every_message_replied(turns),
            _customer_satisfied(turns, replies),
            _sales_progress(turns, facts, actions, buying),
        )
    )
    return Scorecard({criterion.name: scores[criterion.name] for criterion in CRITERIA})


def _greeting(opening: list[BotMessage], turns: list[_Turn]) -> tuple[str, Score]:
    if not turns:
        return _rules("greeting", 2 if opening else 0, "no customer message")
    first = turns[0]
    if "action_greet" in first.actions or any(r.utter_action == "utter_greet" for r in [*opening, *first.replies]):
        return _rules("greeting", 2, "greeted")
    if not first.replies or first.fallback:
        return _rules("greeting", 0, "the first message got a fallback" if first.replies else "no first reply")
    if first.intent not in ("greet", None):
        return _rules("greeting", 2, f"went straight to the customer's request ({first.intent})")
    return _rules("greeting", 1, "the customer's greeting was not returned")


def _needs_found(turns: list[_Turn], slots: dict[str, Any], buying: bool) -> tuple[str, Score]:
    if not buying:
        return _rules("needs_found", 2, "not applicable: the customer did not shop")
    known = [name for name in QUALIFYING_SLOTS if slots.get(name) not in (None, "", [])]
    if not known:
        return _rules("needs_found", 0, "no category, quantity, budget or timeline learned")
    return _rules("needs_found", 2 if len(known) >= 2 else 1, "learned " + ", ".join(known))


def _products_with_prices(turns: list[_Turn]) -> tuple[str, Score]:
    asked = [turn for turn in turns if turn.intent in PRODUCT_INTENTS]
    if not asked:
        return _rules("products_with_prices", 2, "not applicable: no products or prices asked for")
    shown = [any(PRODUCT_MENTION.search(reply.text or "") for reply in turn.replies) for turn in asked]
    rationale = f"{sum(shown)} of {len(asked)} requests for products or prices got catalog products"
    if all(shown):
        return _rules("products_with_prices", 2, rationale)
    steered = any(map(_proposes, (reply for turn in asked for reply in turn.replies)))
    return _rules("products_with_prices", 1 if any(shown) or steered else 0, rationale)


def _objections_handled(turns: list[_Turn]) -> tuple[str, Score]:
    raised = [turn for turn in turns if turn.intent in OBJECTION_INTENTS]
    if not raised:
        return _rules("objections_handled", 2, "not applicable: no objection raised")
    handled = sum(1 for turn in raised if OBJECTION_ACTIONS & set(turn.actions) and turn.replies)
    rationale = f"{handled} of {len(raised)} objections or discount requests answered"
    return _rules("objections_handled", _share_score(handled / len(raised), 1.0, 0.01), rationale)


def _proposes(reply: BotMessage) -> bool:
    text = (reply.text or "").rstrip()
    return bool(reply.buttons) or text.endswith(QUESTION_MARKS) or QUOTE_PATH in text


def _next_step(turns: list[_Turn], replies: list[BotMessage]) -> tuple[str, Score]:
    bot = [reply for reply in replies if not reply.manager]
    if not bot:
        return _rules("next_step", 0, "the bot sent no message")
    if turns[-1].handed_over:
        return _rules("next_step", 2, "ends handed to a manager, who replies next")
    if _proposes(bot[-1]):
        return _rules("next_step", 2, "the last message proposes a next step")
    if any(map(_proposes, bot)):
        return _rules("next_step", 1, "an earlier message proposed a next step, the last one none")
    return _rules("next_step", 0, "no message proposed a next step")


def _lead_captured(facts: Facts, actions: set[str], buying: bool) -> tuple[str, Score]:
    if facts.contact_email or facts.contact_phone:
        return _rules("lead_captured", 2, "the contact has an e-mail or phone")
    if not buying:
        return _rules("lead_captured", 2, "not applicable: the customer did not shop")
    if actions & CONTACT_ASKS:
        return _rules("lead_captured", 1, "contact details were asked for but not given")
    return _rules("lead_captured", 0, "a shopping customer was never asked for contact details")


def _quote_offered(turns: list[_Turn], facts: Facts, actions: set[str]) -> tuple[str, Score]:
    carted = "action_add_to_cart" in actions
    requested = any(turn.intent in ("request_quote", "accept_quote") for turn in turns)
    if not carted and not requested:
        return _rules("quote_offered", 2, "not applicable: no cart and no quote request")
    if facts.quote_created:
        return _rules("quote_offered", 2, "a quote was made")
    if requested or "action_request_quote" in actions:
        return _rules("quote_offered", 1, "a quote was asked for or offered but not made")
    offered = any(
        "quote" in (reply.utter_action or "") or QUOTE_PATH in (reply.text or "") for t in turns for reply in t.replies
    )
    return _rules(
        "quote_offered",
        1 if offered else 0,
        "a cart with lines " + ("was offered a quote" if offered else "never got a quote"),
    )


def _no_fallback_loops(turns: list[_Turn]) -> tuple[str, Score]:
    failed = [turn.fallback for turn in turns]
    if not any(failed):
        return _rules("no_fallback_loops", 2, "every message understood")
    in_a_row = _fallback_loop(turns)
    rationale = f"{sum(failed)} message(s) not understood" + (", two or more in a row" if in_a_row else "")
    return _rules("no_fallback_loops", 0 if in_a_row else 1, rationale)


def _fallback_loop(turns: list[_Turn]) -> bool:
    """Whether two consecutive customer messages were not understood."""
    return any(a.fallback and b.fallback for a, b in pairwise(turns))


def _customer_language(turns: list[_Turn]) -> tuple[str, Score]:
    languages = get_company().languages
    checked = matched = 0
    for turn in turns:
        expected = conversations.served_language(turn.message.slots.get("language", _language_before(turns, turn)))
        for reply in turn.replies:
            first_line = (reply.text or "").split("\n")[0]
            found = detect(first_line, languages)
            if found is None:
                continue
            checked += 1
            matched += found == expected
    if not checked:
        return _rules("customer_language", 2, "no message long enough to tell its language")
    rationale = f"{matched} of {checked} messages in the customer's language"
    return _rules("customer_language", _share_score(matched / checked, 0.95, 0.7), rationale)


def _language_before(turns: list[_Turn], turn: _Turn) -> Any:
    """The ``language`` slot's value before ``turn`` (the latest set by an earlier turn), None if never set."""
    value = None
    for earlier in turns:
        if earlier is turn:
            break
        value = earlier.message.slots.get("language", value)
    return value


def _escalated_when_needed(turns: list[_Turn]) -> tuple[str, Score]:
    reasons = [turn.intent for turn in turns if turn.intent in HUMAN_INTENTS]
    if _fallback_loop(turns):
        reasons.append("two misunderstood messages in a row")
    if not reasons:
        return _rules("escalated_when_needed", 2, "not applicable: no reason to escalate")
    if any(turn.handed_over for turn in turns):
        return _rules("escalated_when_needed", 2, "handed to a manager after " + ", ".join(reasons))
    return _rules("escalated_when_needed", 0, "not handed to a manager after " + ", ".join(reasons))


def _politeness(turns: list[_Turn]) -> tuple[str, Score]:
    courtesies = [turn for turn in turns if turn.intent in ("greet", "thank", "goodbye")]
    ignored = sum(1 for turn in courtesies if not turn.replies)
    if not ignored:
        return _rules("politeness", 2, "every greeting, thanks and goodbye answered")
    return _rules("politeness", 1 if ignored == 1 else 0, f"{ignored} greeting(s), thanks or goodbye(s) unanswered")


def _questions_answered(turns: list[_Turn]) -> tuple[str, Score]:
    asked = [turn for turn in turns if turn.intent in QUESTION_INTENTS]
    if not asked:
        return _rules("questions_answered", 2, "not applicable: no question about the business")

    def answered(turn: _Turn) -> bool:
        knowledge = [reply.knowledge for reply in turn.replies if reply.knowledge]
        if knowledge:
            return any(k.mode not in UNANSWERED_MODES for k in knowledge)
        return bool(turn.replies) and not turn.handed_over and not turn.fallback

    count = sum(map(answered, asked))
    rationale = f"{count} of {len(asked)} questions answered"
    return _rules("questions_answered", _share_score(count / len(asked), 1.0, 0.01), rationale)


def _every_message_replied(turns: list[_Turn]) -> tuple[str, Score]:
    silent = sum(1 for turn in turns if not turn.replies)
    if not silent:
        return _rules("every_message_replied", 2, "every message replied")
    return _rules("every_message_replied", 1 if silent == 1 else 0, f"{silent} message(s) got no reply")


def _customer_satisfied(turns: list[_Turn], replies: list[BotMessage]) -> tuple[str, Score]:
    complaints = sum(1 for turn in turns if turn.intent == "complain")
    down = sum(1 for reply in replies if reply.knowledge and (reply.knowledge.rating or 0) < 0)
    signs = complaints + down
    if not signs:
        return _rules("customer_satisfied", 2, "no complaint and no 👎")
    return _rules("customer_satisfied", 1 if signs == 1 else 0, f"{complaints} complaint(s), {down} 👎")


def _sales_progress(turns: list[_Turn], facts: Facts, actions: set[str], buying: bool) -> tuple[str, Score]:
    if not buying:
        return _rules("sales_progress", 2, "not applicable: the customer did not shop")
    if facts.quote_created:
        return _rules("sales_progress", 2, "reached a quote")
    if any(turn.handed_over for turn in turns):
        return _rules("sales_progress", 2, "reached a manager")
    if STAGE_RANK.get(facts.furthest_stage or "", 0) >= STAGE_RANK["solution"] or actions & CONTACT_ASKS:
        return _rules("sales_progress", 1, f"got as far as {facts.furthest_stage}, no quote")
    return _rules("sales_progress", 0, "never shown products")


# --- the LLM judge -------------------------------------------------------------------------------------------

JUDGE_PROMPT = """You review a conversation between a customer and a sales assistant bot of {brand}, an office \
furniture business. Score each criterion below 0, 1 or 2 by its rubric, with a one-sentence rationale that \
names what in the conversation decided it. Judge only what the transcript shows. Answer with JSON only: \
{{"<criterion>": {{"score": 0|1|2, "rationale": "..."}}, ...}} for exactly these criteria.

{rubric}"""


def transcript_text(entries: Iterable[Entry]) -> str:
    """The conversation as the LLM judge reads it: one ``customer:``/``bot:``/``manager:`` line per message
    (with the customer's intent, the bot's buttons), at most TRANSCRIPT_CHARS characters (the end kept)."""
    lines = []
    for entry in entries:
        if isinstance(entry, CustomerMessage):
            lines.append(f"customer ({entry.intent}): {entry.text}")
        elif isinstance(entry, BotMessage) and entry.text:
            buttons = [button.get("title", "") for button in entry.buttons]
            lines.append(f"{entry.kind}: {entry.text}" + (f" [buttons: {' | '.join(buttons)}]" if buttons else ""))
    text = "\n".join(lines)
    return text[-TRANSCRIPT_CHARS:]


def _judge_schema(names: list[str]) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {"score": {"type": "integer", "enum": [0, 1, 2]}, "rationale": {"type": "string"}},
        "required": ["score", "rationale"],
    }
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "scorecard",
            "schema": {"type": "object", "properties": dict.fromkeys(names, item), "required": names},
        },
    }


async def judge(entries: list[Entry], card: Scorecard) -> Scorecard:
    """``card`` with its ``judged`` criteria re-scored by the configured LLM over the transcript. A criterion
    the judge leaves out or scores outside 0–2 keeps the rules' score; an LLM error (logged) leaves the card
    as it is. Never raises for the LLM's failures."""
    judged = [criterion for criterion in CRITERIA if criterion.judged]
    rubric = "\n".join(f"- {c.name} ({c.title}): {c.rubric}" for c in judged)
    messages = [
        {"role": "system", "content": JUDGE_PROMPT.format(brand=get_company().brand, rubric=rubric)},
        {"role": "user", "content": transcript_text(entries)},
    ]
    try:
        completion = await llm.complete(messages, response_format=_judge_schema([c.name for c in judged]))
        found = _JSON.search(completion.text)
        verdict = json.loads(found.group(0)) if found else None
    except (llm.LLMError, ValueError) as error:
        log.warning("LLM judge failed, the rules' scores stand: %s", error)
        return card
    if not isinstance(verdict, dict):
        log.warning("LLM judge answered no JSON object, the rules' scores stand: %.200s", completion.text)
        return card
    criteria = dict(card.criteria)
    for criterion in judged:
        answer = verdict.get(criterion.name)
        if not isinstance(answer, dict):
            continue
        score = answer.get("score")
        if isinstance(score, int) and 0 <= score <= MAX_SCORE:
            criteria[criterion.name] = Score(score, "llm", str(answer.get("rationale") or "")[:500])
    return Scorecard(criteria, completion.model)


_JSON = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class StoredScore:
    """A stored criterion for people: the :class:`Criterion` and its :class:`Score`."""

    criterion: Criterion
    score: Score


@dataclass(frozen=True)
class StoredScorecard:
    """A conversation's stored scorecard: ``total`` (0–30), ``criteria`` in :data:`CRITERIA` order (criteria a
    scorecard lacks are left out), the judge's ``llm_model`` or None, ``scored_at`` (UTC) and the last tracker
    event it covers."""

    total: int
    criteria: list[StoredScore]
    llm_model: str | None
    scored_at: datetime
    last_event_id: int


async def stored_scorecard(session: AsyncSession, conversation_id: str) -> StoredScorecard | None:
    """The scorecard stored for ``conversation_id``, None while it is not scored."""
    row = await session.get(ConversationScore, conversation_id)
    if row is None:
        return None
    criteria = [
        StoredScore(criterion, Score(int(found["score"]), str(found.get("by", "")), str(found.get("rationale", ""))))
        for criterion in CRITERIA
        if isinstance(found := row.criteria.get(criterion.name), dict)
    ]
    scored_at = row.scored_at if row.scored_at.tzinfo else row.scored_at.replace(tzinfo=UTC)
    return StoredScorecard(row.total, criteria, row.llm_model, scored_at, row.last_event_id)


# --- the job ---------------------------------------------------------------------------------------------------


async def facts_of(session: AsyncSession, row: Conversation) -> Facts:
    """The :class:`Facts` of the indexed conversation ``row``: its index flags and its contact's details."""
    contact = await session.get(Contact, row.contact_id) if row.contact_id is not None else None
    return Facts(
        quote_created=row.quote_created,
        furthest_stage=row.furthest_stage,
        contact_email=bool(contact and contact.email),
        contact_phone=bool(contact and contact.phone),
    )


async def score_conversation(session: AsyncSession, row: Conversation, events: list[TrackerEvent]) -> Scorecard:
    """Score the indexed conversation ``row`` from its tracker ``events`` (rules, then the LLM judge when one
    is configured) and store the scorecard (replacing an earlier one)."""
    knowledge = await conversations.knowledge_details(session, row.conversation_id, conversations.answer_ids(events))
    entries = conversations.entries_of(events, knowledge)
    card = score_rules(entries, await facts_of(session, row))
    if llm.configured():
        card = await judge(entries, card)
    stored = await session.get(ConversationScore, row.conversation_id) or ConversationScore(
        conversation_id=row.conversation_id
    )
    stored.total, stored.criteria, stored.llm_model = card.total, card.as_json(), card.llm_model
    stored.last_event_id, stored.scored_at = row.last_event_id, datetime.now(UTC)
    session.add(stored)
    return card


async def run(settings: Settings, now: datetime) -> str:
    """The scheduled job: index the tracker's new events, then score up to BATCH conversations idle for
    ``score_idle_s`` seconds at ``now`` that have no scorecard or new events since theirs; a one-line summary."""
    reader = get_reader(settings.tracker_database_url)
    async with session_scope(settings.database_url) as session:
        await conversations.refresh(reader, session)
    idle_since = now - timedelta(seconds=settings.score_idle_s)
    async with session_scope(settings.database_url) as session:
        rows = list(
            await session.scalars(
                select(Conversation)
                .outerjoin(ConversationScore, ConversationScore.conversation_id == Conversation.conversation_id)
                .where(
                    Conversation.last_message_at <= idle_since,
                    (ConversationScore.conversation_id.is_(None))
                    | (ConversationScore.last_event_id < Conversation.last_event_id),
                )
                .order_by(Conversation.last_message_at)
                .limit(BATCH)
            )
        )
    totals = []
    for row in rows:
        events = await reader.conversation_events(row.conversation_id)
        async with session_scope(settings.database_url) as session:
            totals.append((await score_conversation(session, row, events)).total)
    if not totals:
        return "no finished conversation to score"
    return f"{len(totals)} conversation(s) scored, average {sum(totals) / len(totals):.1f}/{MAX_TOTAL}"
