"""Which of the business's languages a customer's message is clearly written in: the rule that fills the
``language`` slot (``nlu.language.LanguageDetector`` in the Rasa server) and that the benchmarks and the
held-out NLU report use to split messages by language.

A message switches the conversation's language only when it is clear, so "ok", "OC-1006", "12", an e-mail
address or a name never do:

- its letters (SKUs, e-mail addresses, links and digits left out) are mostly (≥ 80 %) of one script;
- Arabic, Cyrillic or any other non-Latin script: one word of two letters or more is enough;
- Latin script: at least ``MIN_LATIN_WORDS`` words, and none written in the chat alphabet of Arabizi
  (transliterated Arabic with digits for Arabic letters: "3ndkom", "si3r", "7abibi"), which the detection
  libraries take for English or an unrelated language;
- then the business's one language of that script (CLDR's likely script of each, through Babel) is it, and where
  several share the script lingua (``lingua-language-detector``, its models ship in the wheel) decides among them.

Measured on short chat messages (``make bench-language``, tests/data/language_detection/): see the README.
"""

import re
import unicodedata
from collections.abc import Sequence
from functools import cache

# The extractor name on the `language` entity nlu.language.LanguageDetector adds (an empty span: it is about the whole
# message, not words, so the console leaves it out of corrections and test stories)
DETECTED_BY = "LanguageDetector"
MIN_LATIN_WORDS = 2
MIN_SCRIPT_SHARE = 0.8

# Tokens that say nothing about the language: SKUs and codes with digits or hyphens ("OC-1006", "A4"),
# e-mail addresses, links, numbers.
_NEUTRAL = re.compile(r"\S+@\S+|https?://\S+|www\.\S+|\b[A-Za-z]{1,4}-?\d[\w-]*|\d+")
# A Latin word with a chat-alphabet digit between or after letters: "3ndkom", "si3r", "7abibi", "ba7ar"
_ARABIZI = re.compile(r"\b(?:[a-z]*[a-z][235679][a-z]+|[235679][a-z]{2,})\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")


def script_of(char: str) -> str:
    """The script of a letter as Unicode names it: ``"ARABIC"``, ``"CYRILLIC"``, ``"LATIN"``, …"""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def dominant_script(text: str) -> str | None:
    """The script of at least ``MIN_SCRIPT_SHARE`` of ``text``'s letters (SKUs, e-mail addresses, links and
    numbers left out), None when there are fewer than two letters or no script dominates."""
    letters = [c for c in _NEUTRAL.sub(" ", text or "") if c.isalpha()]
    if len(letters) < 2:
        return None
    counts: dict[str, int] = {}
    for char in letters:
        script = script_of(char)
        counts[script] = counts.get(script, 0) + 1
    script, count = max(counts.items(), key=lambda item: item[1])
    return script if count >= MIN_SCRIPT_SHARE * len(letters) else None


@cache
def _detector(languages: tuple[str, ...]):
    """lingua's detector among ``languages`` (two or more ISO 639-1 codes); their models load on first use."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in languages]
    return LanguageDetectorBuilder.from_languages(*codes).build()


# ISO 15924 script codes (CLDR's likely subtags name a language's script with them) → Unicode's script names
_UNICODE_SCRIPT = {
    "Latn": "LATIN",
    "Arab": "ARABIC",
    "Cyrl": "CYRILLIC",
    "Grek": "GREEK",
    "Hebr": "HEBREW",
    "Deva": "DEVANAGARI",
    "Thai": "THAI",
    "Hans": "CJK",
    "Hant": "CJK",
    "Jpan": "CJK",
    "Kore": "HANGUL",
}


@cache
def language_script(language: str) -> str:
    """The Unicode script name ``language`` (ISO 639-1) is usually written in, from CLDR's likely subtags
    (Babel): ``"ru"`` → ``"CYRILLIC"``, ``"ar"`` → ``"ARABIC"``, ``"en"`` → ``"LATIN"``. Raises KeyError for a
    language CLDR does not know."""
    from babel.core import get_global

    script = get_global("likely_subtags")[language].split("_")[1]
    return _UNICODE_SCRIPT.get(script, script.upper())


def detect(text: str, languages: Sequence[str]) -> str | None:
    """The language of ``languages`` (ISO 639-1 codes, the business's) that ``text`` is clearly written in,
    or None when the text does not say (too short, codes and numbers only, mixed scripts, Arabizi, or a
    script none of ``languages`` is written in). Loads lingua's models of ``languages`` on first use."""
    script = dominant_script(text)
    if script is None:
        return None
    candidates = tuple(code for code in languages if language_script(code) == script)
    if not candidates:
        return None
    words = _WORD.findall(_NEUTRAL.sub(" ", text))
    if script == "LATIN" and (len(words) < MIN_LATIN_WORDS or _ARABIZI.search(text)):
        return None
    if len(candidates) == 1:
        return candidates[0]
    found = _detector(candidates).detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found else None
