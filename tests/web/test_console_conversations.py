"""The console's conversation pages and NLU inbox, against the real console app (bot.web.app.create_app)
on loopback: a business DB migrated by Alembic, a tracker store written by Rasa 3.6's own SQLTrackerStore
(tests/review/test_conversations.py), and a temp copy of the project's domain and training data for corrections,
exports and test stories. The console indexes the tracker store itself. Also conversations in Arabic and Russian:
the list's language column and filter, the transcript's language and right-to-left text."""

import asyncio
import html
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core import db
from bot.core.business import get_company
from bot.core.models import (
    Conversation,
    ConversationReview,
    ConversationScore,
    ConversationTag,
    Escalation,
    NluAnnotation,
)
from bot.core.settings import ROOT
from bot.core.tracker import get_reader
from bot.review import scoring
from bot.web.app import create_app
from bot.web.console import conversations as pages
from tests.review import test_annotations, test_conversations
from tests.review.test_conversations import (
    ALPHA,
    BRAVO,
    CHARLIE,
    DELTA,
    ECHO,
    FOXTROT,
    GOLF,
    HOTEL,
    INDIA,
    NOW,
    Clock,
    action,
    multilingual,
    rasa_write,
    session_start,
    stored_events,
    user,
)
from tests.web.test_console_auth import add_user, console_settings, csrf, login

# Fixtures reused: a temp copy of the project's domain, config and data/; the business DB with contacts, a quote
# and a rated knowledge answer; a tracker store written by Rasa (per module) and this test's copy of it.
project = test_annotations.project
business, rasa_store = test_conversations.business, test_conversations.rasa_store
tracker_path = test_conversations.tracker_path

MANAGER = "lina@desertoak.ae"
NEWEST_FIRST = [CHARLIE, BRAVO, ALPHA, ECHO, DELTA, FOXTROT]


