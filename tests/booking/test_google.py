"""The Google Calendar adapter against a local server speaking Calendar API v3 and Google's token endpoint
(tests/fakes/google_calendar_server.py), authorised by a service-account key generated here whose JWT signature the
server verifies: busy time, events written, moved and deleted, the access token cached and renewed, and Google's
errors as CalendarError naming the provider and the HTTP status."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.booking.base import CalendarError, CallEvent
from bot.booking.google import JWT_BEARER, SCOPES, GoogleCalendar
from bot.core.settings import Settings
from tests.fakes.google_calendar_server import FakeGoogleCalendar

MONDAY = datetime(2026, 3, 9, tzinfo=UTC)
CALENDAR = "sales@closer.example"


def at(hour: float, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file(folder: Path, key: rsa.RSAPrivateKey, token_uri: str, name: str = "key.json") -> Path:
    """A service account's JSON key as the Google Cloud console downloads it."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = folder / name
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "closer-test",
                "private_key_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4",
                "private_key": pem,
                "client_email": "closer-booking@closer-test.iam.gserviceaccount.com",
                "client_id": "104812345678901234567",
                "token_uri": token_uri,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
async def google(key):
    server = await FakeGoogleCalendar(public_key=key.public_key()).start()
    server.calendars[CALENDAR] = {}
    yield server
    await server.close()


@pytest.fixture
def calendar(google, key, tmp_path) -> GoogleCalendar:
    return GoogleCalendar(key_file(tmp_path, key, google.token_uri), CALENDAR, google.api_base, timeout_s=5.0)


def call(uid: str = "5f0c6b1e9a2d4c3b8e7f6a5d4c3b2a19", hour: float = 10, sequence: int = 0) -> CallEvent:
    return CallEvent(uid, at(hour), at(hour + 0.5), "Call: Ann Lee", "Customer: Ann Lee <ann@example.org>", sequence)


async def test_busy_time_is_the_calendars_opaque_events_clipped_and_merged(google, calendar):
    google.add_event(at(9), at(10), CALENDAR)
    google.add_event(at(9.5), at(11), CALENDAR)  # overlaps the first: one busy period
    google.add_event(at(13), at(14), CALENDAR, transparency="transparent")  # "show me as free"
    google.add_event(at(17), at(19), CALENDAR)
    google.add_event(at(9), at(10), "primary")  # another calendar of the account
    busy = await calendar.busy(at(8), at(18))
    assert busy == [(at(9), at(11)), (at(17), at(18))]
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s, _ in busy)
    request = next(r for r in google.requests if r.path == "/calendar/v3/freeBusy")
    assert request.body["items"] == [{"id": CALENDAR}]
    assert request.body["timeMin"] == "2026-03-09T08:00:00+00:00"


async def test_an_event_is_written_moved_and_deleted(google, calendar):
    event = call()
    assert await calendar.create(event) == event.uid
    stored = google.calendars[CALENDAR][event.uid]
    assert stored["summary"] == "Call: Ann Lee" and stored["transparency"] == "opaque"
    assert stored["start"]["dateTime"] == "2026-03-09T10:00:00+00:00"
    assert await calendar.busy(at(8), at(18)) == [(at(10), at(10.5))]

    await calendar.move(event.uid, call(hour=15, sequence=1))
    assert stored["start"]["dateTime"] == "2026-03-09T15:00:00+00:00"
    assert await calendar.busy(at(8), at(18)) == [(at(15), at(15.5))]

    await calendar.cancel(event.uid)
    assert google.live(CALENDAR) == {}
    assert await calendar.busy(at(8), at(18)) == []
    await calendar.cancel(event.uid)  # 410 Gone: already deleted, not an error
    writes = [r for r in google.requests if r.method in ("POST", "PATCH", "DELETE") and "/events" in r.path]
    assert all(r.query == {"sendUpdates": "none"} for r in writes)


async def test_a_retried_insert_finds_its_event_rather_than_making_a_second(google, calendar):
    event = call()
    await calendar.create(event)
    assert await calendar.create(event) == event.uid  # the answer to the first was "lost": Google says 409
    assert len(google.live(CALENDAR)) == 1


