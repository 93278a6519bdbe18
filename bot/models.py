"""Business data model (SQLAlchemy 2). Money is integer minor units plus an ISO 4217 code."""

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Product(Base):
    """A catalog item. ``attributes`` holds colour, material, width_cm/depth_cm/height_cm, features
    (list of str) and any source-specific fields (e.g. ``categories`` when a source lists the same
    SKU under several categories)."""

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


class StockLevel(Base):
    """Units on hand of one SKU in one warehouse."""

    __tablename__ = "stock"

    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)

    product: Mapped[Product] = relationship(back_populates="stock")


class Contact(Base):
    """A customer known to the CRM. Phone is E.164; deduplicated by phone, email or channel sender."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    sender_id: Mapped[str] = mapped_column(String(255))
    segment: Mapped[str] = mapped_column(String(32), default="new")
    consent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    deals: Mapped[list["Deal"]] = relationship(back_populates="contact", lazy="selectin")


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="deals")


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


class Feedback(Base):
    """A customer's 👍 (``rating`` 1) or 👎 (-1) on one knowledge answer, with an optional comment;
    rating the same answer again replaces the earlier rating."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("knowledge_answers.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    answer: Mapped[KnowledgeAnswer] = relationship(back_populates="feedback")