def plain(page: str) -> str:
    """The page's text: tags dropped, entities decoded, whitespace collapsed (none before , . ; ) )."""
    return re.sub(r" ([,.;)])", r"\1", " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()))


def listed(page: str) -> list[str]:
    """The conversation ids of a list page's rows, in order."""
    return [html.unescape(cid) for cid in re.findall(r'<tr data-conversation="([^"]+)"', page)]


def row(page: str, conversation_id: str) -> str:
    """The text of one row of the list."""
    found = re.search(rf'<tr data-conversation="{re.escape(conversation_id)}">(.*?)</tr>', page, re.DOTALL)
    assert found, f"no row for {conversation_id}"
    return plain(found.group(1))


def message(page: str, event_id: int) -> str:
    """The transcript entry of tracker event ``event_id``, as HTML."""
    found = re.search(rf'<li class="entry [^"]*" id="m{event_id}">', page)
    assert found, f"no entry m{event_id}"
    ends = [end for end in (page.find('<li class="entry ', found.end()), page.find("<aside", found.end())) if end != -1]
    return page[found.end() : min(ends)]


def event_id(tracker: Path, conversation_id: str, text: str) -> int:
    """The id of the customer message ``text`` in the tracker store."""
    return next(
        e[0]
        for e in stored_events(tracker)
        if e[1] == conversation_id and e[2] == "user" and json.loads(e[6])["text"] == text
    )


async def annotations(url: str) -> list[NluAnnotation]:
    async with db.session_scope(url) as session:
        return list((await session.scalars(select(NluAnnotation).order_by(NluAnnotation.id))).all())


@pytest.fixture
async def console(db_url, business, tracker_path, project):
    """A signed-in manager's client of the console reading ``tracker_path``, with ``project`` as project root."""
    tracker_url = f"sqlite+aiosqlite:///{tracker_path}"
    app = create_app(console_settings(db_url, tracker_database_url=tracker_url, project_root=project))
    await add_user(db_url, MANAGER)
    async with TestClient(TestServer(app)) as client:
        await login(client, MANAGER)
        yield client
    await get_reader(tracker_url).close()


async def post(client: TestClient, path: str, data: dict | list, token: bool = True):
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    if token:
        fields.append(("csrf_token", await csrf(client, "/console/conversations")))
    return await client.post(path, data=fields, allow_redirects=False)


# --- the list ------------------------------------------------------------------------------------------------


async def test_the_list_indexes_and_shows_every_conversation_newest_first(console, tracker_path, business):
    response = await console.get("/console/conversations")
    assert response.status == 200
    page = await response.text()
    assert listed(page) == NEWEST_FIRST
    assert "6 conversations." in plain(page)
    dubai = ZoneInfo(get_company().timezone)
    alpha_last = [e[3] for e in stored_events(tracker_path) if e[1] == ALPHA and e[2] in ("user", "bot")][-1]
    local = datetime.fromtimestamp(alpha_last, UTC).astimezone(dubai).strftime("%Y-%m-%d %H:%M")
    assert row(page, ALPHA) == (
        f"Aisha Khan, Gulf Trading LLC Your quote Q-2026-0001 is ready. web en {local} 4 quoting no yes 0.42 0 — —"
    )
    assert row(page, BRAVO).startswith("Omar Haddad, Falcon Logistics thanks Omar telegram en ")
    assert row(page, BRAVO).endswith(" 4 handoff yes no 0.30 2 — —")
    assert row(page, CHARLIE).startswith(f"{CHARLIE} Hello, Lina from Desert Oak here. whatsapp en ")
    assert "3 handoff yes (manager has it) no 0.88 0" in row(page, CHARLIE)
    assert row(page, ECHO).endswith(" 0 — no no — 0 — —")
    assert f'href="/console/conversations/{ALPHA}"' in page
    assert "Times in Asia/Dubai." in plain(page)


def days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).astimezone(ZoneInfo(get_company().timezone)).date().isoformat()


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"channel": "telegram"}, {BRAVO, ECHO}),
        ({"channel": "web"}, {ALPHA, DELTA, FOXTROT}),
        ({"customer": "gulf trading"}, {ALPHA}),
        ({"customer": "+971 55 987"}, {BRAVO}),
        ({"since": days_ago(7)}, {BRAVO, CHARLIE}),
        ({"until": days_ago(30)}, {DELTA, FOXTROT}),
        ({"since": days_ago(30), "until": days_ago(7)}, {ALPHA, ECHO}),
        ({"stage": "handoff"}, {BRAVO, CHARLIE}),
        ({"stage": "greeting"}, {DELTA}),
        ({"escalated": "yes"}, {BRAVO, CHARLIE}),
        ({"escalated": "no"}, {ALPHA, DELTA, ECHO, FOXTROT}),
        ({"quote": "yes"}, {ALPHA}),
        ({"confidence_below": "0.5"}, {ALPHA, BRAVO}),
        ({"fallbacks": "1"}, {BRAVO, FOXTROT}),
        ({"fallbacks": "2"}, {BRAVO}),
        ({"q": "walnut"}, {ALPHA, CHARLIE}),
        ({"q": "omar here"}, {BRAVO}),
        ({"channel": "web", "q": "hello", "escalated": "no"}, {ALPHA, DELTA}),
        ({"language": "en", "channel": "telegram"}, {BRAVO, ECHO}),
        ({"language": "ar"}, set()),
        ({"channel": "web", "q": "nobody said this"}, set()),
    ],
)
async def test_each_filter_and_its_values_round_trip(console, query, expected):
    response = await console.get(f"/console/conversations?{urlencode(query)}")
    assert response.status == 200
    page = await response.text()
    assert listed(page) == [cid for cid in NEWEST_FIRST if cid in expected]
    if not expected:
        assert "No conversation matches." in page
    for name, value in query.items():
        field = re.search(rf'<(input|select)[^>]* name="{name}"[^>]*>(.*?</select>)?', page, re.DOTALL).group(0)
        assert f'value="{value}" selected' in field or f'value="{value}"' in field.split(">")[0], (name, field)


async def test_quality_scores_show_sort_and_filter_the_list_and_the_transcript_shows_the_scorecard(console, db_url):
    await console.get("/console/conversations")  # indexes the tracker store
    criteria = {c.name: {"score": 2, "by": "rules", "rationale": "fine"} for c in scoring.CRITERIA}
    criteria["next_step"] = {"score": 0, "by": "llm", "rationale": "the bot never suggested what to do next"}
    async with db.session_scope(db_url) as session:
        for cid, total in ((ALPHA, 28), (BRAVO, 11), (DELTA, 19)):
            session.add(ConversationScore(conversation_id=cid, total=total, criteria=criteria, last_event_id=1))
    page = await (await console.get("/console/conversations")).text()
    assert row(page, BRAVO).endswith(" 4 handoff yes no 0.30 2 11 —") and row(page, CHARLIE).endswith("0 — —")
    assert '<td class="score low">11</td>' in page and '<td class="score">28</td>' in page
    worst = await (await console.get("/console/conversations?sort=score")).text()
    assert listed(worst) == [BRAVO, DELTA, ALPHA, CHARLIE, ECHO, FOXTROT]  # the unscored last, newest first
    best = await (await console.get("/console/conversations?sort=-score")).text()
    assert listed(best)[:3] == [ALPHA, DELTA, BRAVO]
    low = await (await console.get("/console/conversations?max_score=19&sort=score")).text()
    assert listed(low) == [BRAVO, DELTA] and 'name="max_score" value="19"' in low
    assert listed(await (await console.get("/console/conversations?min_score=20")).text()) == [ALPHA]
    for bad in ("sort=loudest", "max_score=31", "min_score=20&max_score=10"):
        assert (await console.get(f"/console/conversations?{bad}")).status == 400, bad

    transcript = await (await console.get(f"/console/conversations/{BRAVO}")).text()
    card = transcript[
        transcript.index('<section id="scorecard">') : transcript.index(
            "</section>", transcript.index('id="scorecard"')
        )
    ]
    assert "11 of 30" in plain(card)
    assert "Next step proposed 0 llm the bot never suggested what to do next" in plain(card)
    assert plain(card).count(" rules fine") == 14
    unscored = await (await console.get(f"/console/conversations/{CHARLIE}")).text()
    assert "Not scored yet" in unscored


