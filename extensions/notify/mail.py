"""Sending a notification by mail, through the site's mail server (SMTP, no authentication:
a local MTA or the centre's relay, which the portal's host may use)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from .messages import Message

TIMEOUT_S = 10.0


def mail(message: Message, to: str, sender: str, host: str = "127.0.0.1", port: int = 25) -> None:
    """Hand ``message`` to the mail server; raises OSError or smtplib.SMTPException when it
    will not take it (the caller keeps it and tries again)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = to
    email["Subject"] = message.subject
    email["X-Corehour-Event"] = message.event
    email.set_content(message.body)
    with smtplib.SMTP(host, port, timeout=TIMEOUT_S) as server:
        server.send_message(email)
