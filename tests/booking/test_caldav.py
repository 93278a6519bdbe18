"""The CalDAV adapter against a real CalDAV server, Radicale, started locally (tests/radicale.py): busy time
from a free-busy-query REPORT (recurring events expanded, transparent ones left out), events PUT as iCalendar
resources, moved with a higher SEQUENCE and deleted, and the server's refusals as CalendarError."""

from datetime import UTC, datetime, timedelta

import aiohttp
import icalendar
import pytest

from bot.booking.base import CalendarError, CallEvent
from bot.booking.caldav import CalDAVCalendar
from bot.core.settings import Settings
from tests.radicale import PASSWORD, USER, make_calendar
from tests.servers import free_port

MONDAY = datetime(2026, 3, 9, tzinfo=UTC)
UID = "9b2f4c6d8e0a4b1c9d3e5f7a0b2c4d6e"


def at(hour: float, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def call(hour: float = 10, sequence: int = 0) -> CallEvent:
    return CallEvent(UID, at(hour), at(hour + 0.5), "Call: Ann Lee", "Customer: Ann Lee <ann@example.org>", sequence)


async def request(calendar: CalDAVCalendar, method: str, url: str, body: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "text/calendar; charset=utf-8"} if body else {}
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, url, data=body, headers=headers, auth=calendar.auth) as response,
    ):
        return response.status, await response.text()


async def put_foreign(calendar: CalDAVCalendar, name: str, vevent_lines: str) -> None:
    """An event the manager made in their own calendar app."""
    body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\n"
    lines = vevent_lines.strip().replace("\n", "\r\n")
    body += f"UID:{name}\r\nDTSTAMP:20260301T000000Z\r\n{lines}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    status, text = await request(calendar, "PUT", f"{calendar.calendar_url}{name}.ics", body)
    assert status == 201, text


async def test_an_event_is_put_moved_and_deleted_as_an_icalendar_resource(caldav):
    assert await caldav.create(call()) == UID
    status, text = await request(caldav, "GET", caldav.href(UID))
    assert status == 200
    stored = icalendar.Calendar.from_ical(text)
    assert stored.get("METHOD") is None  # a calendar object resource, not an iTIP message
    (event,) = stored.walk("VEVENT")
    assert str(event["UID"]) == UID and event["SEQUENCE"] == 0 and str(event["SUMMARY"]) == "Call: Ann Lee"
    assert event.decoded("DTSTART") == at(10) and event.decoded("DTEND") == at(10.5)
    assert "ORGANIZER" not in event and "ATTENDEE" not in event  # no server-side scheduling of its own
    assert await caldav.busy(at(8), at(18)) == [(at(10), at(10.5))]

    await caldav.move(UID, call(hour=15, sequence=1))
    (event,) = icalendar.Calendar.from_ical((await request(caldav, "GET", caldav.href(UID)))[1]).walk("VEVENT")
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTART") == at(15)
    assert await caldav.busy(at(8), at(18)) == [(at(15), at(15.5))]

    await caldav.cancel(UID)
    assert (await request(caldav, "GET", caldav.href(UID)))[0] == 404
    assert await caldav.busy(at(8), at(18)) == []
    await caldav.cancel(UID)  # already gone: not an error


async def test_busy_time_expands_recurring_events_and_leaves_out_free_ones(caldav):
    await put_foreign(caldav, "standup", "DTSTART:20260309T090000Z\nDTEND:20260309T091500Z\nRRULE:FREQ=DAILY;COUNT=3")
    await put_foreign(caldav, "lunch", "DTSTART:20260309T120000Z\nDTEND:20260309T130000Z\nTRANSP:TRANSPARENT")
    await put_foreign(caldav, "long", "DTSTART:20260309T160000Z\nDTEND:20260309T200000Z")
    await put_foreign(caldav, "next-month", "DTSTART:20260409T090000Z\nDTEND:20260409T100000Z")
    busy = await caldav.busy(at(8), at(18, day=1))
    assert busy == [
        (at(9), at(9.25)),
        (at(16), at(20)),  # reaches past the day: clipped only at the end of the range asked
        (at(9, day=1), at(9.25, day=1)),
    ]
    assert await caldav.busy(at(8), at(18)) == [(at(9), at(9.25)), (at(16), at(18))]


async def test_a_retried_create_finds_its_event_and_a_move_needs_one(caldav):
    await caldav.create(call())
    assert await caldav.create(call(hour=11)) == UID  # If-None-Match: * answered 412: the event is there
    assert await caldav.busy(at(8), at(18)) == [(at(10), at(10.5))]  # the first write stands
    with pytest.raises(CalendarError, match=r"^CalDAV 412 on PUT 0+\.ics") as caught:
        await caldav.move("0" * 32, call())
    assert caught.value.provider == "caldav" and caught.value.status == 412 and not caught.value.retryable


async def test_refusals_and_silence_are_calendar_errors_naming_the_status(radicale):
    url = await make_calendar(radicale)
    wrong = CalDAVCalendar(url, radicale.username, "not-the-password", timeout_s=5.0)
    with pytest.raises(CalendarError, match=r"^CalDAV 401 on REPORT calendar") as caught:
        await wrong.busy(at(8), at(18))
    assert caught.value.status == 401
    missing = CalDAVCalendar(f"{radicale.url}/{radicale.username}/no-such-calendar/", USER, PASSWORD)
    with pytest.raises(CalendarError, match=r"^CalDAV 409 on PUT"):
        await missing.create(call())
    nobody = CalDAVCalendar(f"http://127.0.0.1:{free_port()}/cal/", timeout_s=2.0)
    with pytest.raises(CalendarError, match=r"^CalDAV: no answer on REPORT calendar") as caught:
        await nobody.busy(at(8), at(18))
    assert caught.value.status is None and caught.value.retryable


def test_the_adapter_is_built_from_settings():
    with pytest.raises(ValueError, match="CLOSER_CALDAV_CALENDAR_URL"):
        CalDAVCalendar.from_settings(Settings(calendar_provider="caldav"))
    adapter = CalDAVCalendar.from_settings(
        Settings(calendar_provider="caldav", caldav_calendar_url="https://dav.example.com/cal", caldav_username="m")
    )
    assert adapter.calendar_url == "https://dav.example.com/cal/" and adapter.auth is not None
