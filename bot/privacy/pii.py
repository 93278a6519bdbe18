"""Masking of e-mail addresses and phone numbers before text leaves for an LLM provider.

Phone numbers are found by ``phonenumbers.PhoneNumberMatcher`` (the default region from settings
for numbers written without a country code); e-mail addresses by a permissive pattern, kept only
when ``email-validator`` accepts their syntax.
"""

import re
from dataclasses import dataclass, field

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass
class Masker:
    """Replaces PII with ``[EMAIL_1]``, ``[PHONE_1]``, … and restores it. One masker per LLM call,
    so that the same value gets the same placeholder across the prompt."""

    region: str = "AE"
    _values: dict[str, str] = field(default_factory=dict)  # placeholder → original

    def _placeholder(self, kind: str, value: str) -> str:
        for placeholder, original in self._values.items():
            if original == value:
                return placeholder
        placeholder = f"[{kind}_{sum(1 for p in self._values if p.startswith(f'[{kind}_')) + 1}]"
        self._values[placeholder] = value
        return placeholder

    def mask(self, text: str) -> str:
        """``text`` with every e-mail address and phone number replaced by a placeholder."""

        def email(match: re.Match) -> str:
            try:
                validate_email(match.group(0), check_deliverability=False)
            except EmailNotValidError:
                return match.group(0)
            return self._placeholder("EMAIL", match.group(0))

        text = _EMAIL.sub(email, text)
        spans = [(m.start, m.end, m.raw_string) for m in phonenumbers.PhoneNumberMatcher(text, self.region)]
        for start, end, raw in reversed(spans):
            text = text[:start] + self._placeholder("PHONE", raw) + text[end:]
        return text

    def restore(self, text: str) -> str:
        """``text`` with the placeholders this masker made put back."""
        for placeholder, original in self._values.items():
            text = text.replace(placeholder, original)
        return text
