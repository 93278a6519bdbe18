"""The audit log (table ``audit_log``): who did what in the manager console, and when.

:func:`record` adds one entry inside the caller's transaction, so the entry is stored exactly when the
action is (a refused or failed action rolls both back). :func:`entries` reads them for the admins' page
``/console/audit``.

``action`` is a free string, ``<object>.<verb>``; the actions recorded today, with their target and detail:

==========================  ======================  =====================================================
action                      target (kind, id)       detail
==========================  ======================  =====================================================
``session.sign_in``         session, its id's hash  {}
``session.sign_out``        session, as above       {}
``session.revoke``          session, as above       {"user_id": int} (an admin ended another's session)
``escalation.take_over``    escalation, its id      {}
``escalation.reply``        escalation, its id      {} (never the text)
``escalation.hand_back``    escalation, its id      {} (never the note)
``nlu.export``              nlu_file, its paths     {"written": int, "duplicates": int, "conflicts": int}
``story.save``              test_story, its path    {"overwrite": bool}
``analytics.export_csv``    analytics_view, name    {"since": "YYYY-MM-DD", "until": "YYYY-MM-DD",
                                                    "channel": str | None}
``deal.stage``              deal, its id            {"from": stage, "to": stage}
``user.create``             user, its id            {"email": str, "role": str}
``user.disable``            user, its id            {"email": str}
``user.role``               user, its id            {"email": str, "from": role, "to": role}
``user.password``           user, its id            {"email": str}
==========================  ======================  =====================================================

Other modules add their own (e.g. ``contact.erase``) without changing this one. Targets are named by
ids, never by a conversation id (a WhatsApp conversation id holds the customer's phone number), and
``detail`` never holds customer PII — names, emails, phone numbers, message text; console users' emails
are not customers' and may appear.
"""

from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AuditEntry, User, utcnow


def record(
    session: AsyncSession,
    actor: User | None,
    action: str,
    target_kind: str | None = None,
    target_id: int | str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add an entry (time now, UTC) to ``session``, committed with the caller's transaction.

    ``actor``: the console user who acted, None for the command line; ``action`` e.g. ``"deal.stage"`` (see
    the module's list); ``target_kind``/``target_id`` what was acted on (``target_id`` stored as a string);
    ``detail``: JSON-serialisable keyword arguments, without customer PII, e.g. ``**{"from": "new", "to":
    "won"}``. Raises ValueError for an empty action or one over 64 characters."""
    if not action or len(action) > 64:
        raise ValueError(f"an audit action has 1 to 64 characters, not {action!r}")
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action,
        target_kind=target_kind,
        target_id=None if target_id is None else str(target_id),
        detail=detail,
    )
    session.add(entry)
    return entry


async def entries(
    session: AsyncSession, *, actor: str | None = None, action: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """Entries newest first, by ``actor`` (a console user's email, any case) and ``action`` (exact) when
    given: (``limit`` entries from ``offset``, how many match in all)."""
    where = [
        *([AuditEntry.actor_email == actor.strip().lower()] if actor else []),
        *([AuditEntry.action == action] if action else []),
    ]
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    rows = await session.scalars(
        select(AuditEntry)
        .where(*where)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def known_actors_and_actions(session: AsyncSession) -> tuple[list[str], list[str]]:
    """The actor emails and the actions that occur in the log, each sorted: the page's filter choices."""
    actors = await session.scalars(
        select(AuditEntry.actor_email)
        .where(AuditEntry.actor_email.is_not(None))
        .distinct()
        .order_by(AuditEntry.actor_email)
    )
    actions = await session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    return cast(list[str], list(actors)), list(actions)
