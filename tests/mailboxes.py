"""The local mail server's mailboxes (deploy/mail.sh), read as a mail program reads them."""

from __future__ import annotations

import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path

SPOOL = Path("/var/mail")


def mails(person: str) -> list[EmailMessage]:
    """Every mail in the person's mailbox, oldest first, headers unfolded."""
    path = SPOOL / person
    if not path.exists():
        return []
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        return [
            email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            for key in box.iterkeys()
        ]
    finally:
        box.close()


def subject(message: EmailMessage) -> str:
    """The subject as one line (a long one arrives folded, with its fold's leading space)."""
    return " ".join(str(message["Subject"]).split())


def mail_about(person: str, subject_start: str, after: int = 0) -> EmailMessage | None:
    """The first mail after the first ``after`` whose subject starts with ``subject_start``."""
    for message in mails(person)[after:]:
        if subject(message).startswith(subject_start):
            return message
    return None
