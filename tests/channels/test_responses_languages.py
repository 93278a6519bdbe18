"""domain.yml's responses in every language of knowledge/company.yml: each has, per language other than the
default, as many conditional variations on the ``language`` slot as it has unconditioned (default-language) ones,
with the same placeholders and button payloads; and Rasa's own TemplatedNaturalLanguageGenerator picks the
variations of the customer's language (the unconditioned ones when the slot is unset or the default language),
filling placeholders from slots and keyword arguments as the Rasa server does."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
COMPANY = yaml.safe_load((ROOT / "knowledge" / "company.yml").read_text(encoding="utf-8"))
DEFAULT = COMPANY["default_language"]
OTHERS = [language for language in COMPANY["languages"] if language != DEFAULT]
# The letters of each non-default language's script; the default language (English) uses none of them.
SCRIPTS = {"ar": re.compile(r"[\u0621-\u064a]"), "ru": re.compile(r"[а-яё]", re.IGNORECASE)}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def in_language(text: str, language: str) -> bool:
    """Whether most letters of ``text`` are in ``language``'s script (a brand, SKU or e-mail address stays
    Latin), or, for the default language, none is in another language's script."""
    letters = [c for c in text if c.isalpha()]
    if language == DEFAULT:
        return not any(script.search(text) for script in SCRIPTS.values())
    return 2 * len(SCRIPTS[language].findall(text)) > len(letters) and not any(
        script.search(text) for other, script in SCRIPTS.items() if other != language
    )


def wordless(text: str) -> bool:
    """Whether ``text`` is only placeholders ("{reason}"): its language is that of the values filled in."""
    return not any(c.isalpha() for c in PLACEHOLDER.sub("", text))


def variations(name: str, language: str) -> list[dict[str, Any]]:
    """``name``'s variations for customers of ``language``: for the default language the unconditioned ones."""
    if language == DEFAULT:
        return [v for v in DOMAIN.responses[name] if "condition" not in v]
    only = [{"type": "slot", "name": "language", "value": language}]
    return [v for v in DOMAIN.responses[name] if v.get("condition") == only]


@pytest.mark.parametrize("name", sorted(DOMAIN.responses))
def test_every_response_speaks_every_language_with_the_same_placeholders_and_payloads(name):
    defaults = variations(name, DEFAULT)
    assert defaults
    assert len(DOMAIN.responses[name]) == len(defaults) * (1 + len(OTHERS))  # no other conditions
    for language in OTHERS:
        translated = variations(name, language)
        assert len(translated) == len(defaults), language
        for english, variation in zip(defaults, translated, strict=True):
            assert sorted(PLACEHOLDER.findall(variation["text"])) == sorted(PLACEHOLDER.findall(english["text"]))
            if wordless(english["text"]):
                assert variation["text"] == english["text"]
            else:
                assert in_language(variation["text"], language), variation["text"]
            buttons = variation.get("buttons", [])
            assert [b["payload"] for b in buttons] == [b["payload"] for b in english.get("buttons", [])]
            assert all(in_language(b["title"], language) for b in buttons), buttons
        assert all(in_language(v["text"], DEFAULT) for v in defaults if not wordless(v["text"]))


@pytest.mark.parametrize("slot", [None, *COMPANY["languages"]])
@pytest.mark.parametrize("name", sorted(DOMAIN.responses))
async def test_rasa_answers_in_the_language_of_the_slot(name, slot):
    language = slot or DEFAULT
    names = sorted({p for v in DOMAIN.responses[name] for p in PLACEHOLDER.findall(v["text"])})
    values = {p: f"§{i}" for i, p in enumerate(names)}  # no letters: the text's language is the response's own
    slots = {p: value for p, value in values.items() if p in DOMAIN.slots}
    events = [SlotSet("language", slot), *(SlotSet(p, value) for p, value in slots.items())]
    tracker = DialogueStateTracker.from_events("web-1", events, DOMAIN.slots)
    kwargs = {p: value for p, value in values.items() if p not in slots}

    generated = await TemplatedNaturalLanguageGenerator(DOMAIN.responses).generate(name, tracker, "rest", **kwargs)

    assert generated is not None
    assert generated.get("condition", []) == (
        [] if language == DEFAULT else [{"type": "slot", "name": "language", "value": language}]
    )
    text = generated["text"]
    candidates = variations(name, language)
    filled = [PLACEHOLDER.sub(lambda m: values[m.group(1)], v["text"]) for v in candidates]
    assert text in filled
    if not wordless(candidates[filled.index(text)]["text"]):
        assert in_language(text, language), text
    titles = [b["title"] for b in generated.get("buttons", [])]
    assert all(in_language(title, language) for title in titles), titles
    english = variations(name, DEFAULT)[filled.index(text)]
    payloads = [b["payload"].replace("{{", "{").replace("}}", "}") for b in english.get("buttons", [])]
    assert [b["payload"] for b in generated.get("buttons", [])] == payloads
