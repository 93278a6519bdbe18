"""A per-sender message rate limit: a token bucket per key, in memory. Standard library only, so
that the Rasa server's channels (``.venv-rasa``) and the console's web chat (``.venv``) share it.

Each key (a sender id, a client IP address) has a bucket of ``messages`` tokens that refills
evenly, ``messages`` per ``window_s`` seconds; a message takes a token. A customer can therefore
send a burst of ``messages`` at once, then one every ``window_s / messages`` seconds; after
``window_s`` seconds of silence the bucket is full again. Refused messages take nothing.

Per process: each Rasa server or console process counts on its own, so N replicas let N times as
much through (a Redis-backed limiter comes with the production topology). Memory is bounded: a
key idle for ``window_s`` seconds has a full bucket again and is forgotten (nothing is lost), and
at most ``max_keys`` keys are kept (beyond that the least recently seen is forgotten early, which
only ever lets a message through). Not thread-safe: call it from one event loop.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

DEFAULT_MESSAGES = 20
DEFAULT_WINDOW_S = 60.0
DEFAULT_MAX_KEYS = 100_000  # about 30 MB with the keys (measured with Telegram sender ids)
# The one polite answer per window a customer over the limit gets, on every channel.
SLOW_DOWN_REPLY = "You're writing faster than I can read. Please wait a moment, then send that again."


class Decision(NamedTuple):
    """``allowed``: the message may be processed. For a refused one: ``retry_after_s``, seconds until
    the next message would be allowed; ``notify``, whether this is the key's first refusal in
    ``window_s`` seconds (the one that gets :data:`SLOW_DOWN_REPLY`)."""

    allowed: bool
    retry_after_s: float = 0.0
    notify: bool = False

    @property
    def retry_after_header(self) -> str:
        """``retry_after_s`` as an HTTP ``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter:
    """At most ``messages`` messages per ``window_s`` seconds per key, bursts up to ``messages``
    (see the module docstring). ``clock`` gives seconds (monotonic); tests pass their own. Raises
    ValueError for a ``messages`` or ``window_s`` that is not positive."""

    def __init__(
        self,
        messages: int = DEFAULT_MESSAGES,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if messages <= 0 or window_s <= 0:
            raise ValueError(
                f"a rate limit needs a positive number of messages and window, not {messages} per {window_s} s"
            )
        self.messages, self.window_s, self.clock, self.max_keys = messages, window_s, clock, max_keys
        self._rate = messages / window_s  # tokens per second
        # key → [tokens, last seen, last notified]; least recently seen first
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def keys_kept(self) -> int:
        """How many keys are remembered now."""
        return len(self._buckets)

    def take(self, key: str) -> Decision:
        """Count one message of ``key`` now: allowed (a token taken) or refused."""
        now = self.clock()
        bucket = self._buckets.pop(key, None) or [float(self.messages), now, -math.inf]
        self._buckets[key] = bucket
        tokens = min(float(self.messages), bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        self._forget_idle(now)
        if tokens >= 1:
            bucket[0] = tokens - 1
            return Decision(True)
        bucket[0] = tokens
        notify = now - bucket[2] >= self.window_s
        if notify:
            bucket[2] = now
        return Decision(False, (1 - tokens) / self._rate, notify)

    def _forget_idle(self, now: float) -> None:
        """Drop the least recently seen keys while they are idle for a window (or too many)."""
        while self._buckets:
            key, (_, seen, _) = next(iter(self._buckets.items()))
            if now - seen < self.window_s and len(self._buckets) <= self.max_keys:
                return
            del self._buckets[key]
