"""The durable webhook channel: :class:`DurableWebhookInput`, a Rasa InputChannel that owns the inbox
of a messaging platform's webhook, so that a platform (Telegram, WhatsApp, …) only says how its
requests are verified and what its updates mean.

Every delivery (one customer message of a webhook call) is stored in the business DB before the call
is answered (:class:`~connectors.store.ChannelStore`), so that nothing acknowledged is lost: a
delivery seen before (the platform retries) is acknowledged and dropped; a new one is answered 200 at
once and processed in its customer's queue (:class:`~connectors.turns.SenderQueues`), its Rasa turn on
the turn thread (:func:`~connectors.turns.run_turn`); one still unprocessed when the server stopped is
processed at the next start; processed ones are forgotten after 48 h. With several Rasa server replicas behind a
load balancer, each delivery is claimed by the replica that accepted it and processed only by the replica holding
the claim (:meth:`~connectors.store.ChannelStore.claim`), and only once every earlier delivery of the same customer is
processed, whichever replica accepted it (until then it is tried again after ``BEHIND_RETRY_S``, doubling up to
``BEHIND_RETRY_MAX_S``): a customer's messages have their turns in the order received, even when two replicas took
them; every ``TAKEOVER_INTERVAL_S`` a replica takes over the deliveries left unprocessed (claimed more than
``STALE_CLAIM_S`` ago: by one that stopped, or its own whose claim failed). A customer over
the rate limit (:func:`~connectors.config.rate_limiter`) is still acknowledged and deduplicated, but the delivery
gets no turn, and the first one of a window gets the polite
:data:`~connectors.ratelimit.SLOW_DOWN_REPLY`.
"""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import UserUttered
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from connectors.config import rate_limiter
from connectors.logs import ref
from connectors.metrics import WEBHOOK_DELIVERIES
from connectors.paused import PausedReplies
from connectors.ratelimit import SLOW_DOWN_REPLY, Decision, RateLimiter
from connectors.store import ChannelStore, Claim
from connectors.turns import SenderQueues, freeze_loaded_heap, run_turn
from connectors.webhook_http import Refused, error

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 20.0  # at shutdown; what is left is processed at the next start
PRUNE_INTERVAL_S = 3600.0
TAKEOVER_INTERVAL_S = 30.0
BEHIND_RETRY_S = 0.2  # a delivery behind an earlier unprocessed one of its customer is tried again after this…
BEHIND_RETRY_MAX_S = 2.0  # …doubling up to this
RATE_LIMITED = "rate limited: not processed"  # the error kept on a delivery skipped by the rate limit
# The polite answers, without a Rasa turn, to what no channel can read yet.
UNSUPPORTED_REPLY = "I can read text messages and button presses. Could you type that for me?"
LOCATION_REPLY = "Thanks! I can't read map pins yet. Could you type your city or area?"


@dataclass(frozen=True)
class Delivery:
    """One customer message of a webhook call. ``delivery_id``: the platform's id of it, unique on the
    channel (a retry carries the same one); ``sender_id``: the conversation id
    (:func:`bot.contracts.conversation_ids.make`); ``payload``: the JSON kept in the inbox until
    :meth:`DurableWebhookInput.read` reads it."""

    delivery_id: str
    sender_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Reading:
    """What a delivery says: ``text`` for Rasa (with ``metadata``, which Rasa gets as
    ``{"channel": <name>, <name>: metadata}``, and the platform's ``message_id``, else the delivery's own,
    ``<name>-delivery-<row id>``), or a ``reply`` sent at once without Rasa (e.g. :data:`UNSUPPORTED_REPLY`), or
    neither (nothing to answer)."""

    text: str | None = None
    reply: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None


