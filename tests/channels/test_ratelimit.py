"""connectors/ratelimit.py: the token bucket, on a clock the tests move."""

import pytest

from connectors.ratelimit import Decision, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_the_full_count_then_one_per_share_of_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(4, 60, clock)
    assert [limiter.take("a").allowed for _ in range(5)] == [True] * 4 + [False]
    clock.now += 14.9
    assert not limiter.take("a").allowed
    clock.now += 0.2  # just over 15 s: a quarter of the window, one message
    assert limiter.take("a").allowed and not limiter.take("a").allowed
    clock.now += 60
    assert [limiter.take("a").allowed for _ in range(5)] == [True] * 4 + [False]


def test_a_refusal_says_when_to_retry_and_asks_for_one_notice_per_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 10, clock)
    limiter.take("a"), limiter.take("a")
    first = limiter.take("a")
    assert first == Decision(False, 5.0, True) and first.retry_after_header == "5"
    clock.now += 4.5
    second = limiter.take("a")
    assert (second.allowed, second.notify, second.retry_after_header) == (False, False, "1")
    clock.now += 1  # a token back: allowed, then refused again, still within the window of the notice
    assert limiter.take("a").allowed
    assert limiter.take("a") == Decision(False, pytest.approx(4.5), False)
    clock.now += 10
    limiter.take("a"), limiter.take("a")
    assert limiter.take("a").notify  # a new window, a new notice


def test_keys_are_independent() -> None:
    limiter = RateLimiter(1, 60, Clock())
    assert limiter.take("telegram-1").allowed and not limiter.take("telegram-1").allowed
    assert limiter.take("telegram-2").allowed and limiter.take("web-1").allowed


def test_memory_is_bounded_idle_keys_forgotten_and_at_most_max_keys_kept() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60, clock, max_keys=100)
    for n in range(50):
        limiter.take(f"old-{n}")
    clock.now += 60  # idle for a window: their buckets are full again, nothing to remember
    limiter.take("new")
    assert limiter.keys_kept == 1
    for n in range(500):
        limiter.take(f"flood-{n}")
    assert limiter.keys_kept == 100


@pytest.mark.parametrize("messages, window_s", [(0, 60), (5, 0), (-1, 60)])
def test_a_limit_must_be_positive(messages: int, window_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(messages, window_s)
