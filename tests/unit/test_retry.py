"""Retry schedule: exponential, capped, jittered within bounds, and giving up when the policy says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from gateway.config import RetryPolicy
from gateway.outbound import retry

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def test_exponential_and_capped_without_jitter() -> None:
    policy = RetryPolicy(initial_delay=2, multiplier=3, max_delay=30, jitter=0)
    assert [retry.delay(policy, n) for n in range(1, 6)] == [2, 6, 18, 30, 30]


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(initial_delay=10, multiplier=1, jitter=0.2)
    rng = random.Random(1)
    delays = [retry.delay(policy, 1, rng) for _ in range(200)]
    assert min(delays) >= 8 and max(delays) <= 12 and len(set(delays)) > 100


def test_gives_up_after_max_attempts_or_max_elapsed() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=1, jitter=0)
    assert retry.next_attempt(policy, 2, T0, T0) == T0 + timedelta(seconds=2)
    assert retry.next_attempt(policy, 3, T0, T0) is None
    elapsed = RetryPolicy(max_attempts=99, initial_delay=60, jitter=0, max_elapsed=90)
    assert retry.next_attempt(elapsed, 1, T0, T0) is not None
    assert retry.next_attempt(elapsed, 2, T0, T0 + timedelta(seconds=60)) is None