async def test_tags_flags_and_reviews_from_the_transcript_filter_the_list(console, db_url):
    alpha = f"/console/conversations/{ALPHA}"
    await console.get("/console/conversations")  # indexes the tracker store
    for path, data in (
        (f"{alpha}/tags", {"tags": "vip"}),
        (f"{alpha}/flag", {"flagged": "1"}),
        (f"{alpha}/reviewed", {}),
    ):
        assert (await post(console, path, data, token=False)).status == 403
    async with db.session_scope(db_url) as session:
        assert (await session.scalars(select(ConversationTag))).all() == []
        assert (await session.scalars(select(ConversationReview))).all() == []

    response = await post(console, f"{alpha}/tags", {"tags": "VIP, follow-up  pricing"})
    assert (response.status, response.headers["Location"]) == (303, alpha)
    assert (await post(console, f"/console/conversations/{BRAVO}/tags", {"tags": "pricing"})).status == 303
    assert (await post(console, f"{alpha}/flag", {"flagged": "1", "note": "asked for 50% off"})).status == 303
    assert (await post(console, f"{alpha}/reviewed", {})).status == 303
    page = await (await console.get(alpha)).text()
    assert "Tags saved." not in page and "Marked as reviewed." in plain(page)  # the flashes, shown once
    assert 'value="follow-up, pricing, vip"' in page
    assert re.search(rf"Reviewed by {re.escape(MANAGER)}, \d{{4}}-\d\d-\d\d \d\d:\d\d\. Flagged\.", plain(page))
    assert ">asked for 50% off</textarea>" in page and "Clear flag" in page

    async def ids(query: str) -> list[str]:
        return listed(await (await console.get(f"/console/conversations?{query}")).text())

    assert await ids("tag=pricing") == [BRAVO, ALPHA]
    assert await ids("tag=vip") == [ALPHA]
    assert await ids("flagged=yes") == [ALPHA]
    assert await ids("reviewed=yes") == [ALPHA]
    assert await ids("reviewed=no&flagged=no&channel=telegram") == [BRAVO, ECHO]
    assert row(await (await console.get("/console/conversations?tag=vip")).text(), ALPHA).endswith(
        "follow-up pricing vip reviewed flagged"
    )

    refused = await post(console, f"{alpha}/tags", {"tags": "fine semi;colon"})
    assert refused.status == 400
    assert "Not saved: a tag is 1 to 64 letters, digits, '-' or '_', not 'semi;colon'." in plain(await refused.text())
    assert await ids("tag=vip") == [ALPHA]
    assert (await post(console, f"{alpha}/flag", {"flagged": "0", "note": ""})).status == 303
    assert (await post(console, f"{alpha}/tags", {"tags": ""})).status == 303
    assert await ids("flagged=yes") == [] and await ids("tag=pricing") == [BRAVO]
    assert (await post(console, "/console/conversations/web-nobody/tags", {"tags": "vip"})).status == 404


