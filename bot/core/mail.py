"""Sending an e-mail through the business's SMTP server (settings ``smtp_*``: host, port, credentials, STARTTLS and
``smtp_timeout`` in seconds), with aiosmtplib: the managers' digest (bot.review.digest) and the customers' call
invitations (bot.booking.invites)."""

from email.message import EmailMessage

import aiosmtplib

from bot.core.settings import Settings


async def send(message: EmailMessage, settings: Settings) -> None:
    """Send ``message`` (its From and To set) through ``settings.smtp_host``. Raises aiosmtplib.SMTPException when
    the server refuses it, OSError or asyncio's TimeoutError (an SMTPTimeoutError) when it cannot be reached within
    ``smtp_timeout``."""
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
    )
