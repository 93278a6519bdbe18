"""A thin async client of YooKassa's API v3 (https://yookassa.ru/developers/api): create a payment, read one back.

Not the official SDK (PyPI ``yookassa``): it makes blocking HTTP calls from a process-wide ``Configuration``, and
Closer calls outside services asynchronously, with clients built once and passed down.

**Requests.** ``base_url`` + ``/v3/…`` (``https://api.yookassa.ru/v3/payments``), HTTP Basic auth with the shop's id
as the user name and its secret key as the password, JSON bodies. ``POST /v3/payments`` carries an
``Idempotence-Key`` header (at most 64 characters; a UUID 4): within 24 hours YooKassa answers a request repeating a
key with the outcome of the first one, so a request whose answer was lost is sent again with the same key and no
second payment is made. The caller keeps the key (:mod:`bot.payments.service` stores it before the first call).

**Money.** YooKassa's ``amount`` is ``{"value": "1234.50", "currency": "RUB"}``: a decimal string in major units;
Closer's is integer minor units of an ISO 4217 currency. :func:`to_value` and :func:`to_minor_units` convert between
them exactly through ``Decimal`` by the currency's number of minor digits (never a float).

**Errors.** :class:`PaymentError` names the request, the HTTP status and YooKassa's ``code`` and ``description``
(its error body is ``{"type": "error", "id", "code", "description", "parameter"}``). A 202 (YooKassa still
processing the request), 429, 5xx, a timeout or a connection error is ``retryable``: each call makes up to
``attempts`` tries with the same body and key, ``retry_delay_s`` × 2ⁿ seconds apart, before raising. Every try is
bounded by ``timeout_s`` seconds (CLOSER_YOOKASSA_TIMEOUT).
"""

import asyncio
import json
import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from bot.core.money import MoneyError, exponent, to_minor

log = logging.getLogger(__name__)

PROVIDER = "yookassa"
STATUSES = ("pending", "waiting_for_capture", "succeeded", "canceled")  # a YooKassa payment's, in order
FINAL = ("succeeded", "canceled")
MAX_DESCRIPTION_CHARS = 128  # YooKassa's limit on a payment's description
MAX_KEY_CHARS = 64  # YooKassa's limit on an Idempotence-Key
MAX_METADATA_KEYS, MAX_METADATA_KEY_CHARS, MAX_METADATA_VALUE_CHARS = 16, 32, 512  # YooKassa's limits on metadata
PAYMENT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # YooKassa's ids look like 2419a771-000f-5000-9000-1edaf29243f2


class PaymentError(Exception):
    """A YooKassa request that failed. ``status``: the HTTP status (None when no answer came: timeout, connection
    error); ``code``/``description``: YooKassa's error ``code`` and ``description`` when it sent its error body;
    ``retryable``: the same request (same idempotence key) may succeed later (202, 429, 5xx, no answer)."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, description: str | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.description = status, code, description

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in (202, 429) or self.status >= 500


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as YooKassa's API returned it. ``status``: one of :data:`STATUSES`; ``amount_minor``: ``amount`` in
    minor units of ``currency`` (ISO 4217); ``confirmation_url``: the payment page the customer is sent to (a
    ``redirect`` confirmation of a pending payment; None otherwise); ``metadata``: what the shop attached when
    creating it; ``cancellation_reason``: ``cancellation_details.reason`` of a canceled payment (e.g.
    ``expired_on_confirmation``)."""

    id: str
    status: str
    amount_minor: int
    currency: str
    paid: bool
    confirmation_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    cancellation_reason: str | None = None


