"""Free call slots (bot.booking.slots): properties over random business hours, time zones (with DST and odd
offsets), busy time and clocks — a slot never overlaps busy time, always lies in working hours, never starts before
now plus the notice, and every free grid slot is found — then the default business's hours (company.yml: Asia/Dubai,
Mon-Sat 09:00-18:00) and the labels in the customer's time zone and language."""

import dataclasses
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.booking import slots
from bot.booking.slots import Slot, SlotRules
from bot.core.business import Company, get_company

ZONES = ["Asia/Dubai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
SUNDAY_10_DUBAI = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


def company_with(**changes) -> Company:
    return dataclasses.replace(get_company(), **changes)


@st.composite
def hours(draw) -> Company:
    opens = draw(st.integers(0, 22 * 4)) * 15  # minutes after midnight, on the quarter hour
    closes = draw(st.integers(opens // 15 + 1, 24 * 4 - 1)) * 15
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return company_with(
        timezone=draw(st.sampled_from(ZONES)),
        open_days=days,
        opens=time(opens // 60, opens % 60),
        closes=time(closes // 60, closes % 60) if closes < 24 * 60 else time(23, 59),
    )


rules_strategy = st.builds(
    SlotRules,
    call_s=st.sampled_from([900, 1800, 2700, 3600]),
    notice_s=st.integers(0, 2 * 86400),
    horizon_s=st.integers(3600, 10 * 86400),
    max_offered=st.integers(1, 12),
    step_s=st.one_of(st.none(), st.sampled_from([900, 1800, 3600])),
)
# hypothesis takes naive bounds and attaches the time zone itself
moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001


@st.composite
def busy_intervals(draw, around: datetime) -> list[tuple[datetime, datetime]]:
    starts = draw(st.lists(st.integers(0, 12 * 24 * 4), max_size=25))
    lengths = draw(st.lists(st.integers(1, 48), min_size=len(starts), max_size=len(starts)))
    return [
        (around + timedelta(minutes=15 * s), around + timedelta(minutes=15 * (s + n)))
        for s, n in zip(starts, lengths, strict=True)
    ]


@settings(max_examples=150, deadline=None)
@given(company=hours(), rules=rules_strategy, now=moments, data=st.data())
def test_a_free_slot_is_free_in_working_hours_after_the_notice_and_within_the_horizon(company, rules, now, data):
    busy = data.draw(busy_intervals(now - timedelta(days=1)))
    free = slots.free_slots(company, busy, now, rules)
    assert free == sorted(free)
    for slot in free:
        assert slot.end - slot.start == timedelta(seconds=rules.call_s)
        assert not any(slot.start < e and s < slot.end for s, e in busy)
        assert company.is_open(slot.start) and company.is_open(slot.end - timedelta(microseconds=1))
        assert slot.start >= now + timedelta(seconds=rules.notice_s)
        assert slot.end <= now + timedelta(seconds=rules.horizon_s)
        slots.check_slot(slot, company, now, rules)  # what is offered can be booked
    for earlier, later in itertools.pairwise(free):
        assert later.start - earlier.start >= timedelta(seconds=rules.grid_s)
    offered = slots.spread(free, rules.max_offered)
    assert len(offered) == min(len(free), rules.max_offered) and set(offered) <= set(free)
    if free:
        assert offered[0] == free[0]  # the earliest is always offered
        assert rules.max_offered == 1 or offered[-1] == free[-1]


@settings(max_examples=100, deadline=None)
@given(company=hours(), rules=rules_strategy, now=moments, data=st.data())
def test_every_free_grid_slot_is_found(company, rules, now, data):
    busy = data.draw(busy_intervals(now - timedelta(days=1)))
    free = set(slots.free_slots(company, busy, now, rules))
    for candidate in slots.candidate_slots(company, now, rules):
        overlaps = any(candidate.start < e and s < candidate.end for s, e in busy)
        assert (candidate in free) != overlaps


def test_the_default_business_offers_monday_9_after_a_sunday_and_skips_busy_time():
    company, rules = get_company(), SlotRules(call_s=1800, notice_s=7200, horizon_s=7 * 86400)
    dubai = ZoneInfo("Asia/Dubai")
    busy = [(datetime(2026, 3, 9, 9, 30, tzinfo=dubai), datetime(2026, 3, 9, 10, 15, tzinfo=dubai))]
    free = slots.free_slots(company, busy, SUNDAY_10_DUBAI, rules)  # Sunday is not a working day
    local = [slot.start.astimezone(dubai).strftime("%a %H:%M") for slot in free[:4]]
    assert local == ["Mon 09:00", "Mon 10:30", "Mon 11:00", "Mon 11:30"]  # 09:30 and 10:00 overlap the meeting
    assert free[-1].start.astimezone(dubai).strftime("%a %d %H:%M") == "Sat 14 17:30"  # the last before closing
    assert {slot.start.astimezone(dubai).weekday() for slot in free} == {0, 1, 2, 3, 4, 5}
    assert len(free) == 6 * 18 - 2


def test_the_notice_moves_the_first_slot_to_the_next_grid_point():
    company, rules = get_company(), SlotRules(call_s=1800, notice_s=7200)
    now = datetime(2026, 3, 9, 6, 10, tzinfo=UTC)  # Monday 10:10 in Dubai: 12:10 at the earliest
    first = slots.free_slots(company, [], now, rules)[0]
    assert first.start.astimezone(ZoneInfo("Asia/Dubai")).strftime("%H:%M") == "12:30"


def test_a_slot_off_the_grid_or_out_of_hours_cannot_be_booked():
    company, rules = get_company(), SlotRules(call_s=1800, notice_s=7200)
    monday_9 = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
    slots.check_slot(Slot(monday_9, monday_9 + timedelta(minutes=30)), company, SUNDAY_10_DUBAI, rules)
    cases = {
        "is not 1800 s long": Slot(monday_9, monday_9 + timedelta(hours=1)),
        "is not a call time within the business hours": Slot(
            monday_9 + timedelta(minutes=10), monday_9 + timedelta(minutes=40)
        ),
        "starts less than 7200 s from now": Slot(SUNDAY_10_DUBAI, SUNDAY_10_DUBAI + timedelta(minutes=30)),
        "ends more than 604800 s from now": Slot(
            monday_9 + timedelta(days=7), monday_9 + timedelta(days=7, minutes=30)
        ),
    }
    for reason, slot in cases.items():
        with pytest.raises(ValueError, match=rf"^slot: .* {reason}"):
            slots.check_slot(slot, company, SUNDAY_10_DUBAI, rules)
    evening = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # 18:00 in Dubai: closed
    with pytest.raises(ValueError, match=r"within the business hours \(Mon-Sat 09:00–18:00\)"):
        slots.check_slot(Slot(evening, evening + timedelta(minutes=30)), company, SUNDAY_10_DUBAI, rules)


def test_a_slot_key_reads_back_and_bad_keys_are_named():
    slot = Slot(datetime(2026, 3, 9, 5, 0, tzinfo=UTC), datetime(2026, 3, 9, 5, 30, tzinfo=UTC))
    assert slot.key == "2026-03-09T05:00:00+00:00"
    assert slots.parse_slot(slot.key, 1800) == slot
    assert slots.parse_slot("2026-03-09T09:00:00+04:00", 1800) == slot
    for bad in ("tomorrow", "2026-03-09T09:00:00"):
        with pytest.raises(ValueError, match=r"^slot: "):
            slots.parse_slot(bad, 1800)


def test_slots_on_a_day_are_those_of_that_day_in_the_customers_time_zone():
    free = slots.free_slots(get_company(), [], SUNDAY_10_DUBAI, SlotRules())
    dubai, auckland = ZoneInfo("Asia/Dubai"), ZoneInfo("Pacific/Auckland")  # 9 hours ahead of Dubai in March
    tuesday = slots.on_day(free, date(2026, 3, 10), auckland)
    in_dubai = [slot.start.astimezone(dubai).strftime("%a %H:%M") for slot in tuesday]
    assert in_dubai[:2] == ["Mon 15:00", "Mon 15:30"] and in_dubai[-1] == "Tue 14:30"
    assert all(slot.start.astimezone(auckland).date() == date(2026, 3, 10) for slot in tuesday)


def test_labels_are_in_the_customers_time_zone_and_language():
    slot = Slot(datetime(2026, 3, 9, 5, 0, tzinfo=UTC), datetime(2026, 3, 9, 5, 30, tzinfo=UTC))
    dubai, moscow = ZoneInfo("Asia/Dubai"), ZoneInfo("Europe/Moscow")
    assert slots.label(slot, dubai, "en") == "Mon, 9 Mar, 9:00\u2009–\u20099:30\u202fAM"  # company.yml: en → en_AE
    assert slots.label(slot, moscow, "ru") == "пн, 9 мар., 08:00–08:30"
    assert slots.label(slot, dubai, "ar") == "الاثنين، 9 مارس، 9:00–9:30 ص"
    assert slots.label(slot, dubai, "xx") == slots.label(slot, dubai, "en")  # not served: the default language
    assert slots.zone_label(moscow, "ru", slot.start) == "Москва, GMT+03:00"
    assert slots.zone_label(dubai, "en", slot.start) == "Dubai, GMT+04:00"


def test_a_customer_time_zone_must_be_an_iana_name():
    assert slots.zone(None, get_company()).key == "Asia/Dubai"
    with pytest.raises(ValueError, match=r"^customer_timezone: 'Mars/Olympus' is not an IANA time zone"):
        slots.zone("Mars/Olympus", get_company())


def test_rules_reject_nonsense():
    with pytest.raises(ValueError, match="call_s must be at least 1"):
        SlotRules(call_s=0)
    with pytest.raises(ValueError, match="notice_s must not be negative"):
        SlotRules(notice_s=-1)
