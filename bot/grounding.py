"""The post-check every LLM answer must pass before a customer sees it (truth rules).

An answer is rejected when it cites no passage, cites a passage id it was not given, or states a
figure — a price, percentage, stock count or any other number — that appears nowhere in the
context it was given (passages, products from the DB, the customer's own message).
"""

import re

CITATION = re.compile(r"\[(P\d+)\]")
_PLACEHOLDER = re.compile(r"\[(?:P\d+|EMAIL_\d+|PHONE_\d+)\]")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


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


def problems(answer: str, passage_ids: set[str], context: str) -> list[str]:
    """Why ``answer`` may not be shown (empty when it may): missing or unknown citations, and
    figures absent from ``context``."""
    found = []
    cited = set(CITATION.findall(answer))
    if not cited:
        found.append("no citation")
    found.extend(f"cites unknown passage {c}" for c in sorted(cited - passage_ids))
    found.extend(f"figure {f} is not in the context" for f in sorted(figures(answer) - figures(context)))
    return found