async def test_pages_keep_the_filters(console, monkeypatch):
    monkeypatch.setattr(pages, "PER_PAGE", 2)
    response = await console.get("/console/conversations?escalated=&q=&channel=")
    page = await response.text()
    assert listed(page) == NEWEST_FIRST[:2] and "6 conversations, page 1 of 3." in plain(page)
    seen = listed(page)
    while 'rel="next"' in page:
        older = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', page).group(1))
        assert "escalated=&" in older or older.startswith("/console/conversations?escalated=")
        page = await (await console.get(older)).text()
        seen += listed(page)
    assert seen == NEWEST_FIRST and "page 3 of 3" in plain(page)

    filtered = await (await console.get("/console/conversations?channel=web")).text()
    assert listed(filtered) == [ALPHA, DELTA]
    older = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', filtered).group(1))
    assert listed(await (await console.get(older)).text()) == [FOXTROT]
    past = await (await console.get("/console/conversations?channel=web&page=9")).text()
    assert listed(past) == [] and "No conversation matches." in past


async def test_the_list_shows_and_filters_the_language_and_the_transcript_reads_right_to_left(
    console, tracker_path, monkeypatch
):
    await asyncio.to_thread(rasa_write, tracker_path, multilingual())
    page = await (await console.get("/console/conversations")).text()
    assert listed(page) == [INDIA, HOTEL, GOLF, *NEWEST_FIRST]
    assert row(page, GOLF).startswith(f"{GOLF} سعر ErgoPro هو 1,480 درهم للكرسي. whatsapp ar ")
    assert " telegram ru " in row(page, HOTEL) and " web en " in row(page, INDIA)  # INDIA's French: not served
    assert '<span class="preview" dir="auto">سعر ErgoPro' in page
    select = re.search(r'<select name="language">(.*?)</select>', page, re.DOTALL).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "en", "ar", "ru"]

    async def ids(query: dict) -> list[str]:
        response = await console.get(f"/console/conversations?{urlencode(query)}")
        assert response.status == 200
        return listed(await response.text())

    assert await ids({"language": "ar"}) == [GOLF]
    assert await ids({"language": "ru", "channel": "telegram"}) == [HOTEL]
    assert await ids({"language": "ru", "channel": "whatsapp"}) == []
    assert await ids({"language": "ar", "q": "كم السعر"}) == [GOLF]
    assert await ids({"language": "en", "escalated": "yes"}) == [CHARLIE, BRAVO]
    monkeypatch.setattr(pages, "PER_PAGE", 3)
    first = await (await console.get("/console/conversations?language=en")).text()
    assert listed(first) == [INDIA, CHARLIE, BRAVO] and "7 conversations, page 1 of 3." in plain(first)
    assert 'value="en" selected' in re.search(r'<select name="language">(.*?)</select>', first, re.DOTALL).group(1)
    older = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    assert "language=en" in older and listed(await (await console.get(older)).text()) == [ALPHA, ECHO, DELTA]

    golf = await (await console.get(f"/console/conversations/{GOLF}")).text()
    assert "Language ar" in plain(golf)
    price = event_id(tracker_path, GOLF, "أحتاج 12 كرسي، كم السعر؟")
    assert f'<p class="said" dir="auto" data-event="{price}">أحتاج 12 كرسي، كم السعر؟</p>' in message(golf, price)
    assert '<p class="said" dir="auto">سعر ErgoPro هو 1,480 درهم للكرسي.</p>' in golf
    assert "Language ru" in plain(await (await console.get(f"/console/conversations/{HOTEL}")).text())


@pytest.mark.parametrize(
    "query, reason",
    [
        ({"confidence_below": "2"}, "confidence_below must be a number from 0 to 1, not '2'"),
        ({"confidence_below": "low"}, "confidence_below must be a number from 0 to 1, not 'low'"),
        ({"fallbacks": "-1"}, "fallbacks must be a whole number of 0 or more, not '-1'"),
        ({"page": "0"}, "page must be a whole number of 1 or more, not '0'"),
        ({"since": "2026-13-01"}, "since must be a date (YYYY-MM-DD), not '2026-13-01'"),
        (
            {"since": "2026-11-20", "until": "2026-11-01"},
            "the date range ends (2026-11-01) before it starts (2026-11-20)",
        ),
        ({"escalated": "maybe"}, "escalated must be yes, no or empty, not 'maybe'"),
        ({"stage": "shipping"}, "unknown sales stage 'shipping'"),
        ({"tag": "two words"}, "a tag is 1 to 64 letters, digits, '-' or '_', not 'two words'"),
    ],
)
async def test_a_filter_the_list_cannot_use_gets_400_with_the_reason(console, query, reason, caplog):
    caplog.set_level(logging.INFO, "bot")
    response = await console.get(f"/console/conversations?{urlencode(query)}")
    assert response.status == 400
    page = await response.text()
    assert f"Invalid filter: {reason}" in plain(page)
    assert listed(page) == []
    assert any(reason in record.getMessage() for record in caplog.records)
    name, value = next(iter(query.items()))
    if name not in ("escalated", "stage", "tag", "page"):
        assert f'name="{name}" value="{value}"' in page


