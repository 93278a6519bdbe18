"""A manager takes a conversation over, replies in it and hands it back to the bot (the console's
escalations pages call these; the CLI's ``handback`` calls :func:`bot.handoff.escalation.hand_back`).

Rasa does the conversation side through its HTTP API (the process's :class:`bot.core.rasa.RasaClient`,
passed in as ``rasa``):

- taking over pauses the bot (a ``pause`` event; an escalation has usually paused it already, with
  ``ConversationPaused``). While paused, Rasa records the customer's messages and predicts nothing.
- a reply is a ``bot`` event with ``"metadata": {"manager": <email>}`` appended with
  ``output_channel=latest&execute_side_effects=true``: Rasa keeps it in the tracker (so it is in the
  transcript) and sends it through the output channel of the customer's last message (Telegram and
  WhatsApp deliver it; the web chat's REST channel only collects it, and the widget polls
  ``/api/chat/updates`` for it), with the slot ``handoff_replied_at`` (:mod:`bot.contracts.paused`).
- while paused, a customer who writes gets a holding message at most once per interval (:mod:`connectors.paused`).
- handing back resumes the bot (``resume``, then ``action_listen``).

The escalation's status follows: pending → in_progress (``assignee``) → resolved. Functions taking
an AsyncSession flush but leave the commit to the caller; when Rasa refuses, they raise
:class:`bot.core.rasa.RasaError` before anything is stored.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.contracts.paused import REPLIED_AT_SLOT
from bot.core.models import Contact, Escalation, User
from bot.core.rasa import RasaClient
from bot.handoff.escalation import OPEN_STATUSES, STATUSES, Situation, structured_summary
from bot.handoff.escalation import hand_back as resume_bot
from bot.web.accounts import has_role

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 4096  # the longest text message Telegram and WhatsApp deliver
MAX_NOTE_CHARS = 4000
SUMMARY_MESSAGES = 6  # the last messages quoted in the summary of a manager's own takeover
# web-<browser id>, telegram-<chat id>, whatsapp-<wa_id>, avito-<chat id> (Avito's may hold "~")
CONVERSATION_ID = re.compile(r"[A-Za-z0-9_.:@+~-]{1,255}")


class TakeoverError(Exception):
    """A takeover operation was refused; the message says why, for the manager. ``status``: the HTTP
    status that fits (400 here; subclasses: 404, 403, 409)."""

    status = 400


class UnknownEscalation(TakeoverError):
    """No escalation with that id, or no conversation with that id in Rasa."""

    status = 404


class NotYours(TakeoverError):
    """Another manager has the conversation (only they or an admin may act on it)."""

    status = 403


class WrongStatus(TakeoverError):
    """The escalation is not in a status that allows the operation (e.g. already resolved)."""

    status = 409


@dataclass(frozen=True)
class Message:
    """One message of a conversation, from Rasa's tracker. ``speaker``: customer, bot or manager;
    ``timestamp``: Unix seconds (Rasa's clock); ``manager``: the replying manager's email, else None."""

    speaker: str
    text: str
    timestamp: float
    manager: str | None = None


@dataclass(frozen=True)
class Transcript:
    """The last messages of a conversation (oldest first) and whether Rasa has the bot paused."""

    messages: list[Message]
    paused: bool


def messages(tracker: dict[str, Any]) -> list[Message]:
    """The customer's, the bot's and managers' messages with text among a tracker's ``events``, as Rasa's
    ``GET /conversations/<id>/tracker`` returns them, oldest first. A ``rewind`` (Rasa's
    UserUtteranceReverted, e.g. before the LLM's reading of the message is re-added) drops the latest
    customer message and what followed it, as Rasa does."""
    found: list[Message] = []
    for event in tracker.get("events") or []:
        if event.get("event") == "rewind":
            last = max((i for i, m in enumerate(found) if m.speaker == "customer"), default=len(found))
            del found[last:]
            continue
        text = event.get("text")
        if event.get("event") not in ("user", "bot") or not text:
            continue
        manager = (event.get("metadata") or {}).get("manager") if event["event"] == "bot" else None
        speaker = "customer" if event["event"] == "user" else "manager" if manager else "bot"
        found.append(Message(speaker, text, float(event.get("timestamp") or 0), manager))
    return found


WRITTEN_FIRST = frozenset(("follow_up", "watchdog", "payment"))  # metadata keys of what Closer writes first


def pushed_messages(tracker: dict[str, Any], after: float) -> list[Message]:
    """The messages in a tracker the customer's own turns did not bring, stamped later than ``after`` (Unix
    seconds), oldest first: managers' replies (``speaker`` manager) and what Closer wrote first — follow-ups and
    the escalation watchdog's word and the documents sent after a payment, bot events whose metadata has
    ``follow_up``, ``watchdog`` or ``payment`` (:mod:`bot.follow_ups.outreach`; ``speaker`` bot)."""
    found = []
    for event in tracker.get("events") or []:
        metadata = event.get("metadata") or {}
        if event.get("event") != "bot" or not event.get("text") or float(event.get("timestamp") or 0) <= after:
            continue
        if metadata.get("manager"):
            found.append(Message("manager", event["text"], float(event["timestamp"]), metadata["manager"]))
        elif WRITTEN_FIRST.intersection(metadata):
            found.append(Message("bot", event["text"], float(event["timestamp"])))
    return found


async def transcript(conversation_id: str, rasa: RasaClient, limit: int = 50) -> Transcript:
    """The last ``limit`` messages of ``conversation_id`` since its last restart, read from Rasa's HTTP API
    (``GET /conversations/<id>/tracker``). Raises RasaError."""
    tracker = await rasa.tracker(conversation_id)
    return Transcript(messages(tracker)[-limit:], bool(tracker.get("paused")))


async def get_escalation(session: AsyncSession, escalation_id: int) -> Escalation:
    """Escalation ``escalation_id``. Raises UnknownEscalation when there is none."""
    escalation = await session.get(Escalation, escalation_id)
    if escalation is None:
        raise UnknownEscalation(f"there is no escalation #{escalation_id}")
    return escalation


def may_act(escalation: Escalation, user: User) -> bool:
    """Whether ``user`` may take over, reply in or hand back ``escalation``: nobody has it, they have it,
    or they are an admin."""
    return escalation.assignee in (None, user.email) or has_role(user.role, "admin")


async def _pause(conversation_id: str, tracker: dict[str, Any], rasa: RasaClient) -> None:
    if not tracker.get("paused"):
        await rasa.append_events(conversation_id, [{"event": "pause"}])


async def take_over(session: AsyncSession, target: int | str, user: User, rasa: RasaClient) -> Escalation:
    """``user`` (a console user) takes over escalation ``target`` (its id) or conversation ``target`` (its
    Rasa conversation id) and returns the escalation, now in_progress with ``assignee`` = the user's email.

    The bot is paused in Rasa if it is not already. A conversation without a pending or in-progress
    escalation gets a new one with reason ``manager`` and a summary of its last messages; one that has
    one is taken over through it. Taking over one's own escalation again changes nothing; an admin
    may take over another manager's.

    Raises UnknownEscalation (no such escalation, or a conversation Rasa has no message of),
    NotYours (another manager has it), WrongStatus (already resolved, or taken by someone else at
    this very moment), TakeoverError (a malformed conversation id), RasaError."""
    if isinstance(target, str):
        if not CONVERSATION_ID.fullmatch(target):
            raise TakeoverError("a conversation id is 1 to 255 letters, digits or _ . : @ + -")
        existing = await session.scalar(
            select(Escalation.id)
            .where(Escalation.conversation_id == target, Escalation.status.in_(OPEN_STATUSES))
            .order_by(Escalation.id.desc())
            .limit(1)
        )
        if existing is None:
            return await _take_conversation(session, target, user, rasa)
        target = existing
    escalation = await get_escalation(session, target)
    if escalation.status == "resolved":
        raise WrongStatus(f"escalation #{escalation.id} was already resolved")
    if escalation.status == "in_progress" and escalation.assignee == user.email:
        return escalation
    if not may_act(escalation, user):
        raise NotYours(f"{escalation.assignee} has this conversation")
    tracker = await rasa.tracker(escalation.conversation_id, events=False)
    await _pause(escalation.conversation_id, tracker, rasa)
    same_assignee = (
        Escalation.assignee.is_(None) if escalation.assignee is None else Escalation.assignee == escalation.assignee
    )
    claimed = await session.execute(  # only if nobody changed it since it was read
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.status == escalation.status, same_assignee)
        .values(status="in_progress", assignee=user.email, taken_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise WrongStatus(f"escalation #{escalation.id} was taken or resolved by someone else just now")
    await session.refresh(escalation)
    log.info("escalation #%s (%s) taken over by %s", escalation.id, escalation.conversation_id, user.email)
    return escalation


async def _take_conversation(session: AsyncSession, conversation_id: str, user: User, rasa: RasaClient) -> Escalation:
    tracker = await rasa.tracker(conversation_id)
    said = messages(tracker)
    if not any(m.speaker == "customer" for m in said):
        raise UnknownEscalation(f"Rasa has no message from a customer in conversation {conversation_id}")
    await _pause(conversation_id, tracker, rasa)
    contact = await session.scalar(select(Contact).where(Contact.sender_id == conversation_id).limit(1))
    customer = (
        {"name": contact.name, "company": contact.company, "email": contact.email, "phone": contact.phone}
        if contact
        else {}
    )
    situation = Situation(
        conversation_id, "manager", customer=customer, messages=[(m.speaker, m.text) for m in said[-SUMMARY_MESSAGES:]]
    )
    escalation = Escalation(
        conversation_id=conversation_id,
        reason="manager",
        summary=structured_summary(situation),
        status="in_progress",
        assignee=user.email,
        taken_at=datetime.now(UTC),
    )
    session.add(escalation)
    await session.flush()
    log.info("conversation %s taken over by %s (escalation #%s)", conversation_id, user.email, escalation.id)
    return escalation


async def reply(session: AsyncSession, target: int | str, text: str, user: User, rasa: RasaClient) -> Escalation:
    """Send ``text`` (stripped; 1 to MAX_REPLY_CHARS characters) as ``user`` to the customer of escalation
    ``target`` (its id; it must be in progress) or of conversation ``target`` (its Rasa conversation id; its
    latest in-progress escalation) and return that escalation: a ``bot`` event with ``metadata.manager`` = the
    user's email, appended through Rasa's HTTP API with ``output_channel=latest&execute_side_effects=true``
    (see the module's docstring).

    Raises UnknownEscalation, WrongStatus (nobody has taken the conversation over), TakeoverError (empty or
    over-long text), NotYours (another manager has it; admins may reply anyway), RasaError."""
    escalation: Escalation | None
    if isinstance(target, int):
        escalation = await get_escalation(session, target)
        if escalation.status != "in_progress":
            raise WrongStatus(f"escalation #{target} is {escalation.status}: take it over first")
    else:
        escalation = await session.scalar(
            select(Escalation)
            .where(Escalation.conversation_id == target, Escalation.status == "in_progress")
            .order_by(Escalation.id.desc())
            .limit(1)
        )
        if escalation is None:
            raise WrongStatus(f"take conversation {target} over before replying")
    text = text.strip()
    if not text:
        raise TakeoverError("the reply is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise TakeoverError(f"the reply is longer than {MAX_REPLY_CHARS} characters ({len(text)})")
    if not may_act(escalation, user):
        raise NotYours(f"{escalation.assignee} has this conversation")
    conversation_id = escalation.conversation_id
    # The slot tells holding_reply the customer has just been answered (no holding message on their next message).
    answered = {"event": "slot", "name": REPLIED_AT_SLOT, "value": datetime.now(UTC).timestamp()}
    await rasa.append_events(
        conversation_id, [{"event": "bot", "text": text, "metadata": {"manager": user.email}}, answered], deliver=True
    )
    log.info("manager %s replied in conversation %s (%d characters)", user.email, conversation_id, len(text))
    return escalation


async def hand_back(session: AsyncSession, escalation_id: int, note: str, user: User, rasa: RasaClient) -> Escalation:
    """Give escalation ``escalation_id``'s conversation back to the bot with ``note`` (stripped; 1 to
    MAX_NOTE_CHARS characters: how it was resolved) through :func:`bot.handoff.escalation.hand_back`: Rasa resumes
    the bot, the conversation's open escalations become resolved by ``user`` with the note, and the note goes
    on the customer's open deal. A pending escalation may be handed back without taking it over.

    Raises UnknownEscalation, WrongStatus (already resolved), NotYours (another manager has it; admins
    may), TakeoverError (empty or over-long note), RasaError (then nothing is resolved)."""
    note = note.strip()
    if not note:
        raise TakeoverError("write a note on how the conversation was resolved")
    if len(note) > MAX_NOTE_CHARS:
        raise TakeoverError(f"the note is longer than {MAX_NOTE_CHARS} characters ({len(note)})")
    escalation = await get_escalation(session, escalation_id)
    if escalation.status == "resolved":
        raise WrongStatus(f"escalation #{escalation.id} was already resolved")
    if not may_act(escalation, user):
        raise NotYours(f"{escalation.assignee} has this conversation")
    await resume_bot(session, escalation.conversation_id, rasa, note=note, resolved_by=user.email)
    await session.refresh(escalation)
    log.info("escalation #%s (%s) handed back by %s", escalation.id, escalation.conversation_id, user.email)
    return escalation


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many escalations have each status (every status of STATUSES, 0 when none)."""
    rows = await session.execute(select(Escalation.status, func.count()).group_by(Escalation.status))
    return dict.fromkeys(STATUSES, 0) | {status: n for status, n in rows if status in STATUSES}


async def inbox(session: AsyncSession, status: str, limit: int = 100) -> list[Escalation]:
    """The newest ``limit`` escalations with ``status`` (one of STATUSES), newest first. Raises ValueError
    for another status."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return list(
        (
            await session.scalars(
                select(Escalation)
                .where(Escalation.status == status)
                .order_by(Escalation.created_at.desc(), Escalation.id.desc())
                .limit(limit)
            )
        ).all()
    )


async def latest(session: AsyncSession, conversation_id: str) -> Escalation | None:
    """The conversation's most recent escalation, whatever its status, or None."""
    return await session.scalar(
        select(Escalation).where(Escalation.conversation_id == conversation_id).order_by(Escalation.id.desc()).limit(1)
    )


async def customers(session: AsyncSession, conversation_ids: set[str]) -> dict[str, str]:
    """Conversation id → the name (else company, email or phone) of the contact saved in it, for those
    of ``conversation_ids`` that have one."""
    contacts = (await session.scalars(select(Contact).where(Contact.sender_id.in_(conversation_ids)))).all()
    return {
        c.sender_id: c.name or c.company or c.email or c.phone
        for c in contacts
        if c.name or c.company or c.email or c.phone
    }
