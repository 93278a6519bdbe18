"""YooKassa's HTTP notifications in the console's application: :func:`setup` mounts ``POST /webhooks/yookassa`` when
the shop is configured (CLOSER_YOOKASSA_SHOP_ID and CLOSER_YOOKASSA_SECRET_KEY); point the shop's notifications
(``payment.succeeded``, ``payment.canceled``) at ``<public_url>/webhooks/yookassa`` in YooKassa's dashboard.

Each notification goes to :func:`bot.payments.service.handle_notification` (which reads the payment back through
the API: YooKassa does not sign notifications) with the sender's address: the connection's, or, when it comes from
one of CLOSER_YOOKASSA_TRUSTED_PROXIES, the last address in ``X-Forwarded-For`` that is not one of them. The answer
is JSON ``{"outcome": kind, "detail": sentence}`` with:

- 200: processed, a repeat already applied, or an event that is not about a payment (YooKassa stops sending it);
- 400: not a notification (the detail names the field); 403: not from one of YooKassa's addresses;
- 404: no payment of ours has that id; 409: the API does not confirm what the notification claims;
- 422: the API's amount, currency or metadata differ from ours (refused, logged as an error);
- 500: paid and recorded, but what follows a payment (``after_payment``) failed;
- 502: the payment could not be read back from YooKassa.

YooKassa repeats a notification not answered 200 for up to 24 hours, so every answer but 200 is tried again: a
failed read-back or ``after_payment`` heals itself, and a repeat of a notification already applied changes nothing.
"""

import ipaddress
import logging
from dataclasses import dataclass

from aiohttp import web

from bot.core.db import session_scope
from bot.payments.service import AfterPayment, Kind, handle_notification
from bot.payments.yookassa import YooKassa
from bot.web.appkeys import settings_key

log = logging.getLogger(__name__)

PATH = "/webhooks/yookassa"
STATUS = {
    Kind.PROCESSED: 200,
    Kind.DUPLICATE: 200,
    Kind.IGNORED: 200,
    Kind.MALFORMED: 400,
    Kind.IP_NOT_ALLOWED: 403,
    Kind.UNKNOWN_PAYMENT: 404,
    Kind.NOT_CONFIRMED: 409,
    Kind.MISMATCH: 422,
    Kind.AFTER_PAYMENT_FAILED: 500,
    Kind.READ_BACK_FAILED: 502,
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Webhook:
    """What the notification route needs, built once by :func:`setup`."""

    client: YooKassa
    database_url: str
    check_ip: bool
    trusted_proxies: tuple[Network, ...]
    after_payment: AfterPayment | None


webhook_key = web.AppKey("yookassa_webhook", Webhook)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: web.Request, trusted_proxies: tuple[Network, ...]) -> str | None:
    """The address the request came from: ``request.remote``, unless that is a trusted proxy; then the last
    ``X-Forwarded-For`` address (every header's, in order) that is not a trusted proxy (the first one when all are)."""
    remote = request.remote
    if remote is None or not trusted_proxies or not _within(remote, trusted_proxies):
        return remote
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not _within(hop, trusted_proxies):
            return hop
    return hops[0] if hops else remote


async def notification(request: web.Request) -> web.Response:
    """``POST /webhooks/yookassa`` (the module docstring)."""
    webhook = request.app[webhook_key]
    try:
        body = await request.json()
    except ValueError:
        body = None  # handle_notification answers it as malformed, after checking the sender
    async with session_scope(webhook.database_url) as session:
        outcome = await handle_notification(
            session,
            body,
            client_ip(request, webhook.trusted_proxies),
            webhook.client,
            after_payment=webhook.after_payment,
            check_ip=webhook.check_ip,
        )
    return web.json_response({"outcome": str(outcome.kind), "detail": outcome.detail}, status=STATUS[outcome.kind])


def setup(app: web.Application, after_payment: AfterPayment | None = None, client: YooKassa | None = None) -> None:
    """Serve ``POST /webhooks/yookassa`` in ``app`` (reads ``app[settings_key]``) when YooKassa is configured (or
    ``client`` is given); ``after_payment(session, payment)`` is awaited once after a payment succeeds. Raises
    ValueError for a CLOSER_YOOKASSA_TRUSTED_PROXIES entry that is not an address or network."""
    settings = app[settings_key]
    if client is None:
        if not (settings.yookassa_shop_id and settings.yookassa_secret_key):
            log.info("YooKassa is not configured: %s is not served", PATH)
            return
        client = YooKassa.from_settings(settings)
    try:
        proxies = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in settings.yookassa_trusted_proxies)
    except ValueError as exc:
        raise ValueError(f"CLOSER_YOOKASSA_TRUSTED_PROXIES: {exc}") from exc
    app[webhook_key] = Webhook(client, settings.database_url, settings.yookassa_check_ip, proxies, after_payment)
    app.router.add_post(PATH, notification)