async def test_an_unreadable_tracker_store_is_logged_once_and_the_list_still_shows(db_url, business, tmp_path, caplog):
    missing = f"sqlite+aiosqlite:///{tmp_path / 'no-tracker-yet.db'}"
    app = create_app(console_settings(db_url, tracker_database_url=missing))
    await add_user(db_url, MANAGER)
    caplog.set_level(logging.INFO, "bot.web.console.conversations")
    async with TestClient(TestServer(app)) as client:
        await login(client, MANAGER)
        for _ in range(3):
            response = await client.get("/console/conversations")
            assert response.status == 200
            assert "The tracker store cannot be read" in plain(await response.text())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "not refreshed" in r.getMessage()]
    assert len(warnings) == 1
    await get_reader(missing).close()


async def indexed_soon(db_url: str, conversation_id: str) -> Conversation | None:
    """The index row of ``conversation_id`` once the console has made it (polled for up to a minute)."""
    for _ in range(1200):
        async with db.session_scope(db_url) as session:
            found = await session.get(Conversation, conversation_id)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    return None


async def test_the_console_indexes_new_events_in_the_background(db_url, business, tracker_path, monkeypatch):
    monkeypatch.setattr(pages, "REFRESH_INTERVAL_S", 0.05)
    tracker_url = f"sqlite+aiosqlite:///{tracker_path}"
    app = create_app(console_settings(db_url, tracker_database_url=tracker_url))
    assert pages.index_refresher in app.cleanup_ctx, "bot.web.console.areas.setup does not call the areas' setup()"
    async with TestClient(TestServer(app)):  # nobody opens a page
        assert await indexed_soon(db_url, ALPHA) is not None
        t = Clock(0.1)
        await asyncio.to_thread(
            rasa_write,
            tracker_path,
            {
                "web-later": [
                    *session_start(t),
                    user("any chairs in stock?", "ask_stock", 0.91, t),
                    action("action_listen", t),
                ]
            },
        )
        later = await indexed_soon(db_url, "web-later")
    assert later is not None and (later.channel, later.turns, later.min_confidence) == ("web", 1, 0.91)
    await get_reader(tracker_url).close()


# --- the transcript ------------------------------------------------------------------------------------------


async def test_the_transcript_shows_nlu_actions_knowledge_and_the_side_panel(console, tracker_path, db_url):
    async with db.session_scope(db_url) as session:
        session.add(Escalation(conversation_id=BRAVO, reason="fallbacks", summary="Two fallbacks in a row."))
    response = await console.get(f"/console/conversations/{ALPHA}")
    assert response.status == 200
    page = await response.text()
    chairs = message(page, event_id(tracker_path, ALPHA, "I need 12 ergonomic chairs in walnut"))
    assert "Intent ask_products 0.93" in plain(chairs)
    assert (
        "Entities: quantity = 12 (“12”) by DIETClassifier 0.99 category = office_chair (“chairs”) by "
        "DIETClassifier 0.98"
    ) in plain(chairs)
    assert 'Slots set: quantity="12", category="office_chair"' in plain(chairs)
    sharjah = message(page, event_id(tracker_path, ALPHA, "do you deliver to Sharjah?"))
    assert '<span class="confidence low">0.42</span>' in sharjah
    assert re.search(
        r'<details class="ranking"><summary>Intent ranking</summary>\s*<ol><li>ask_knowledge 0.42</li>'
        r"<li>ask_delivery 0.38</li><li>chitchat 0.20</li></ol>",
        sharjah,
    )
    text = plain(page)
    assert "⚙ action_search_products · TEDPolicy · 0.88" in text
    assert (
        "Sources retrieved: policies/delivery.md#areas policies/delivery.md#times LLM answered: "
        "openai/gpt-4o-mini, 1.25 s, 812 + 96 tokens, cost US$0.000179 "
        "Feedback: 👎 not helpful — “too vague”"
    ) in text
    assert "Bot " in text and "utter_greet" in text and "Buttons: Office chairs, Desks" in text
    assert '<a href="/console/contacts/1">Aisha Khan</a>, Gulf Trading LLC' in page
    assert "Quote created" in text and "Furthest stage quoting" in text and 'href="/console/escalations/' not in page
    takeover = any(
        r.method == "POST" and r.resource.canonical == pages.TAKEOVER_PATH for r in console.app.router.routes()
    )
    assert (f'action="{pages.TAKEOVER_PATH}"' in page) == takeover
    assert '<script src="/static/console-annotate.js"></script>' in page

    bravo = await (await console.get(f"/console/conversations/{BRAVO}")).text()
    assert "Manager omar@desertoak.ae" in plain(bravo) and "Hi, Omar here from Desert Oak." in bravo
    assert "⏸ Paused: a manager took the conversation over" in plain(bravo)
    assert "▶ Resumed: handed back to the bot" in plain(bravo)
    escalation = re.search(r'<a href="/console/escalations/(\d+)">#\d+</a> \(pending\)', bravo)
    assert escalation
    charlie = await (await console.get(f"/console/conversations/{CHARLIE}")).text()
    assert "a manager has it now" in plain(charlie) and f'action="{pages.TAKEOVER_PATH}"' not in charlie
    assert "not identified" in plain(charlie)

    unknown = await console.get("/console/conversations/web-nobody")
    assert unknown.status == 404 and "no conversation 'web-nobody'" in plain(await unknown.text())


