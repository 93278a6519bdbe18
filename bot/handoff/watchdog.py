"""The escalation watchdog (the scheduled job ``escalation_watchdog``, every ``follow_ups_interval_s`` seconds):
an escalation still ``pending`` — no manager took it — after ``escalation_watchdog.after_business_minutes``
business minutes (``knowledge/follow_ups.yml``; business hours from ``company.yml``), or that long in clock
minutes when it waits outside business hours, is chased once (``escalations.watchdog_at``):

- the managers' Telegram chat is notified again, with the waiting time and a link to the conversation in
  the console;
- the customer is told what happens next, in their language, through the Rasa server on their own channel
  (:mod:`bot.follow_ups.outreach`): within business hours that a manager replies as soon as one is free
  (and the business's phone for urgent matters); outside them when the team is back, and, when the
  conversation has no contact with an e-mail, that they may leave one.

A message Rasa cannot deliver (or WhatsApp's closed window) is logged and the escalation still counts as
chased; a failed notification of the managers is recorded on the escalation (``notify_error``).
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.business import get_company
from bot.core.db import session_scope
from bot.core.models import Contact, Conversation, Escalation
from bot.core.rasa import RasaClient, RasaError
from bot.core.settings import Settings
from bot.follow_ups.cadences import get_follow_up_config
from bot.follow_ups.outreach import WindowClosed, write_first
from bot.handoff.escalation import REASONS, next_opening
from bot.handoff.notify import NotifyError, notify_managers
from bot.review.conversations import page_url
from bot.texts import i18n, messages

log = logging.getLogger(__name__)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def overdue(escalation: Escalation, minutes: float, now: datetime) -> bool:
    """Whether ``escalation`` (pending) has waited ``minutes`` business minutes at ``now``, or that many clock
    minutes while the business is closed."""
    company = get_company()
    created = _aware(escalation.created_at)
    if company.business_seconds(created, now) >= minutes * 60:
        return True
    return not company.is_open(now) and now - created >= timedelta(minutes=minutes)


async def run(settings: Settings, now: datetime) -> str:
    """The scheduled job: chase the overdue pending escalations; a one-line summary."""
    minutes = get_follow_up_config().watchdog_minutes
    company = get_company()
    chased = told = 0
    async with session_scope(settings.database_url) as session:
        pending = list(
            await session.scalars(
                select(Escalation)
                .where(Escalation.status == "pending", Escalation.watchdog_at.is_(None))
                .order_by(Escalation.created_at)
            )
        )
        due = [e for e in pending if overdue(e, minutes, now)]
        if not due:
            return "no escalation overdue"
        async with RasaClient(settings.rasa_url, settings) as rasa:
            for escalation in due:
                escalation.watchdog_at = now
                chased += 1
                waited = int((now - _aware(escalation.created_at)).total_seconds() // 60)
                link = f"{settings.public_url}{page_url(escalation.conversation_id)}"
                try:
                    await notify_managers(
                        f"Still waiting for a manager ({waited} min): escalation #{escalation.id}, "
                        f"{REASONS.get(escalation.reason, escalation.reason)}.",
                        settings,
                        buttons=[("Open the conversation", link)],
                    )
                except NotifyError as exc:
                    escalation.notify_error = str(exc)
                    log.error("escalation %d: managers not re-notified: %s", escalation.id, exc)
                conversation = await session.get(Conversation, escalation.conversation_id)
                language = conversation.language if conversation else company.default_language
                contact = (
                    await session.get(Contact, conversation.contact_id)
                    if conversation and conversation.contact_id
                    else None
                )
                with i18n.use(language):
                    text = messages.render(
                        "escalation_watchdog",
                        open=company.is_open(now),
                        phone=company.phone,
                        opening=next_opening(company, now),
                        timezone=company.timezone,
                        ask_email=not (contact and contact.email),
                    )
                try:
                    await write_first(
                        rasa,
                        session,
                        escalation.conversation_id,
                        text,
                        {"watchdog": escalation.id},
                        now=now,
                        language=language,
                    )
                    told += 1
                except (RasaError, WindowClosed) as exc:
                    log.warning("escalation %d: the customer was not told what happens next: %s", escalation.id, exc)
    return f"{chased} overdue escalation(s) chased, {told} customer(s) told"
