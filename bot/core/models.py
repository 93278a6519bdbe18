"""Business data model (SQLAlchemy 2). Money is integer minor units plus an ISO 4217 code."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.contracts import channel_tables
from bot.core.language import ACTIVE
from bot.privacy.encryption import Encrypted, EncryptedJSON, get_keyring


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Every business table's class; their tables are on the contracts' MetaData, next to the channel
    tables the Rasa server's channels share (bot.contracts.channel_tables)."""

    metadata = channel_tables.metadata


class Product(Base):
    """A catalog item. ``attributes`` holds colour, material, width_cm/depth_cm/height_cm, features
    (list of str), ``names`` (language → the name in that language, from the catalog's ``name_<language>``
    columns; see :attr:`display_name`) and any source-specific fields (e.g. ``categories`` when a source
    lists the same SKU under several categories)."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(64), index=True)
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    stock: Mapped[list["StockLevel"]] = relationship(back_populates="product", lazy="selectin")

    def stock_by_warehouse(self) -> dict[str, int]:
        return {level.warehouse: level.quantity for level in sorted(self.stock, key=lambda s: s.warehouse)}

    @property
    def display_name(self) -> str:
        """The name a customer reads: in the turn's language (:data:`bot.core.language.ACTIVE`) when the catalog
        translates it (``attributes["names"]``), else ``name``."""
        return (self.attributes.get("names") or {}).get(ACTIVE.get() or "", self.name)


class StockLevel(Base):
    """Units on hand of one SKU in one warehouse."""

    __tablename__ = "stock"

    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)

    product: Mapped[Product] = relationship(back_populates="stock")


class Contact(Base):
    """A customer known to the CRM. Phone is E.164; deduplicated by phone, email or channel sender.
    Name, company, email and phone are encrypted (bot.privacy.encryption); ``email_index``/``phone_index`` (their
    blind indexes) and ``search_tokens`` (the console's search) are kept by :func:`index_contact` on
    every insert and update."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(Encrypted("contacts.name"))
    company: Mapped[str | None] = mapped_column(Encrypted("contacts.company"))
    email: Mapped[str | None] = mapped_column(Encrypted("contacts.email"))
    phone: Mapped[str | None] = mapped_column(Encrypted("contacts.phone"))
    email_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    search_tokens: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    sender_id: Mapped[str] = mapped_column(String(255))
    segment: Mapped[str] = mapped_column(String(32), default="new")
    consent: Mapped[bool] = mapped_column(default=False)
    external_ids: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # CRM name → its record id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    deals: Mapped[list["Deal"]] = relationship(back_populates="contact", lazy="selectin")


@event.listens_for(Contact, "before_insert")
@event.listens_for(Contact, "before_update")
def index_contact(_mapper: Any, _connection: Any, contact: Contact) -> None:
    """Set the contact's blind indexes and search tokens from its plain values (an ORM flush hook; also
    called by ``python -m bot rotate-key --index``)."""
    keyring = get_keyring()
    contact.email_index = keyring.email_index(contact.email)
    contact.phone_index = keyring.phone_index(contact.phone)
    contact.search_tokens = keyring.search_tokens(contact.name, contact.company, contact.email, contact.phone)


class Deal(Base):
    """An opportunity in the pipeline (stage: new, qualified, proposal, negotiation, won, lost).
    ``quantity``, ``budget_minor`` and ``timeline`` are what the lead form collected."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32), default="new")
    amount_minor: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    source_channel: Mapped[str] = mapped_column(String(32))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    quantity: Mapped[int | None] = mapped_column(Integer)
    budget_minor: Mapped[int | None] = mapped_column(Integer)
    timeline: Mapped[str | None] = mapped_column(String(255))
    external_ids: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # CRM name → its record id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="deals", lazy="joined")
    notes: Mapped[list["DealNote"]] = relationship(
        lazy="selectin", order_by="DealNote.id", cascade="all, delete-orphan"
    )


class KnowledgeAnswer(Base):
    """One answer to a knowledge question, as the customer saw it. ``mode`` is ``extractive``,
    ``llm`` or ``clarify`` (Closer asked back); ``sources`` the chunk ids it rests on;
    ``similarity`` the best passage's cosine. For LLM calls: model, latency in seconds, tokens,
    cost in USD (litellm's price list), and ``fallback_reason`` when the LLM answer was not used."""

    __tablename__ = "knowledge_answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    similarity: Mapped[float] = mapped_column(Float)
    llm_model: Mapped[str | None] = mapped_column(String(255))
    latency_s: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    feedback: Mapped["Feedback | None"] = relationship(back_populates="answer", lazy="selectin")


class LlmCall(Base):
    """One LLM call made outside a knowledge answer, recorded for the LLM budget (:mod:`bot.answering.budget`):
    ``purpose`` says which (``understanding``: :mod:`bot.understanding.llm_parse`); ``conversation_id`` is Rasa's
    sender id; latency in seconds, tokens as the provider counted them, cost in USD (litellm's price list, None
    for a model it has no price for). No message text is kept."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    llm_model: Mapped[str] = mapped_column(String(255))
    latency_s: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Feedback(Base):
    """A customer's 👍 (``rating`` 1) or 👎 (-1) on one knowledge answer, with an optional comment;
    rating the same answer again replaces the earlier rating."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("knowledge_answers.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Encrypted("feedback.comment"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    answer: Mapped[KnowledgeAnswer] = relationship(back_populates="feedback")


class Cart(Base):
    """A customer's cart, one per conversation (Rasa sender id), kept across turns and sessions."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), unique=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    lines: Mapped[list["CartLine"]] = relationship(
        back_populates="cart", lazy="selectin", cascade="all, delete-orphan", order_by="CartLine.id"
    )


class CartLine(Base):
    """``quantity`` units of one SKU in a cart; the price is read from the catalog when priced."""

    __tablename__ = "cart_lines"
    __table_args__ = (UniqueConstraint("cart_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int] = mapped_column(Integer)

    cart: Mapped[Cart] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship(lazy="selectin")


class Quote(Base):
    """A priced offer numbered ``Q-<year>-<NNNN>``. ``status``: draft → sent → accepted or expired.
    Amounts are minor units of ``currency``; ``vat_rate`` and percentages are decimal strings
    ("0.05"). ``token`` is the unguessable part of the PDF link. ``language`` (ISO 639-1) is the customer's
    language when the quote was issued (``bot.commerce.quotes.issue``: the turn's): the PDF is in it, whenever it
    is rendered."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    segment: Mapped[str] = mapped_column(String(32), default="new")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer)
    net_minor: Mapped[int] = mapped_column(Integer)
    vat_rate: Mapped[str] = mapped_column(String(16))
    vat_minor: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Integer)
    extra_discount_pct: Mapped[str] = mapped_column(String(16), default="0")
    language: Mapped[str] = mapped_column(String(16))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list["QuoteLine"]] = relationship(
        back_populates="quote", lazy="selectin", cascade="all, delete-orphan", order_by="QuoteLine.position"
    )
    contact: Mapped[Contact | None] = relationship(lazy="selectin")


class QuoteLine(Base):
    """One line item as quoted: a snapshot of name and price, so later catalog changes leave it intact."""

    __tablename__ = "quote_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(Integer)
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    discount_pct: Mapped[str] = mapped_column(String(16))
    discount_minor: Mapped[int] = mapped_column(Integer)
    net_minor: Mapped[int] = mapped_column(Integer)

    quote: Mapped[Quote] = relationship(back_populates="lines")


class SalesDocument(Base):
    """A document issued from a quote once the customer paid (:mod:`bot.commerce.invoicing`): ``kind`` ``invoice``
    (numbered ``<invoice_prefix>-<year>-<NNNN>``) or ``contract`` (``<contract_prefix>-…``), company.yml's prefixes.
    Its PDF is rendered from the quote's stored snapshot whenever asked for, behind the unguessable ``token``
    (``/documents/<token>.pdf``). ``payment_id`` is the payment that made it due (bot.payments), if any;
    ``paid_minor`` (minor units of the quote's currency) and ``paid_at`` what had been paid when it was issued; ``body``
    a contract's text as rendered from the business's template when it was issued (empty for an invoice)."""

    __tablename__ = "sales_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"), index=True)
    paid_minor: Mapped[int] = mapped_column(Integer, default=0)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text, default="")
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    quote: Mapped[Quote] = relationship(lazy="joined")