# --- corrections ---------------------------------------------------------------------------------------------


async def test_a_correction_becomes_a_pending_annotation(console, tracker_path, db_url):
    chairs = event_id(tracker_path, ALPHA, "I need 12 ergonomic chairs in walnut")
    path = f"/console/conversations/{ALPHA}/messages/{chairs}/correct"
    form = [
        ("intent", "ask_products"),
        ("entity", "quantity"),
        ("span", "12"),
        ("start", ""),
        ("value", ""),
        ("entity", "category"),
        ("span", " chairs "),
        ("start", ""),
        ("value", "office_chair"),
        ("entity", "material"),
        ("span", "walnut"),
        ("start", "30"),
        ("value", ""),
        ("entity", ""),
        ("span", ""),
        ("start", ""),
        ("value", ""),
    ]
    assert (await post(console, path, form, token=False)).status == 403
    assert await annotations(db_url) == []

    response = await post(console, path, form)
    assert (response.status, response.headers["Location"]) == (303, f"/console/conversations/{ALPHA}#m{chairs}")
    [stored] = await annotations(db_url)
    assert (stored.conversation_id, stored.event_id, stored.text, stored.status, stored.created_by) == (
        ALPHA,
        chairs,
        "I need 12 ergonomic chairs in walnut",
        "pending",
        MANAGER,
    )
    assert (stored.predicted_intent, stored.predicted_confidence, stored.corrected_intent) == (
        "ask_products",
        0.93,
        "ask_products",
    )
    assert stored.corrected_entities == [
        {"start": 7, "end": 9, "entity": "quantity", "value": "12"},
        {"start": 20, "end": 26, "entity": "category", "value": "office_chair"},
        {"start": 30, "end": 36, "entity": "material", "value": "walnut"},
    ]
    page = await (await console.get(f"/console/conversations/{ALPHA}")).text()
    assert (
        "Correction saved: “I need 12 ergonomic chairs in walnut” → ask_products, pending in the NLU inbox."
    ) in page
    assert (
        "Correction pending: ask_products → ask_products, quantity “12”, category “chairs”, material “walnut” "
        f"(by {MANAGER}"
    ) in plain(message(page, chairs))

    sharjah = event_id(tracker_path, ALPHA, "do you deliver to Sharjah?")
    assert (
        await post(console, f"/console/conversations/{ALPHA}/messages/{sharjah}/correct", {"intent": "ask_delivery"})
    ).status == 303
    second = [("intent", "ask_stock"), ("entity", "quantity"), ("span", "12"), ("start", "7"), ("value", "")]
    assert (await post(console, path, second)).status == 303  # replaces the pending correction of that message
    rows = await annotations(db_url)
    assert [(a.event_id, a.corrected_intent, a.status) for a in rows] == [
        (chairs, "ask_stock", "pending"),
        (sharjah, "ask_delivery", "pending"),
    ]
    page = await (await console.get(f"/console/conversations/{ALPHA}")).text()
    corrected = message(page, chairs)
    assert '<option value="ask_stock" selected>' in corrected and 'name="start" value="7"' in corrected


