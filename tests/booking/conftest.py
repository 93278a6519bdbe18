"""Real local servers for the booking tests: a fresh calendar collection per test on the session's Radicale (the
``radicale`` fixture, tests/radicale.py), and aiosmtpd, the SMTP server the managers' digest is tested against
(tests/review/test_digest.py's ``Mailbox``)."""

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from bot.booking.caldav import CalDAVCalendar
from tests.radicale import Radicale, make_calendar
from tests.review.test_digest import Mailbox
from tests.servers import free_port


@pytest.fixture
async def caldav(radicale: Radicale) -> CalDAVCalendar:
    """The adapter on a fresh calendar of the session's Radicale."""
    return CalDAVCalendar(await make_calendar(radicale), radicale.username, radicale.password, timeout_s=5.0)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Mailbox]]:
    """A real SMTP server (aiosmtpd) on a free loopback port and the mailbox of what it received."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()
