"""The post-check every LLM answer must pass before a customer sees it (truth rules).

An answer is rejected when it cites no passage, cites a passage id it was not given, states a
figure — a price, percentage, stock count or any other number — that appears nowhere in the
context it was given (passages, products from the DB, the customer's own message), states a price or
percentage that is not a price or percentage of the passages or products (the customer's own do not
count: "give me 40% off" must not get "40% off, approved"), or repeats its instructions (a
prompt-extraction attack).
"""

import re

CITATION = re.compile(r"\[(P\d+)\]")
_PLACEHOLDER = re.compile(r"\[(?:P\d+|EMAIL_\d+|PHONE_\d+)\]")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
# A number with a percent sign or word after it, or a currency code or sign before or after it.
_PRICE_LIKE = re.compile(
    r"(?:\b[A-Z]{3}|[$€£])\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(?:%|percent\b|per cent\b|[A-Z]{3}\b)"
)
_WORD = re.compile(r"\w+")
ECHO_WORDS = 8  # this many consecutive words of the instructions in an answer are an echo of them


def figures(text: str) -> set[str]:
    """Numbers in ``text``, normalised so that "1,290.00", "1290" and "1290.0" compare equal and
    "08" equals "8"; citation markers and PII placeholders are not figures."""
    found = set()
    for raw in _NUMBER.findall(_PLACEHOLDER.sub(" ", text)):
        number = raw.replace(",", "").rstrip(".")
        if "." in number:
            number = number.rstrip("0").rstrip(".")
        found.add(number.lstrip("0") or "0")
    return found


def price_figures(text: str) -> set[str]:
    """The figures of ``text`` (as :func:`figures` normalises them) that are prices or percentages:
    "AED 1,290.00", "1290 AED", "$5", "35%", "35 percent"."""
    return figures(" ".join(a or b for a, b in _PRICE_LIKE.findall(_PLACEHOLDER.sub(" ", text))))


def repeats(answer: str, instructions: str, words: int = ECHO_WORDS) -> bool:
    """Whether ``answer`` has ``words`` consecutive words of ``instructions`` (case and punctuation aside)."""
    said = " ".join(_WORD.findall(answer.lower()))
    told = _WORD.findall(instructions.lower())
    return any(f" {' '.join(told[i : i + words])} " in f" {said} " for i in range(len(told) - words + 1))


def problems(answer: str, passage_ids: set[str], context: str, question: str = "", instructions: str = "") -> list[str]:
    """Why ``answer`` may not be shown (empty when it may): missing or unknown citations, figures absent
    from both ``context`` (passages and products) and the customer's ``question``, prices and
    percentages that are not prices or percentages of ``context``, and :func:`repeats` of ``instructions``."""
    found = []
    cited = set(CITATION.findall(answer))
    if not cited:
        found.append("no citation")
    found.extend(f"cites unknown passage {c}" for c in sorted(cited - passage_ids))
    unknown = figures(answer) - figures(context) - figures(question)
    found.extend(f"figure {f} is not in the context" for f in sorted(unknown))
    found.extend(
        f"price or percentage {f} is not in the passages or products"
        for f in sorted(price_figures(answer) - price_figures(context) - unknown)
    )
    if instructions and repeats(answer, instructions):
        found.append("repeats its instructions")
    return found