async def test_a_repeated_word_needs_its_place_in_the_message(console, tracker_path, db_url):
    t = Clock(0.5)
    await asyncio.to_thread(
        rasa_write,
        tracker_path,
        {
            "web-repeats": [
                *session_start(t),
                user("2 chairs and 2 desks please", "ask_products", 0.61, t),
                action("action_listen", t),
            ]
        },
    )
    said = event_id(tracker_path, "web-repeats", "2 chairs and 2 desks please")
    path = f"/console/conversations/web-repeats/messages/{said}/correct"
    refused = await post(console, path, {"intent": "ask_products", "entity": "quantity", "span": "2"})
    assert refused.status == 400
    entry = message(await refused.text(), said)
    assert "Not saved: entity 1: '2' occurs 2 times in the message: select the one you mean in the message text." in (
        html.unescape(entry)
    )
    assert '<details class="correct" open>' in entry
    assert await annotations(db_url) == []
    assert (
        await post(console, path, {"intent": "ask_products", "entity": "quantity", "span": "2", "start": "13"})
    ).status == 303
    [stored] = await annotations(db_url)
    assert stored.corrected_entities == [{"start": 13, "end": 14, "entity": "quantity", "value": "2"}]


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"intent": "buy_a_yacht"}, "unknown intent 'buy_a_yacht'"),
        ({"intent": ""}, "unknown intent ''"),
        (
            {"intent": "ask_products", "entity": "quantity", "span": "twelve"},
            "entity 1: 'twelve' is not in the message (spans are the message's own words, exactly as written)",
        ),
        ({"intent": "ask_products", "entity": "quantity", "span": ""}, "entity 1: give both the entity and its words"),
        ({"intent": "ask_products", "entity": "", "span": "12"}, "entity 1: give both the entity and its words"),
        (
            {"intent": "ask_products", "entity": "category", "span": "chai"},
            "entity 'category': span 'chai' cuts a word",
        ),
        ({"intent": "ask_products", "entity": "colourz", "span": "walnut"}, "unknown entity 'colourz'"),
    ],
)
async def test_an_invalid_correction_shows_the_reason_and_stores_nothing(console, tracker_path, db_url, fields, reason):
    chairs = event_id(tracker_path, ALPHA, "I need 12 ergonomic chairs in walnut")
    response = await post(console, f"/console/conversations/{ALPHA}/messages/{chairs}/correct", fields)
    assert response.status == 400
    entry = html.unescape(message(await response.text(), chairs))
    assert re.search(r'<p class="error" role="alert">Not saved: [^<]*' + re.escape(reason), entry), entry
    if fields.get("span"):
        assert f'name="span" value="{fields["span"]}"' in entry  # what the manager typed is kept
    assert await annotations(db_url) == []


async def test_only_customer_messages_of_the_conversation_can_be_corrected(console, tracker_path, db_url):
    chairs = event_id(tracker_path, ALPHA, "I need 12 ergonomic chairs in walnut")
    other = await post(console, f"/console/conversations/{BRAVO}/messages/{chairs}/correct", {"intent": "greet"})
    action_id = next(e[0] for e in stored_events(tracker_path) if e[1] == ALPHA and e[2] == "action")
    not_a_message = await post(
        console, f"/console/conversations/{ALPHA}/messages/{action_id}/correct", {"intent": "greet"}
    )
    assert (other.status, not_a_message.status) == (404, 404)
    assert await annotations(db_url) == []


# --- the NLU inbox -------------------------------------------------------------------------------------------


