"""A channel's settings from its ``credentials.yml`` block (Rasa has already substituted ``${ENV_VARS}``;
an unset variable stops Rasa there). Every problem raises :class:`ChannelConfigError`, which stops
start-up with the key's name."""

import os
from collections.abc import Callable
from typing import Any

from connectors.ratelimit import DEFAULT_MESSAGES, DEFAULT_WINDOW_S, RateLimiter


class ChannelConfigError(ValueError):
    """A channel's entry in credentials.yml lacks a value it needs; the message names the key."""


def required(credentials: dict[str, Any] | None, key: str, channel: str) -> str:
    """The non-empty string ``credentials[key]``; raises ChannelConfigError naming the key."""
    value = (credentials or {}).get(key)
    if value is None or not str(value).strip():
        raise ChannelConfigError(
            f"credentials.yml: the {channel} channel needs '{key}' (set it, or the environment variable it names); "
            f"remove the {channel} block to run without this channel"
        )
    return str(value).strip()


def positive(
    credentials: dict[str, Any] | None, key: str, channel: str, kind: Callable[[Any], Any], default: Any
) -> Any:
    """``credentials[key]`` as a positive ``kind`` (int or float), ``default`` when it is missing or
    empty; raises ChannelConfigError naming the key for anything else."""
    value = (credentials or {}).get(key)
    if value is None or not str(value).strip():
        return default
    return _positive(value, kind, f"credentials.yml: the {channel} channel's '{key}'")


def _positive(value: Any, kind: Callable[[Any], Any], source: str) -> Any:
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        parsed = 0
    if parsed <= 0:
        raise ChannelConfigError(f"{source} must be a positive number, not {value!r}")
    return parsed


def rate_limiter(credentials: dict[str, Any] | None, channel: str) -> RateLimiter:
    """The channel's per-sender limit: ``rate_limit_messages`` messages per ``rate_limit_window_s``
    seconds, each read from the channel's credentials.yml block, else from the environment
    variable ``CLOSER_RATE_LIMIT_MESSAGES`` or ``CLOSER_RATE_LIMIT_WINDOW_S`` (the console reads
    the same two for the web chat), else 20 messages per 60 s. Raises ChannelConfigError naming the
    key or variable when a value is not a positive number."""

    def number(key: str, kind: Callable[[Any], Any], default: Any) -> Any:
        value = (credentials or {}).get(key)
        if value is not None and str(value).strip():
            return positive(credentials, key, channel, kind, default)
        variable = f"CLOSER_{key.upper()}"
        value = os.environ.get(variable)
        if value is None or not value.strip():
            return default
        return _positive(value, kind, f"the environment variable {variable}")

    return RateLimiter(
        number("rate_limit_messages", int, DEFAULT_MESSAGES), number("rate_limit_window_s", float, DEFAULT_WINDOW_S)
    )