class DurableWebhookInput(InputChannel):
    """A Rasa channel receiving a platform's webhook at ``POST /webhooks/<name>/webhook`` (and ``GET
    /webhooks/<name>/`` for health), with the inbox lifecycle of the module docstring. A subclass fills
    in two methods, sets ``self.output`` (its OutputChannel) after calling ``__init__``, and defines
    ``name()`` and ``from_credentials()``:

    - :meth:`deliveries`: verify the request (raise :class:`~connectors.webhook_http.Refused`) and
      split its body (:func:`~connectors.webhook_http.read_json`) into :class:`Delivery` objects;
    - :meth:`read`: what one stored delivery says, as a :class:`Reading`.

    For example, a platform signing its calls with a shared token and sending one message per call::

        class AcmeInput(DurableWebhookInput):
            @classmethod
            def name(cls) -> str:
                return "acme"

            async def deliveries(self, request: Request) -> Optional[List[Delivery]]:
                if not hmac.compare_digest(request.headers.get("X-Acme-Token", ""), self.token):
                    raise Refused(403, "wrong token")
                body = read_json(request, DEFAULT_MAX_BODY_BYTES)
                return [Delivery(str(body["id"]), conversation_ids.make("acme", body["user"]), body)]

            async def read(self, sender_id: str, payload: Dict[str, Any]) -> Reading:
                text = payload.get("text")
                return Reading(text, metadata={"user": payload["user"]}) if text else Reading(reply=UNSUPPORTED_REPLY)

    :meth:`start` and :meth:`stop` may be extended (call ``super()``) for the platform's own set-up
    and clean-up; :attr:`webhook_paths` may name other paths for the webhook (Avito's carries a secret
    segment: ``connectors/avito.py``)."""

    output: OutputChannel
    # The webhook's paths under ``/webhooks/<name>``, each answering ``POST`` with :meth:`_receive`; a subclass may
    # add one with Sanic path parameters (e.g. a secret segment, ``/webhook/<secret:str>``), which its
    # :meth:`deliveries` reads from ``request.match_info``.
    webhook_paths: tuple[str, ...] = ("/webhook",)

    def __init__(self, store: ChannelStore | None = None, limiter: RateLimiter | None = None) -> None:
        """``store``: by default one on ``CLOSER_DATABASE_URL`` (raises ChannelConfigError when the
        channel tables are missing); ``limiter``: per sender id, by default
        :func:`~connectors.config.rate_limiter` without credentials."""
        self.store = store or ChannelStore()
        self.limiter = limiter or rate_limiter(None, self.name())
        self.queues = SenderQueues()
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None
        self.paused = PausedReplies()
        self._pruner: asyncio.Task | None = None
        self._taker: asyncio.Task | None = None
        self._retries: set[asyncio.TimerHandle] = set()  # deliveries waiting behind an earlier one of their customer
        self._agent: Any = None

    async def deliveries(self, request: Request) -> list[Delivery] | None:
        """The customer messages of a webhook call, in order; None for a call acknowledged and
        ignored (answered ``{"status": "ignored"}``). Raises :class:`~connectors.webhook_http.Refused`
        for a request that is not the platform's (forged, too big, not its format): it is answered
        with that error, and nothing is stored. Runs before the call is answered: no network calls.
        May record what is not a customer message (e.g. WhatsApp's delivery statuses)."""
        raise NotImplementedError

    async def read(self, sender_id: str, payload: dict[str, Any]) -> Reading:
        """What the delivery ``payload`` of ``sender_id`` says; runs in the customer's queue, so it may
        call the platform or note the customer (``self.store.saw_customer``). An exception marks the
        delivery failed (logged, kept with the error) and the queue goes on."""
        raise NotImplementedError

    def get_output_channel(self) -> OutputChannel:
        """The channel's one output channel; Rasa uses it for bot-initiated messages too."""
        return self.output

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """``GET /`` (health) and ``POST`` on each of :attr:`webhook_paths`; :meth:`start` after the server starts,
        :meth:`stop` before it stops."""
        self._on_new_message = on_new_message
        blueprint = Blueprint(f"closer_{self.name()}", __name__)
        self.paused.bind(blueprint)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return json_response({"status": "ok"})

        async def webhook(request: Request, **_: Any) -> HTTPResponse:  # path parameters: in request.match_info
            return await self._receive(request)

        for number, path in enumerate(self.webhook_paths):
            blueprint.add_route(webhook, path, methods=["POST"], name=f"webhook_{number}" if number else "webhook")

        @blueprint.listener("after_server_start")
        async def started(app: Any, *_: Any) -> None:
            self._agent = getattr(app.ctx, "agent", None)  # Rasa's, for its tracker store (_already_processed)
            await self.start()

        @blueprint.listener("before_server_stop")
        async def stopping(*_: Any) -> None:
            await self.stop()

        return blueprint

    async def _receive(self, request: Request) -> HTTPResponse:
        """Store each new delivery and queue it (or its rate-limit skip); 503 when one cannot be stored,
        so that the platform delivers the call again."""
        try:
            deliveries = await self.deliveries(request)
        except Refused as refusal:
            WEBHOOK_DELIVERIES.labels(self.name(), "refused").inc()
            return error(refusal.status, refusal.reason)
        if deliveries is None:
            return json_response({"status": "ignored"})
        for delivery in deliveries:
            try:
                row_id = await self.store.accept(
                    self.name(), delivery.delivery_id, delivery.sender_id, delivery.payload
                )
            except Exception:
                log.exception(
                    "%s: delivery %s of %s could not be stored",
                    self.name(),
                    delivery.delivery_id,
                    ref(delivery.sender_id),
                )
                WEBHOOK_DELIVERIES.labels(self.name(), "not_stored").inc()
                return error(503, "try again later")
            if row_id is None:
                log.debug(
                    "%s: delivery %s of %s is a replay, dropped",
                    self.name(),
                    delivery.delivery_id,
                    ref(delivery.sender_id),
                )
                WEBHOOK_DELIVERIES.labels(self.name(), "duplicate").inc()
                continue
            decision = self.limiter.take(delivery.sender_id)
            WEBHOOK_DELIVERIES.labels(self.name(), "accepted" if decision.allowed else "over_limit").inc()
            if decision.allowed:
                self._submit(row_id, delivery.sender_id, delivery.payload)
            else:
                self._submit_over_limit(decision, row_id, delivery.sender_id)
        return json_response({"status": "ok"})

    def _submit(
        self, row_id: int, sender_id: str, payload: dict[str, Any], recovered: bool = False, attempt: int = 0
    ) -> None:
        self.queues.submit(sender_id, functools.partial(self._process, row_id, sender_id, payload, recovered, attempt))

    def _submit_over_limit(self, decision: Decision, row_id: int, sender_id: str, attempt: int = 0) -> None:
        self.queues.submit(sender_id, functools.partial(self._skip_over_limit, decision, row_id, sender_id, attempt))

    async def _process(
        self, row_id: int, sender_id: str, payload: dict[str, Any], recovered: bool = False, attempt: int = 0
    ) -> None:
        """One delivery, in the customer's queue: read, then a Rasa turn or a reply; marked done, with
        the error if it failed. A ``recovered`` one (taken over at a start or from a stopped replica) whose
        message the tracker already holds is only marked done: its turn ran, the replica stopped before marking it.
        ``attempt``: how many times it was found behind an earlier delivery of its customer (:meth:`_claimed`)."""
        again = functools.partial(self._submit, row_id, sender_id, payload, recovered, attempt + 1)
        if not await self._claimed(row_id, sender_id, attempt, again):
            return
        error_text = None
        try:
            reading = await self.read(sender_id, payload)
            message_id = reading.message_id or f"{self.name()}-delivery-{row_id}"  # the same on every replica
            if recovered and reading.text is not None and await self._already_processed(sender_id, message_id):
                log.info("%s: delivery %d of %s had its turn before a restart", self.name(), row_id, ref(sender_id))
            elif reading.text is not None:
                metadata = {"channel": self.name(), self.name(): reading.metadata}
                await run_turn(
                    self._on_new_message,
                    UserMessage(
                        reading.text,
                        self.output,
                        sender_id,
                        input_channel=self.name(),
                        message_id=message_id,
                        metadata=metadata,
                    ),
                    self.paused,
                )
            elif reading.reply is not None:
                log.info("%s: delivery %d of %s answered without Rasa", self.name(), row_id, ref(sender_id))
                await self.output.send_response(sender_id, {"text": reading.reply})
            else:
                log.info("%s: delivery %d of %s has nothing to answer, ignored", self.name(), row_id, ref(sender_id))
        except Exception as exc:
            log.exception("%s: delivery %d of %s failed", self.name(), row_id, ref(sender_id))
            error_text = repr(exc)
        await self.store.done(row_id, error_text)

    async def _skip_over_limit(self, decision: Decision, row_id: int, sender_id: str, attempt: int = 0) -> None:
        """A delivery refused by the sender's rate limit, in the sender's queue (after their earlier
        messages) instead of a Rasa turn: SLOW_DOWN_REPLY when this is the first refusal of the window
        (``decision.notify``), the delivery marked done with the error RATE_LIMITED. Logged with the
        sender's pseudonym and never the message: a warning for the first refusal of a window, debug for the rest."""
        again = functools.partial(self._submit_over_limit, decision, row_id, sender_id, attempt + 1)
        if not await self._claimed(row_id, sender_id, attempt, again):
            return
        log.log(
            logging.WARNING if decision.notify else logging.DEBUG,
            "%s is over the rate limit of %d messages per %g s: delivery %d not processed (next allowed in %.0f s)",
            ref(sender_id),
            self.limiter.messages,
            self.limiter.window_s,
            row_id,
            decision.retry_after_s,
        )
        if decision.notify:
            await self.output.send_response(sender_id, {"text": SLOW_DOWN_REPLY})
        await self.store.done(row_id, RATE_LIMITED)

    async def _claimed(self, row_id: int, sender_id: str, attempt: int, again: Callable[[], None]) -> bool:
        """Whether this replica may process delivery ``row_id`` now (:meth:`ChannelStore.claim`). Behind an earlier
        delivery of the customer, ``again`` (which queues it once more) is called after ``BEHIND_RETRY_S`` doubled
        ``attempt`` times, at most ``BEHIND_RETRY_MAX_S``; another replica's or processed, it is logged and left."""
        try:
            claim = await self.store.claim(row_id)
        except Exception:  # the database is away: the delivery stays unprocessed and is taken over later
            log.exception("%s: delivery %d of %s could not be claimed", self.name(), row_id, ref(sender_id))
            return False
        if claim is Claim.BEHIND:
            delay = min(BEHIND_RETRY_S * 2**attempt, BEHIND_RETRY_MAX_S)
            handle = asyncio.get_running_loop().call_later(delay, lambda: self._retry(handle, again))
            self._retries.add(handle)
        elif claim is Claim.TAKEN:
            log.info(
                "%s: delivery %d of %s is another replica's or processed, skipped", self.name(), row_id, ref(sender_id)
            )
        return claim is Claim.CLAIMED

    def _retry(self, handle: asyncio.TimerHandle, again: Callable[[], None]) -> None:
        self._retries.discard(handle)
        again()

    async def _take_over(self, own: bool) -> None:
        pending = await self.store.unprocessed(self.name(), own)
        if pending:
            log.warning("%s: %d deliveries received but never processed are processed now", self.name(), len(pending))
        for row_id, sender_id, payload in pending:
            self._submit(row_id, sender_id, payload, recovered=True)

    async def _already_processed(self, sender_id: str, message_id: str | None) -> bool:
        """Whether Rasa's tracker store holds a user message ``message_id`` of ``sender_id``."""
        tracker_store = getattr(self._agent, "tracker_store", None)
        if tracker_store is None or not message_id:
            return False
        tracker = await tracker_store.retrieve(sender_id)
        return tracker is not None and any(
            isinstance(event, UserUttered) and event.message_id == message_id for event in tracker.events
        )

    async def start(self) -> None:
        """After the server starts: deliveries acknowledged but never processed, by this replica before it stopped
        or by one that stopped, are queued again, and then every ``TAKEOVER_INTERVAL_S``; hourly pruning starts;
        the loaded heap is frozen (:func:`~connectors.turns.freeze_loaded_heap`)."""
        await self._take_over(own=True)
        loop = asyncio.get_running_loop()
        self._pruner = loop.create_task(self._prune_hourly())
        self._taker = loop.create_task(self._take_over_periodically())
        freeze_loaded_heap()

    async def _take_over_periodically(self) -> None:
        while True:
            await asyncio.sleep(TAKEOVER_INTERVAL_S)
            try:
                await self._take_over(own=False)
            except Exception:
                log.exception("%s: taking over unprocessed deliveries failed", self.name())

    async def _prune_hourly(self) -> None:
        while True:
            try:
                log.debug("%s: %d old deliveries forgotten", self.name(), await self.store.prune())
            except Exception:
                log.exception("%s: pruning old deliveries failed", self.name())
            await asyncio.sleep(PRUNE_INTERVAL_S)

    async def stop(self) -> None:
        """Before the server stops: pruning and taking over stop, the queues are drained (at most DRAIN_TIMEOUT_S
        seconds; what is left is processed at the next start, or by another replica)."""
        for task in (self._pruner, self._taker):
            if task is not None:
                task.cancel()
        for handle in self._retries:  # left unprocessed: taken over at the next start, or by another replica
            handle.cancel()
        self._retries.clear()
        try:
            await asyncio.wait_for(self.queues.drain(), DRAIN_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning(
                "%s: stopping with deliveries still in progress; they are processed at the next start", self.name()
            )