async def test_the_inbox_exports_into_the_project_and_keeps_conflicts_pending(console, tracker_path, db_url, project):
    real_export = ROOT / "data" / "nlu" / "annotations.yml"
    real_before = real_export.read_bytes() if real_export.exists() else None
    corrections = [
        (ALPHA, "do you deliver to Sharjah?", "ask_delivery"),  # new: written
        (BRAVO, "hello", "greet"),  # already an example of greet: a duplicate
        (DELTA, "hi", "goodbye"),
    ]  # an example of greet: a conflict
    for conversation_id, text, intent in corrections:
        said = event_id(tracker_path, conversation_id, text)
        path = f"/console/conversations/{conversation_id}/messages/{said}/correct"
        assert (await post(console, path, {"intent": intent})).status == 303
    inbox = await (await console.get("/console/nlu")).text()
    assert "Pending (3)" in plain(inbox) and "Exported (0)" in plain(inbox)
    sharjah = re.search(r'<tr data-annotation="(\d+)">(.*?)</tr>', inbox, re.DOTALL)
    assert plain(sharjah.group(2)).startswith(f"do you deliver to Sharjah? ask_knowledge 0.42 ask_delivery — {MANAGER}")
    assert f'href="/console/conversations/{ALPHA}#m{event_id(tracker_path, ALPHA, "do you deliver to Sharjah?")}"' in (
        sharjah.group(2)
    )
    assert "The model learns them at the next make train" in plain(inbox) and "rasa data validate" in inbox

    assert (await post(console, "/console/nlu/export", {}, token=False)).status == 403
    response = await post(console, "/console/nlu/export", {})
    assert (response.status, response.headers["Location"]) == (303, "/console/nlu")
    target = project / "data" / "nlu" / "annotations.yml"
    page = plain(await (await console.get("/console/nlu")).text())
    assert (
        f"Exported to {target}: 1 written, 1 already in the training data (duplicates), 1 left pending (conflicts)."
    ) in page
    assert (
        "Conflict, left pending: “hi” → goodbye: the same text is already an example of another intent: greet "
        "(data/nlu/core.yml)."
    ) in page
    assert "Pending (1)" in page and "Exported (2)" in page
    items = yaml.safe_load(target.read_text(encoding="utf-8"))["nlu"]
    assert items == [{"intent": "ask_delivery", "examples": "- do you deliver to Sharjah?\n"}]
    assert (real_export.read_bytes() if real_export.exists() else None) == real_before

    exported = await (await console.get("/console/nlu?tab=exported")).text()
    exported_texts = [plain(text) for text in re.findall(r'<td class="text" dir="auto">(.*?)</td>', exported)]
    assert exported_texts == ["do you deliver to Sharjah?", "hello"]
    [conflict] = [a for a in await annotations(db_url) if a.status == "pending"]
    assert (await post(console, f"/console/nlu/{conflict.id}/discard", {}, token=False)).status == 403
    assert (await post(console, f"/console/nlu/{conflict.id}/discard", {})).status == 303
    again = await post(console, f"/console/nlu/{conflict.id}/discard", {})
    assert again.status == 409 and "is already discarded" in await again.text()
    assert (await post(console, "/console/nlu/999/discard", {})).status == 404
    assert "Discarded (1)" in plain(await (await console.get("/console/nlu?tab=discarded")).text())
    assert (await console.get("/console/nlu?tab=everything")).status == 400


async def test_an_export_that_cannot_read_the_training_data_changes_nothing(console, tracker_path, db_url, project):
    said = event_id(tracker_path, ALPHA, "do you deliver to Sharjah?")
    assert (
        await post(console, f"/console/conversations/{ALPHA}/messages/{said}/correct", {"intent": "ask_delivery"})
    ).status == 303
    (project / "data" / "nlu" / "broken.yml").write_text("nlu:\n- intent: greet\n  examples: [unclosed\n")
    response = await post(console, "/console/nlu/export", {})
    assert response.status == 500 and "Nothing exported: cannot read" in plain(await response.text())
    assert [a.status for a in await annotations(db_url)] == ["pending"]
    assert not (project / "data" / "nlu" / "annotations.yml").exists()


# --- test stories --------------------------------------------------------------------------------------------


async def test_save_as_test_story_writes_into_the_project_with_the_corrections(console, tracker_path, project):
    said = event_id(tracker_path, ALPHA, "do you deliver to Sharjah?")
    assert (
        await post(console, f"/console/conversations/{ALPHA}/messages/{said}/correct", {"intent": "ask_delivery"})
    ).status == 303
    story = f"/console/conversations/{ALPHA}/story"
    assert (await post(console, story, {"name": "Alpha: chairs, delivery"}, token=False)).status == 403
    response = await post(console, story, {"name": "Alpha: chairs, delivery"})
    assert (response.status, response.headers["Location"]) == (303, f"/console/conversations/{ALPHA}")
    path = project / "tests" / "stories" / "test_alpha_chairs_delivery.yml"
    assert f"Saved the test story {path}." in plain(await (await console.get(f"/console/conversations/{ALPHA}")).text())
    steps = yaml.safe_load(path.read_text(encoding="utf-8"))["stories"][0]["steps"]
    assert {"user": "do you deliver to Sharjah?\n", "intent": "ask_delivery"} in steps
    assert not (ROOT / "tests" / "stories" / path.name).exists()

    exists = await post(console, story, {"name": "alpha chairs delivery"})
    assert exists.status == 409 and f"Test story not saved: {path} exists" in plain(await exists.text())
    assert (await post(console, story, {"name": "alpha chairs delivery", "overwrite": "1"})).status == 303
    bad_name = await post(console, story, {"name": "?!"})
    assert bad_name.status == 400 and "needs at least one letter or digit" in plain(await bad_name.text())
    nothing = await post(console, f"/console/conversations/{ECHO}/story", {"name": "echo"})
    assert nothing.status == 400 and "the conversation has no customer message" in plain(await nothing.text())
    assert (await post(console, "/console/conversations/web-nobody/story", {"name": "nobody"})).status == 404
