"""nlu.language.LanguageDetector: the `language` entity that fills the `language` slot, on real Rasa messages."""

from pathlib import Path

from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.contracts.languages import DETECTED_BY
from nlu.language import LanguageDetector, business_languages

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"


def language_entities(detector: LanguageDetector, text: str, entities: list[dict] | None = None) -> list[dict]:
    [message] = detector.process([Message(data={TEXT: text, ENTITIES: entities or []})])
    return [e for e in message.get(ENTITIES, []) if e["entity"] == "language"]


def test_the_default_business_serves_english_arabic_and_russian():
    assert business_languages(KNOWLEDGE) == ("en", "ar", "ru")


def test_a_message_clearly_in_a_served_language_gets_its_code():
    detector = LanguageDetector(("en", "ar", "ru"))
    [arabic] = language_entities(detector, "مرحبا، أريد كراسي مكتب مريحة")
    assert (arabic["value"], arabic["start"], arabic["end"]) == ("ar", 0, 0)  # no words: overlaps no entity
    assert arabic["extractor"] == DETECTED_BY  # what the console leaves out of corrections and test stories
    assert [e["value"] for e in language_entities(detector, "сколько стоит доставка в Дубай?")] == ["ru"]
    assert [e["value"] for e in language_entities(detector, "do you deliver to Sharjah")] == ["en"]


def test_a_message_that_says_nothing_about_its_language_gets_no_entity():
    detector = LanguageDetector(("en", "ar", "ru"))
    for text in ("ok", "OC-1006", "12", "sara@gulftrading.ae", "shu el si3r", ""):
        assert language_entities(detector, text) == []


def test_a_language_the_customer_asked_for_wins_over_the_one_they_wrote_in():
    detector = LanguageDetector(("en", "ar", "ru"))
    asked = {"entity": "language", "value": "en", "start": 0, "end": 9, "extractor": "DIETClassifier"}
    assert language_entities(detector, "بالانجليزي لو سمحت", [asked]) == [asked]


def test_a_language_the_business_does_not_serve_is_never_set():
    assert language_entities(LanguageDetector(("en",)), "Здравствуйте, нужны офисные кресла") == []
