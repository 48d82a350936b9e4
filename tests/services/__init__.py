"""Real peers for the channel tests: OpenSSH sshd (sshd.py) and RabbitMQ (rabbitmq.py), as pytest fixtures.

A missing service fails the tests that need it (never a skip): ``./dev test`` installs and starts them.
"""

from __future__ import annotations

import pytest


def missing(service: str, hint: str) -> None:
    pytest.fail(f"{service} is not available: {hint}. Run the suite with ./dev test, which installs it.", pytrace=False)
