"""An email backend whose mail server is down for the first N sends (tests of the outbox).

    settings.EMAIL_BACKEND = "tests.support.flaky_mail.FlakyEmailBackend"
    flaky_mail.fail_next(2)   # the next two sends raise, then mail goes through

Delivered messages land in django.core.mail.outbox like the locmem backend's.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend

_state = {"failures_left": 0, "tries": 0}


def fail_next(n: int) -> None:
    _state.update(failures_left=n, tries=0)


def tries() -> int:
    return _state["tries"]


class FlakyEmailBackend(EmailBackend):
    def send_messages(self, messages: Sequence[EmailMessage]) -> int:  # type: ignore[override]
        _state["tries"] += 1
        if _state["failures_left"] > 0:
            _state["failures_left"] -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)
