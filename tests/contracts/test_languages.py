"""Which language a customer's message is clearly in (bot.contracts.languages), on 200+ short chat messages
labelled by hand (tests/data/language_detection/), and the rules that keep a conversation's language."""

import re

import pytest

from bench.language_detection import SERVED, load_messages
from bot.contracts.languages import detect, dominant_script, language_script

MESSAGES = load_messages()


def test_the_labelled_set_has_200_short_messages_of_every_kind():
    labels = [label for _, label in MESSAGES]
    assert len(MESSAGES) >= 200
    assert {"en", "ar", "ru", "arabizi", "translit"} <= set(labels)


@pytest.mark.parametrize("language", SERVED)
def test_a_message_is_never_answered_in_another_served_language_and_mostly_recognised(language):
    found = {text: detect(text, SERVED) for text, label in MESSAGES if label == language}
    assert not {text: got for text, got in found.items() if got not in (language, None)}
    # "ok", "hi", a SKU or a number keeps the conversation's language on purpose: English has the most of them
    assert sum(1 for got in found.values() if got == language) / len(found) >= (0.9 if language != "en" else 0.7)


def test_arabic_in_latin_letters_with_chat_digits_never_switches_to_english():
    chat_digit = re.compile(r"[a-z][235679]|[235679][a-z]", re.IGNORECASE)
    with_digits = [text for text, label in MESSAGES if label == "arabizi" and chat_digit.search(text)]
    assert with_digits and all(detect(text, SERVED) is None for text in with_digits)


@pytest.mark.parametrize(
    "text",
    ["ok", "OC-1006", "12", "sara@gulftrading.ae", "https://desertoak.example/quotes/x.pdf", "👍", "", "?"],
)
def test_what_says_nothing_about_a_language_keeps_the_conversations(text):
    assert detect(text, SERVED) is None


def test_mixed_text_goes_by_the_script_of_most_of_its_letters():
    assert detect("ابي OC-1006 عدد 5 لو سمحت", SERVED) == "ar"
    assert detect("нужно 5 шт OC-1006, черные", SERVED) == "ru"
    assert dominant_script("hello مرحبا") is None  # half and half: not clear


def test_a_language_the_business_does_not_serve_is_never_detected():
    assert detect("Здравствуйте, нужны офисные кресла", ("en", "ar")) is None
    assert language_script("ru") == "CYRILLIC" and language_script("ar") == "ARABIC"


def test_languages_sharing_a_script_are_told_apart_by_lingua():
    assert detect("Ich brauche zwölf Bürostühle für unser Büro", ("en", "de")) == "de"
    assert detect("I need twelve office chairs for our office", ("en", "de")) == "en"