class DealNote(Base):
    """A note on a deal, e.g. the conversation summary written when a quote is sent or a manager is called."""

    __tablename__ = "deal_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Encrypted("deal_notes.body"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Escalation(Base):
    """A conversation handed to a manager. ``reason``: requested, complaint, order_amount,
    discount, fallbacks, manager (a manager took it over unasked). ``status``: pending → in_progress
    (``assignee``, a console user's email, took it at ``taken_at``) → resolved (handed back to the bot at
    ``resolved_at`` by ``resolved_by``, None from the CLI, with ``resolution_note``). ``notify_error``
    records a failed manager notification (the escalation stands regardless)."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Encrypted("escalations.summary"))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quotes.id", ondelete="SET NULL"))
    notified_message_id: Mapped[str | None] = mapped_column(String(64))
    notify_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    assignee: Mapped[str | None] = mapped_column(String(320))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    resolution_note: Mapped[str | None] = mapped_column(Encrypted("escalations.resolution_note"))
    # When the watchdog (bot.handoff.watchdog) re-notified the managers and told the customer what happens next.
    watchdog_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CRMOutbox(Base):
    """A write to an external CRM waiting to be done: ``operation`` (e.g. ``upsert_contact``) with its
    JSON ``payload``, retried with back-off until ``done_at`` is set; nothing is dropped."""

    __tablename__ = "crm_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("crm_outbox.payload"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthToken(Base):
    """An OAuth 2.0 grant Closer holds for an external service (``provider``, e.g. ``amocrm``): the access token,
    valid until ``expires_at``, and the refresh token that gets the next pair (amoCRM's is single-use: each refresh
    stores the new one). Both tokens encrypted at rest."""

    __tablename__ = "oauth_tokens"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Encrypted("oauth_tokens.access_token"))
    refresh_token: Mapped[str] = mapped_column(Encrypted("oauth_tokens.refresh_token"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ChannelDelivery(Base):
    """One inbound webhook delivery of a messaging channel (``bot.contracts.channel_tables.deliveries``,
    written by ``connectors/`` inside the Rasa server)."""

    __table__ = channel_tables.deliveries

    id: Mapped[int]
    channel: Mapped[str]
    delivery_id: Mapped[str]
    sender_id: Mapped[str]
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None]


class ChannelCustomer(Base):
    """A customer as a messaging channel knows them (``bot.contracts.channel_tables.customers``)."""

    __table__ = channel_tables.customers

    channel: Mapped[str]
    user_id: Mapped[str]
    name: Mapped[str | None]
    last_inbound_at: Mapped[datetime]


class ChannelMessage(Base):
    """A message sent on a channel and what became of it (``bot.contracts.channel_tables.messages``)."""

    __table__ = channel_tables.messages

    id: Mapped[int]
    channel: Mapped[str]
    message_id: Mapped[str]
    recipient_id: Mapped[str]
    kind: Mapped[str | None]
    template: Mapped[str | None]
    status: Mapped[str]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    error: Mapped[str | None]
    body: Mapped[dict[str, Any] | None]


class TelegramCallback(Base):
    """A button payload too long for the platform (``bot.contracts.channel_tables.telegram_callbacks``)."""

    __table__ = channel_tables.telegram_callbacks

    key: Mapped[str]
    payload: Mapped[str]
    created_at: Mapped[datetime]


class Conversation(Base):
    """One Rasa conversation as indexed from the tracker store (``bot.review.conversations.refresh``) for the
    manager console. ``channel``: web, telegram, whatsapp, …; ``turns``: customer messages;
    ``furthest_stage``/``stage_rank``: the furthest ``sales_stage`` slot value (rank 0 none, 1 greeting …
    7 closing, 8 handoff); ``escalated``: handed to a manager at some point; ``paused``: a manager has it
    now; ``min_confidence``: lowest intent confidence of a customer message; ``fallback_count``: customer
    messages classified ``nlu_fallback``; ``language``: the customer's language (ISO 639-1), the latest
    ``language`` slot value when the business serves it, else its default language (as the bot reads the slot);
    ``last_event_id``: the last tracker event id indexed."""

    __tablename__ = "conversations"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_message_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    turns: Mapped[int] = mapped_column(Integer, default=0)
    furthest_stage: Mapped[str | None] = mapped_column(String(32))
    stage_rank: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[bool] = mapped_column(default=False)
    quote_created: Mapped[bool] = mapped_column(default=False)
    paused: Mapped[bool] = mapped_column(default=False)
    min_confidence: Mapped[float | None] = mapped_column(Float)
    fallback_count: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str] = mapped_column(String(16), index=True)
    active_loop: Mapped[str | None] = mapped_column(String(64))
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)


class ConversationMessage(Base):
    """A message of an indexed conversation; ``id`` is the tracker event id. ``speaker``: customer,
    bot or manager; ``intent``/``confidence``: the NLU prediction of a customer message."""

    __tablename__ = "conversation_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)


class ConversationReview(Base):
    """A manager's review of a conversation: flagged for attention, reviewed (when, by whom), a note."""

    __tablename__ = "conversation_reviews"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    flagged: Mapped[bool] = mapped_column(default=False)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Encrypted("conversation_reviews.note"))


