"""Retry schedule of a route: exponential backoff with jitter, bounded by attempts and elapsed time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gateway.config import RetryPolicy


def delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (attempt - 1))
    spread = base * policy.jitter
    return max(0.0, base + (rng or random).uniform(-spread, spread))


def next_attempt(
    policy: RetryPolicy, attempt: int, first_attempt_at: datetime, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to try again after failed attempt ``attempt``, or None when the policy says give up."""
    if attempt >= policy.max_attempts:
        return None
    when = now + timedelta(seconds=delay(policy, attempt, rng))
    if policy.max_elapsed is not None and when - first_attempt_at > timedelta(seconds=policy.max_elapsed):
        return None
    return when
