"""Product search and lead capture against the real default catalog in SQLite."""

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from bot.commerce import leads
from bot.commerce.search import (
    ProductQuery,
    cheaper_alternatives,
    find_by_name,
    get_product,
    query_from,
    search_products,
)
from bot.core import db
from bot.core.business import get_vocabulary
from bot.core.models import Contact, Deal, Product


async def load_vocabulary(url):
    async with db.session_scope(url) as session:
        return await get_vocabulary(session)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I need 12 ergonomic chairs for our office", dict(categories=("office_chair",), features=("ergonomic",))),
        (
            "black leather executive chairs",
            dict(categories=("office_chair",), colours=("black",), materials=("leather",), features=("executive",)),
        ),
        ("a Standing Desk in WHITE", dict(categories=("desk",), colours=("white",), features=("height-adjustable",))),
        ("gray sofas", dict(categories=("lounge",), colours=("grey",))),
        ("conference tables please", dict(categories=("meeting_table",))),
        ("hello there", dict()),
        (
            "something comfortable for long hours at the desk",
            dict(features=("ergonomic",)),
        ),  # "at the desk": where, not what
        ("a mat to put under the chair", dict()),  # no chairs: semantic ranking finds the chair mats
    ],
)
async def test_vocabulary_pulls_filters_out_of_free_text(loaded_db, text, expected):
    vocabulary = await load_vocabulary(loaded_db)
    assert vocabulary.extract(text) == ProductQuery(**expected)


async def test_an_amount_nlu_tagged_as_quantity_is_the_budget(loaded_db):
    vocabulary = await load_vocabulary(loaded_db)
    text = "I need 12 ergonomic chairs for our office, around 1500 AED each"
    query = query_from(vocabulary, text, {"quantity": ["12", "1500"]}, "AED", known_quantity="1500")
    assert (query.quantity, query.max_price_minor) == (12, 150000)
    query = query_from(vocabulary, "desks under 2k", {"quantity": ["2k"]}, "AED", known_quantity="2k")
    assert (query.quantity, query.max_price_minor) == (None, 200000)
    assert vocabulary.free_words("something comfortable for long hours at the desk") == ["long", "hours", "desk"]


async def test_budget_search_returns_chairs_within_budget_dearest_first(loaded_db):
    vocabulary = await load_vocabulary(loaded_db)
    query = replace(vocabulary.extract("ergonomic chairs"), max_price_minor=150000)
    async with db.session_scope(loaded_db) as session:
        result = await search_products(session, query)
        every = (
            await session.scalars(
                select(Product).where(Product.category == "office_chair", Product.price_minor <= 150000)
            )
        ).all()
    prices = [p.price_minor for p in result.products]
    assert result.dropped is None and len(prices) == 5
    assert prices == sorted(prices, reverse=True)
    assert all(p.category == "office_chair" and "ergonomic" in p.attributes["features"] for p in result.products)
    assert prices[0] == max(p.price_minor for p in every if "ergonomic" in p.attributes["features"])


async def test_search_relaxes_attributes_then_budget(loaded_db):
    async with db.session_scope(loaded_db) as session:
        impossible = await search_products(session, ProductQuery(categories=("lounge",), colours=("silver",)))
        too_cheap = await search_products(session, ProductQuery(categories=("meeting_table",), max_price_minor=100))
    assert impossible.dropped == "colour, material and features"
    assert all(p.category == "lounge" for p in impossible.products)
    assert too_cheap.dropped == "budget" and too_cheap.products


async def test_cheaper_alternatives_are_cheaper_and_same_category(loaded_db):
    async with db.session_scope(loaded_db) as session:
        cheaper = await cheaper_alternatives(session, ["OC-1006", "OC-1009"])
        cheapest_sku = await session.scalar(
            select(Product.sku).where(Product.category == "accessory").order_by(Product.price_minor).limit(1)
        )
        below_cheapest = await cheaper_alternatives(session, [cheapest_sku])
    assert cheaper and all(p.category == "office_chair" and p.price_minor < 129000 for p in cheaper)
    # the shown chairs are ergonomic with lumbar support: alternatives with both come first, dearest first
    assert all({"ergonomic", "lumbar support"} <= set(p.attributes["features"]) for p in cheaper[:3])
    assert [p.price_minor for p in cheaper[:3]] == sorted((p.price_minor for p in cheaper[:3]), reverse=True)
    assert below_cheapest == []