class ConversationTag(Base):
    """A tag (1–64 lower-case letters, digits, ``-``, ``_``) a manager put on a conversation."""

    __tablename__ = "conversation_tags"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class IndexWatermark(Base):
    """How far an incremental index has read its source: the last tracker event id (``name``
    ``conversations`` for the conversation index)."""

    __tablename__ = "index_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    """A manager console user. ``email`` is stored lower-case; ``password_hash`` is an argon2 hash
    (argon2-cffi's encoded form); ``role``: ``manager`` or ``admin`` (an admin may also manage users).
    A ``disabled`` user cannot sign in and their open sessions end on their next request."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NluAnnotation(Base):
    """A manager's correction of one customer message (the NLU inbox, ``bot.review.annotations``).
    ``event_id`` is the user event's id in Rasa's tracker store (= ``conversation_messages.id``);
    ``text`` the message with surrounding whitespace removed; ``predicted_*`` what Rasa's NLU said;
    ``corrected_entities`` a list of ``{"start", "end", "entity", "value"}`` (character offsets into
    ``text``, end exclusive). ``status``: ``pending`` → ``exported`` (written to
    ``data/nlu/annotations.yml``, or ``data/nlu/<language>/annotations.yml`` for a message in another of the
    business's languages) or ``discarded``; at most one pending correction per message."""

    __tablename__ = "nlu_annotations"
    __table_args__ = (
        Index(
            "uq_nlu_annotations_pending_event",
            "event_id",
            unique=True,
            sqlite_where=sql_text("status = 'pending'"),
            postgresql_where=sql_text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    event_id: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    predicted_intent: Mapped[str | None] = mapped_column(String(255))
    predicted_confidence: Mapped[float | None] = mapped_column(Float)
    corrected_intent: Mapped[str] = mapped_column(String(255))
    corrected_entities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A console sign-in (:mod:`bot.web.console.auth`). The browser's cookie carries a random session id;
    only its SHA-256 hex digest is stored (``id_hash``), so the table alone cannot sign anyone in. The
    session counts while ``revoked_at`` is None and ``expires_at`` is ahead (``created_at`` plus
    CLOSER_CONSOLE_SESSION_MAX_AGE); ``last_seen_at`` is refreshed at most once a minute; ``ip`` and
    ``user_agent`` (cut at 255 characters) are the client's at sign-in."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class AuditEntry(Base):
    """One manager action in the audit log (:mod:`bot.core.audit`, which lists the actions). ``actor_id`` and
    ``actor_email`` are the console user's (None for the command line; no foreign key, so entries outlive
    their user); ``target_kind``/``target_id`` what was acted on (e.g. ``escalation``/``"12"``); ``detail``
    a small JSON object without customer PII."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_email: Mapped[str | None] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PendingErasure(Base):
    """A customer's "forget me" (:mod:`bot.privacy.erasure`) whose business-DB side is done and whose tracker events
    wait until ``not_before`` (after Rasa's turn has ended) to be rewritten and moved to ``anonymous_id``
    (``erased-<hex>``). ``conversation_id`` (Rasa's sender id, which may hold a phone number) lives only
    until then: the row is deleted when the request is completed."""

    __tablename__ = "pending_erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), unique=True)
    anonymous_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRun(Base):
    """One run of a scheduled job (:mod:`bot.scheduling`): ``job_id`` as registered (e.g. ``follow_ups``),
    ``runner`` the process that ran it (``host:pid``), ``outcome`` ``running``, ``ok``, ``failed`` or
    ``interrupted`` (its process died; marked by the next process to lead), ``detail`` the job's
    one-line summary or the error; ``duration_s`` seconds."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    runner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    detail: Mapped[str | None] = mapped_column(Text)


class SchedulerLease(Base):
    """Which process runs the scheduled jobs (:mod:`bot.scheduling.lease`): ``holder`` (``host:pid:random``)
    holds ``name`` until ``expires_at`` and renews it well before; another process takes it only after it
    expired, so of several console replicas exactly one runs jobs."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FollowUp(Base):
    """A message Closer writes first (:mod:`bot.follow_ups`): step ``step`` (1, 2, …) of ``cadence``
    (``knowledge/follow_ups.yml``) about ``subject`` (``quote:Q-2026-0001``, ``cart:<cart id>:<updated>``,
    ``lead_form:<started>``), due at ``due_at``. ``status``: ``scheduled`` → ``sent``, ``skipped`` (not sent, e.g.
    the cadence's maximum reached, WhatsApp's window closed without a template) or ``cancelled`` (the reason is
    gone: quote accepted or expired, cart emptied or quoted, opt-out); ``detail`` why, or the last send error
    (``attempts`` counts failed sends)."""

    __tablename__ = "follow_ups"
    __table_args__ = (UniqueConstraint("conversation_id", "cadence", "subject", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    cadence: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    step: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


Index("ix_follow_ups_due", FollowUp.status, FollowUp.due_at)


class FollowUpOptOut(Base):
    """A customer's "stop writing to me": no follow-up goes to ``conversation_id`` again, nor to any other
    conversation of ``contact_id`` when the conversation has a contact."""

    __tablename__ = "follow_up_opt_outs"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationScore(Base):
    """The quality scorecard of a finished conversation (:mod:`bot.review.scoring`): ``criteria`` maps each of
    the 15 criteria's names to ``{"score": 0|1|2, "by": "rules"|"llm", "rationale": str}``, ``total`` their sum
    (0–30); ``last_event_id`` the last tracker event scored (a conversation that goes on is scored again);
    ``llm_model`` the judge's model when an LLM scored any criterion."""

    __tablename__ = "conversation_scores"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    total: Mapped[int] = mapped_column(Integer, index=True)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_event_id: Mapped[int] = mapped_column(Integer)
    llm_model: Mapped[str | None] = mapped_column(String(255))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Payment(Base):
    """A payment asked of the customer for a quote (:mod:`bot.payments.service`): the prepayment share of the quote's
    total, through ``provider`` (``yookassa``). ``amount_minor`` is in minor units of ``currency`` (ISO 4217).
    ``status`` follows the provider's payment: ``pending`` (the link is out) → ``succeeded`` (paid at ``paid_at``) or
    ``canceled`` (expired or refused; ``error`` says why, also when the provider refused to make it);
    ``waiting_for_capture`` only for a payment not captured at once. ``idempotence_key`` is made and stored before
    the provider is first asked, so a retry, even after a crash, asks for the same payment; ``provider_payment_id``
    and ``confirmation_url`` (the payment page) are the provider's answer. ``fulfilled_at``: when what follows a
    payment (the documents sent to the customer) was done. At most one payment per quote is pending or succeeded."""

    __tablename__ = "payments"
    __table_args__ = (
        Index(
            "uq_payments_live_quote",
            "quote_id",
            unique=True,
            sqlite_where=sql_text("status IN ('pending', 'waiting_for_capture', 'succeeded')"),
            postgresql_where=sql_text("status IN ('pending', 'waiting_for_capture', 'succeeded')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    confirmation_url: Mapped[str | None] = mapped_column(Text)
    idempotence_key: Mapped[str] = mapped_column(String(64), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    quote: Mapped[Quote] = relationship(lazy="selectin")


class Booking(Base):
    """A call a customer booked with a sales manager (:mod:`bot.booking.bookings`): ``starts_at``–``ends_at`` (aware
    UTC) in the manager's calendar ``provider`` (``google``, ``caldav``) as its event ``event_id``, with the
    iCalendar ``uid`` the customer's e-mailed invitation shares. ``status``: ``booked`` → ``moved`` (rescheduled, any
    number of times) → ``cancelled``; ``sequence`` is the invitation's SEQUENCE, one higher per move and at
    cancellation. The customer's e-mail and name (encrypted, bot.privacy.encryption) are where the invitation and its
    updates go; ``customer_timezone`` (IANA) and ``language`` how its text gives the time. ``invite_error`` is why the
    last invitation e-mail was not sent (None: it was). Of the bookings not cancelled, one per calendar and start time
    (a unique index: two customers never get the same slot)."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str | None] = mapped_column(String(1024))
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer_timezone: Mapped[str] = mapped_column(String(64))
    customer_email: Mapped[str] = mapped_column(Encrypted("bookings.customer_email"))
    customer_name: Mapped[str | None] = mapped_column(Encrypted("bookings.customer_name"))
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="booked", index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    invite_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


# One live booking per calendar and start time (the migration 0020 creates the same partial index).
Index(
    "uq_bookings_live_slot",
    Booking.provider,
    Booking.starts_at,
    unique=True,
    sqlite_where=sql_text("status != 'cancelled'"),
    postgresql_where=sql_text("status != 'cancelled'"),
)
