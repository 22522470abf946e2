"""The demo mailbox: a local SMTP server (aiosmtpd) that saves every message as a .eml file.

In demo mode the server settings point at it, so that a newcomer sees the e-mails arrive in
Serveur › Boîte de test without any real mail server.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

# Names this module gives its files; anything else in a URL is refused (no path traversal).
MESSAGE_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{16}\.eml$")


class MailboxHandler:
    """aiosmtpd handler: write each message to ``folder`` (temporary name, then rename)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    async def handle_DATA(self, server, session, envelope):
        save_message(self.folder, envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def save_message(folder: Path, content: bytes) -> str:
    """Store one received message and return its file name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(8)}.eml"
    temporary = folder / f".{name}.tmp"
    with open(temporary, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, folder / name)
    log.info("demo mailbox received %s (%d bytes)", name, len(content))
    return name


@dataclass(frozen=True)
class StoredMessage:
    """What the list of the demo mailbox shows of one message."""

    name: str
    subject: str
    sender: str
    recipients: str
    date: datetime | None
    size: int


def list_messages(folder: Path, limit: int = 200) -> list[StoredMessage]:
    """Return the newest messages first (headers only)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if MESSAGE_NAME.match(p.name)), reverse=True)
    messages = []
    for name in names[:limit]:
        path = folder / name
        with open(path, "rb") as source:
            headers = BytesParser(policy=policy.default).parse(source, headersonly=True)
        try:
            date = parsedate_to_datetime(str(headers["Date"])) if headers["Date"] else None
        except (TypeError, ValueError):
            date = None
        messages.append(
            StoredMessage(
                name=name,
                subject=str(headers["Subject"] or ""),
                sender=str(headers["From"] or ""),
                recipients=", ".join(
                    str(headers[field]) for field in ("To", "Cc") if headers[field]
                ),
                date=date,
                size=path.stat().st_size,
            )
        )
    return messages


def read_message(folder: Path, name: str) -> bytes | None:
    """Return the raw bytes of one stored message, or None for a name this mailbox never made."""
    if not MESSAGE_NAME.match(name or ""):
        return None
    path = Path(folder) / name
    if not path.is_file():
        return None
    return path.read_bytes()


def serve(host: str, port: int, folder: Path, ready: threading.Event | None = None) -> None:
    """Run the mailbox until SIGINT or SIGTERM."""
    controller = Controller(MailboxHandler(folder), hostname=host, port=port)
    controller.start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_args: stop.set())
    log.info("demo mailbox listening on %s:%s, saving to %s", host, port, folder)
    if ready is not None:
        ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()