async def test_sql_looking_text_is_just_text(loaded_db):
    async with db.session_scope(loaded_db) as session:
        assert await find_by_name(session, "'; DROP TABLE products; --") == []
        assert await find_by_name(session, "100%_ chair") == []
        assert await get_product(session, "oc-1006' OR '1'='1") is None
        assert (await get_product(session, "oc-1006")).sku == "OC-1006"
        assert await session.scalar(select(func.count()).select_from(Product)) == 152


@pytest.mark.parametrize(
    "text, expected",
    [
        ("+971 50 123 4567", "+971501234567"),
        ("050-123-4567", "+971501234567"),
        ("call me on 04 555 0142", "+97145550142"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("my number is secret", None),
    ],
)
def test_phone_numbers_become_e164(text, expected):
    assert leads.clean_phone(text, "AE") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ahmed.K@GulfCo.AE", "Ahmed.K@gulfco.ae"),
        ("it's sara@example.com thanks", "sara@example.com"),
        ("sara@", None),
        ("no email", None),
        ("a@b", None),
    ],
)
def test_emails_are_validated(text, expected):
    assert leads.clean_email(text) == expected


def test_other_lead_fields():
    assert leads.clean_name("my name is ahmed al mansoori") == "Ahmed Al Mansoori"
    assert leads.clean_name("Олег Петров") == "Олег Петров"
    assert leads.clean_name("is OC-1006 in stock?") is None
    assert leads.clean_company("private") == "" and leads.clean_company("Gulf Co LLC") == "Gulf Co LLC"


def lead(**changes) -> leads.Lead:
    base = dict(
        name="Sara Khan",
        company="Gulf Co",
        email="sara@gulfco.ae",
        phone="+971501234567",
        quantity=12,
        budget_minor=1800000,
        currency="AED",
        timeline="next month",
        channel="web",
        sender_id="web-abc12345",
    )
    return leads.Lead(**{**base, **changes})


async def test_contacts_are_deduplicated_by_phone_email_or_sender_in_conversations_that_are_theirs(loaded_db):
    async with db.session_scope(loaded_db) as session:
        first, deal, created = await leads.save_lead(session, lead())
    assert created and deal.stage == "qualified" and deal.tags == ["web-lead"] and deal.budget_minor == 1800000
    async with db.session_scope(loaded_db) as session:
        # the conversation it was saved from updates it, matched by phone, by e-mail or by the sender alone
        same_phone, _, created_phone = await leads.save_lead(session, lead(email="sara.k@other.ae"))
        same_email, _, created_email = await leads.save_lead(
            session, lead(email="sara.k@other.ae", phone="+971509999999")
        )
        same_sender, _, created_sender = await leads.save_lead(session, lead(phone="+971508888888", email="x@y.ae"))
        # WhatsApp vouches for its sender's phone number
        whatsapp, _, created_whatsapp = await leads.save_lead(
            session,
            lead(
                email="sara@whatsapp.ae", phone="+971508888888", channel="whatsapp", sender_id="whatsapp-971508888888"
            ),
        )
        # another web conversation typing the same phone or e-mail gets a contact of its own
        claimed_phone, claimed_deal, created_claimed = await leads.save_lead(
            session, lead(name="Mallory", email="m@evil.ae", phone="+971508888888", sender_id="web-other123")
        )
        claimed_email, _, _ = await leads.save_lead(
            session, lead(phone="+971507777777", email="sara@whatsapp.ae", sender_id="web-third123")
        )
        contacts = await session.scalar(select(func.count()).select_from(Contact))
        deals = await session.scalar(select(func.count()).select_from(Deal))
    assert not (created_phone or created_email or created_sender or created_whatsapp) and created_claimed
    assert same_phone.id == same_email.id == same_sender.id == whatsapp.id == first.id
    assert len({first.id, claimed_phone.id, claimed_email.id}) == 3
    assert (contacts, deals) == (3, 3)
    assert (whatsapp.name, whatsapp.phone, whatsapp.email) == ("Sara Khan", "+971508888888", "sara@whatsapp.ae")
    assert "merge them if it is the same person" in claimed_deal.notes[0].body


async def test_a_customer_known_from_the_web_writing_on_whatsapp_keeps_one_deal_tagged_with_both(loaded_db):
    async with db.session_scope(loaded_db) as session:
        await leads.save_lead(session, lead())
    async with db.session_scope(loaded_db) as session:
        _, deal, created = await leads.save_lead(session, lead(channel="whatsapp", sender_id="whatsapp-971501234567"))
    assert not created and deal.tags == ["web-lead", "whatsapp-lead"]
    async with db.session_scope(loaded_db) as session:
        assert (await session.get(Deal, deal.id)).tags == ["web-lead", "whatsapp-lead"]