def to_value(amount_minor: int, currency: str) -> str:
    """Minor units → YooKassa's ``amount.value``: ``123450, "RUB"`` → ``"1234.50"``; ``500, "JPY"`` → ``"500"``.
    Raises MoneyError for an unknown currency, ValueError for an amount that is not a positive whole number."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a whole number above 0, not {amount_minor!r}")
    digits = exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-digits):.{digits}f}"


def to_minor_units(value: Any, currency: str) -> int:
    """YooKassa's ``amount.value`` (a decimal string, ``"1234.50"``) → minor units of ``currency`` (``123450``).
    Raises MoneyError for an unknown currency, a value that is not a decimal string, or one more precise than the
    currency allows."""
    if not isinstance(value, str):
        raise MoneyError(f"amount.value must be a decimal string, not {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise MoneyError(f"amount.value {value!r} is not a number") from exc
    if not amount.is_finite():
        raise MoneyError(f"amount.value {value!r} is not a number")
    return to_minor(amount, currency)


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_payment(data: Any) -> ProviderPayment:
    """A payment object of API v3 (``{"id", "status", "paid", "amount": {"value", "currency"}, "confirmation":
    {"type", "confirmation_url"}, "metadata", "cancellation_details": {"reason"}, …}``) as a
    :class:`ProviderPayment`. Raises ValueError naming the field that is missing or wrong."""
    if not isinstance(data, dict):
        raise ValueError("the payment is not a JSON object")
    payment_id, status, amount = data.get("id"), data.get("status"), data.get("amount")
    if not isinstance(payment_id, str) or not PAYMENT_ID.fullmatch(payment_id):
        raise ValueError(f"id: {payment_id!r} is not a YooKassa payment id")
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(amount, dict) or not isinstance(amount.get("currency"), str):
        raise ValueError("amount: must be {value, currency}")
    try:
        amount_minor = to_minor_units(amount.get("value"), amount["currency"])
    except MoneyError as exc:
        raise ValueError(f"amount: {exc}") from exc
    confirmation = _mapping(data, "confirmation")
    url = confirmation.get("confirmation_url")
    metadata = _mapping(data, "metadata")
    cancellation = _mapping(data, "cancellation_details")
    return ProviderPayment(
        id=payment_id,
        status=status,
        amount_minor=amount_minor,
        currency=amount["currency"],
        paid=data.get("paid") is True,
        confirmation_url=url if isinstance(url, str) else None,
        metadata={str(k): str(v) for k, v in metadata.items()},
        cancellation_reason=cancellation.get("reason") if isinstance(cancellation.get("reason"), str) else None,
    )


class YooKassa:
    """YooKassa's API v3 at ``base_url`` for the shop ``shop_id`` (authenticated by ``secret_key``). Each try of a
    request is bounded by ``timeout_s`` seconds; a retryable failure is tried again up to ``attempts`` tries in all,
    ``retry_delay_s`` × 2ⁿ seconds apart."""

    name = PROVIDER

    def __init__(
        self,
        shop_id: str,
        secret_key: str,
        base_url: str = "https://api.yookassa.ru",
        timeout_s: float = 10.0,
        attempts: int = 3,
        retry_delay_s: float = 1.0,
    ):
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s
        self.attempts, self.retry_delay_s = attempts, retry_delay_s
        self._auth = aiohttp.BasicAuth(shop_id, secret_key)

    @classmethod
    def from_settings(cls, settings: Any) -> "YooKassa":
        """From the ``yookassa_*`` settings. Raises ValueError when the shop id or the secret key is not set."""
        missing = [
            f"CLOSER_{n.upper()}" for n in ("yookassa_shop_id", "yookassa_secret_key") if not getattr(settings, n)
        ]
        if missing:
            raise ValueError(f"YooKassa payments need {' and '.join(missing)}")
        return cls(
            settings.yookassa_shop_id,
            settings.yookassa_secret_key,
            settings.yookassa_base_url,
            settings.yookassa_timeout,
        )

    async def create_payment(
        self,
        *,
        amount_minor: int,
        currency: str,
        return_url: str,
        description: str,
        metadata: dict[str, str],
        idempotence_key: str,
    ) -> ProviderPayment:
        """``POST /v3/payments``: a payment of ``amount_minor`` minor units of ``currency``, captured at once
        (``capture: true``), paid on YooKassa's page (a ``redirect`` confirmation) which sends the customer back to
        ``return_url``; ``description`` (shown to the customer, at most 128 characters) and ``metadata`` (at most 16
        keys of 32 characters, values of 512) travel with it and come back in every read and notification. The same
        ``idempotence_key`` (at most 64 characters) on a repeat gets the same payment. Raises ValueError for input
        beyond those limits, MoneyError for an unknown currency, PaymentError when YooKassa refuses or cannot be
        reached (after the retries)."""
        if not idempotence_key or len(idempotence_key) > MAX_KEY_CHARS:
            raise ValueError(f"idempotence_key must have 1 to {MAX_KEY_CHARS} characters")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(
                f"description must have at most {MAX_DESCRIPTION_CHARS} characters, not {len(description)}"
            )
        if len(metadata) > MAX_METADATA_KEYS or any(
            len(k) > MAX_METADATA_KEY_CHARS or len(v) > MAX_METADATA_VALUE_CHARS for k, v in metadata.items()
        ):
            raise ValueError(
                f"metadata: at most {MAX_METADATA_KEYS} keys of {MAX_METADATA_KEY_CHARS} characters, "
                f"values of {MAX_METADATA_VALUE_CHARS}"
            )
        body = {
            "amount": {"value": to_value(amount_minor, currency), "currency": currency},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": return_url},
            "description": description,
            "metadata": metadata,
        }
        return await self._payment("POST", "/v3/payments", body, {"Idempotence-Key": idempotence_key})

    async def get_payment(self, payment_id: str) -> ProviderPayment:
        """``GET /v3/payments/{payment_id}``: the payment as YooKassa knows it now. Raises ValueError for a string
        that cannot be a payment id, PaymentError as :meth:`create_payment` does (404 ``not_found`` for an id
        YooKassa does not know)."""
        if not PAYMENT_ID.fullmatch(payment_id):
            raise ValueError(f"{payment_id!r} is not a YooKassa payment id")
        return await self._payment("GET", f"/v3/payments/{urllib.parse.quote(payment_id, safe='')}")

    async def _payment(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> ProviderPayment:
        data = await self._request(method, path, body, headers)
        try:
            return parse_payment(data)
        except ValueError as exc:
            raise PaymentError(f"YooKassa {method} {path}: an unexpected payment object: {exc}", 200) from exc

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> dict[str, Any]:
        """The JSON object of a 200 answer, after up to ``attempts`` tries of a retryable failure."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._try(method, path, body, headers)
            except PaymentError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                delay = self.retry_delay_s * 2 ** (attempt - 1)
                log.info("YooKassa: %s; try %d of %d in %.1f s", exc, attempt + 1, self.attempts, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _try(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s), auth=self._auth) as client,
                client.request(method, self.base_url + path, json=body, headers=headers) as response,
            ):
                text, status = await response.text(), response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PaymentError(f"YooKassa {method} {path}: no answer ({type(exc).__name__} {exc})".strip()) from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status == 200 and isinstance(data, dict):
            return data
        detail = data if isinstance(data, dict) else {}
        code, description = detail.get("code"), detail.get("description")
        code = code if isinstance(code, str) else None
        description = description if isinstance(description, str) else None
        reason = ": ".join(filter(None, [code, description])) or text[:300]
        if detail.get("parameter"):
            reason += f" (parameter {detail['parameter']})"
        if status == 200:  # a success without a JSON object: a proxy's page, not YooKassa's answer
            status, reason = 502, f"not a JSON object: {text[:300]}"
        raise PaymentError(f"YooKassa {status} on {method} {path}: {reason}", status, code, description)
