"""A local HTTP server speaking the part of YooKassa's API v3 Closer uses, standing in for a shop in tests:
``POST /v3/payments`` (HTTP Basic auth with the shop id and secret key, an ``Idempotence-Key`` header required and
honoured: the same key gets the same payment back, the same key with another body a 400) and ``GET
/v3/payments/{id}``, payments kept in memory. Errors as YooKassa sends them: ``{"type": "error", "id", "code",
"description", "parameter"}`` with 401 ``invalid_credentials``, 400 ``invalid_request``, 404 ``not_found``.

Set by the test: :meth:`FakeYooKassa.succeed` and :meth:`FakeYooKassa.cancel` move a payment on as the customer's
payment (or its expiry) would; :meth:`FakeYooKassa.fail_next` answers the next request(s) with an error (500 by
default), optionally after doing what was asked (the answer lost on the way back). :meth:`notification` makes the
body YooKassa would POST to the shop. Every request is recorded in ``requests``."""

import base64
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Recorded:
    method: str
    path: str
    idempotence_key: str | None
    body: Any


@dataclass
class Failure:
    status: int
    processed: bool  # the request took effect before the error was answered


def _error(status: int, code: str, description: str, parameter: str | None = None) -> web.Response:
    body = {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description}
    if parameter:
        body["parameter"] = parameter
    return web.json_response(body, status=status)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeYooKassa:
    shop_id: str = "506751"
    secret_key: str = "test_Fh8hUAVVBGUGbjmlzba6TB0iyUbos_lueTHE-axOwM0"
    payments: dict[str, dict] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    _by_key: dict[str, tuple[str, Any]] = field(default_factory=dict)  # key → (payment id, the body it was made with)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> "FakeYooKassa":
        app = web.Application(middlewares=[self._guard])
        app.router.add_post("/v3/payments", self._create)
        app.router.add_get("/v3/payments/{id}", self._get)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.base_url = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        await self._server.close()

    def fail_next(self, status: int = 500, times: int = 1, processed: bool = False) -> None:
        """Answer the next ``times`` requests with ``status`` and YooKassa's error body; with ``processed`` the
        request first takes effect (a payment is made) and only its answer is lost."""
        self.failures.extend(Failure(status, processed) for _ in range(times))

    def succeed(self, payment_id: str) -> dict:
        """The customer paid: the payment is ``succeeded`` (captured at once)."""
        payment = self.payments[payment_id]
        payment.update(status="succeeded", paid=True, captured_at=_now(), income_amount=dict(payment["amount"]))
        payment.pop("confirmation", None)
        return payment

    def cancel(self, payment_id: str, reason: str = "expired_on_confirmation") -> dict:
        """The payment is ``canceled`` (by default: the customer did not pay in time)."""
        payment = self.payments[payment_id]
        payment.update(status="canceled", paid=False, cancellation_details={"party": "yoo_money", "reason": reason})
        payment.pop("confirmation", None)
        return payment

    def notification(self, payment_id: str, event: str | None = None) -> dict:
        """The body YooKassa POSTs to the shop about ``payment_id`` (``event`` default: its current status's)."""
        payment = self.payments[payment_id]
        return {"type": "notification", "event": event or f"payment.{payment['status']}", "object": dict(payment)}

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        text = await request.text()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        self.requests.append(Recorded(request.method, request.path, request.headers.get("Idempotence-Key"), body))
        expected = base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(
                401, "invalid_credentials", "Login or password is incorrect. Specify the shopId and secret key."
            )
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not failure.processed:
            return _error(failure.status, "internal_server_error", "Internal server error, the result is unknown.")
        response = await handler(request)
        if failure is not None:
            return _error(failure.status, "internal_server_error", "Internal server error, the result is unknown.")
        return response

    async def _create(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotence-Key")
        if not key or len(key) > 64:
            return _error(400, "invalid_request", "Idempotence key must be 1 to 64 characters", "Idempotence-Key")
        body = self.requests[-1].body
        if key in self._by_key:
            payment_id, made_with = self._by_key[key]
            if made_with != body:
                return _error(400, "invalid_request", "Idempotence key duplicated with other parameters")
            return web.json_response(self.payments[payment_id])
        problem = self._invalid(body)
        if problem:
            return _error(400, "invalid_request", problem[1], problem[0])
        payment_id = f"{next(self._ids):08x}-000f-5000-9000-1edaf29243f2"
        payment = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": body["amount"],
            "confirmation": {
                "type": "redirect",
                "confirmation_url": f"{self.base_url}/checkout/payments/v2/contract?orderId={payment_id}",
            },
            "created_at": _now(),
            "description": body.get("description"),
            "metadata": body.get("metadata") or {},
            "recipient": {"account_id": self.shop_id, "gateway_id": "2248035"},
            "refundable": False,
            "test": True,
        }
        self.payments[payment_id] = payment
        self._by_key[key] = (payment_id, body)
        return web.json_response(payment)

    def _invalid(self, body: Any) -> tuple[str, str] | None:
        """(parameter, description) of what is wrong with a create request, or None."""
        if not isinstance(body, dict):
            return "body", "The request body must be a JSON object"
        amount = body.get("amount")
        if not isinstance(amount, dict) or not isinstance(amount.get("value"), str):
            return "amount", "amount.value must be a string"
        if not re.fullmatch(r"\d+(\.\d{1,2})?", amount["value"]) or Decimal(amount["value"]) <= 0:
            return "amount.value", "Invalid amount value"
        if amount.get("currency") != "RUB":
            return "amount.currency", "Only RUB is enabled for this shop"
        confirmation = body.get("confirmation")
        if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
            return "confirmation.type", "Confirmation type redirect is expected"
        if not str(confirmation.get("return_url", "")).startswith(("http://", "https://")):
            return "confirmation.return_url", "return_url must be an http(s) URL"
        if len(body.get("description") or "") > 128:
            return "description", "Description must be at most 128 characters"
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 16:
            return "metadata", "At most 16 metadata keys"
        return None

    async def _get(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return _error(404, "not_found", "Payment doesn't exist or access denied")
        return web.json_response(payment)