async def test_the_jwt_assertion_is_signed_and_the_token_kept_until_it_expires(google, calendar, key, tmp_path):
    await calendar.busy(at(8), at(18))
    await calendar.create(call())
    await calendar.busy(at(8), at(18))
    tokens = [r for r in google.requests if r.path == "/token"]
    assert len(tokens) == 1  # one token for the three calls
    assert tokens[0].body["grant_type"] == JWT_BEARER
    claims = google.assertions[0]
    assert claims["iss"] == google.client_email and claims["aud"] == google.token_uri
    assert claims["scope"].split() == list(SCOPES) and claims["exp"] - claims["iat"] == 3600
    assert "sub" not in claims

    google.expire_tokens()  # revoked or expired early: the 401 brings a new token and the request again
    assert await calendar.busy(at(8), at(18)) == [(at(10), at(10.5))]
    assert len([r for r in google.requests if r.path == "/token"]) == 2

    delegated = GoogleCalendar(
        key_file(tmp_path, key, google.token_uri, "delegated.json"),
        CALENDAR,
        google.api_base,
        subject="manager@closer.example",
    )
    await delegated.busy(at(8), at(18))
    assert google.assertions[-1]["sub"] == "manager@closer.example"


async def test_a_key_that_google_does_not_know_is_refused(google, tmp_path):
    stranger = GoogleCalendar(key_file(tmp_path, rsa_key(), google.token_uri), CALENDAR, google.api_base)
    with pytest.raises(CalendarError, match=r"^Google Calendar 400 on the token request: Invalid JWT") as caught:
        await stranger.busy(at(8), at(18))
    assert caught.value.provider == "google" and caught.value.status == 400 and not caught.value.retryable
    assert not [r for r in google.requests if r.path.startswith("/calendar/")]


async def test_a_missing_or_incomplete_key_file_is_named(google, tmp_path):
    missing = GoogleCalendar(tmp_path / "nowhere.json", CALENDAR, google.api_base)
    with pytest.raises(CalendarError, match=r"cannot read the service account key .*nowhere\.json"):
        await missing.busy(at(8), at(18))
    (tmp_path / "partial.json").write_text(json.dumps({"type": "service_account", "client_email": "x@y.z"}))
    partial = GoogleCalendar(tmp_path / "partial.json", CALENDAR, google.api_base)
    with pytest.raises(CalendarError, match=r"partial\.json lacks private_key, token_uri"):
        await partial.busy(at(8), at(18))


async def test_googles_errors_name_the_provider_and_the_status(google, calendar, key, tmp_path):
    with pytest.raises(CalendarError, match=r"^Google Calendar 404 on PATCH /calendar/v3/calendars/.*: Not Found"):
        await calendar.move("0123456789abcdef", call())

    unshared = GoogleCalendar(
        key_file(tmp_path, key, google.token_uri, "k2.json"), "boss@closer.example", google.api_base
    )
    with pytest.raises(CalendarError, match=r"calendar 'boss@closer.example': notFound") as caught:
        await unshared.busy(at(8), at(18))  # Google answers 200 with the calendar's errors
    assert caught.value.status == 200

    google.outage = True
    with pytest.raises(CalendarError, match=r"^Google Calendar 503 on POST /calendar/v3/freeBusy: Backend Error") as e:
        await calendar.busy(at(8), at(18))
    assert e.value.retryable


async def test_no_answer_within_the_timeout_is_a_calendar_error_without_status(google, key, tmp_path):
    calendar = GoogleCalendar(key_file(tmp_path, key, google.token_uri), CALENDAR, google.api_base, timeout_s=0.2)
    google.delay_s = 2.0
    with pytest.raises(CalendarError, match=r"^Google Calendar: no answer on POST .*TimeoutError") as caught:
        await calendar.busy(at(8), at(18))
    assert caught.value.status is None and caught.value.retryable


def test_the_adapter_is_built_from_settings(tmp_path):
    with pytest.raises(ValueError, match="CLOSER_GOOGLE_SERVICE_ACCOUNT_FILE"):
        GoogleCalendar.from_settings(Settings(calendar_provider="google"))
    adapter = GoogleCalendar.from_settings(
        Settings(
            calendar_provider="google",
            google_service_account_file=tmp_path / "key.json",
            google_calendar_id=CALENDAR,
            calendar_timeout=3.0,
        )
    )
    assert (adapter.calendar_id, adapter.api_base, adapter.timeout_s) == (CALENDAR, "https://www.googleapis.com", 3.0)
