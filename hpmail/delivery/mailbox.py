"""The demo mailbox: a local SMTP server (aiosmtpd) that saves every message as a .eml file.

In demo mode the server settings point at it, so that a newcomer sees the e-mails arrive in
Serveur › Boîte de test without any real mail server.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from hpmail.directory.demo import STUDENT_DOMAIN

log = logging.getLogger(__name__)

# Names this module gives its files; anything else in a URL is refused (no path traversal).
MESSAGE_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{16}\.eml$")


ENVELOPE_SUFFIX = ".envelope.json"


@dataclass(frozen=True)
class Envelope:
    """Who the SMTP dialogue says the message is from and for (Bcc included), not its headers."""

    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()


# Like a real school's mail, the demo knows no mailbox for about one student address in fifty
# (closed accounts): a mailing to a cohort shows how a server's "user unknown" is fed back to the
# directory (« Refusée par le serveur »). Chosen by the address alone, the same at every start.
CLOSED_MAILBOX_EVERY = 50


def mailbox_closed(address: str) -> bool:
    """Tell whether the demo mailbox answers that ``address``'s mailbox does not exist."""
    address = address.lower()
    return (
        address.endswith("@" + STUDENT_DOMAIN)
        and zlib.crc32(address.encode()) % CLOSED_MAILBOX_EVERY == 0
    )


class MailboxHandler:
    """aiosmtpd handler: write each message to ``folder`` (temporary name, then rename)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if mailbox_closed(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        save_message(
            self.folder,
            envelope.original_content or envelope.content,
            Envelope(envelope.mail_from or "", tuple(envelope.rcpt_tos)),
        )
        return "250 Message accepted for delivery"


def _write(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def save_message(folder: Path, content: bytes, envelope: Envelope | None = None) -> str:
    """Store one received message (and its envelope, beside it) and return its file name.

    The envelope goes in a file of its own, written first: a header added to the message could
    be confused with one the sender wrote.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(8)}.eml"
    if envelope is not None:
        sidecar = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
        _write(folder / (name + ENVELOPE_SUFFIX), json.dumps(sidecar).encode())
    _write(folder / name, content)
    log.info("demo mailbox received %s (%d bytes)", name, len(content))
    return name


def read_envelope(folder: Path, name: str) -> Envelope | None:
    """Return the envelope kept beside a message, or None (a message saved without one)."""
    if not MESSAGE_NAME.match(name or ""):
        return None
    try:
        kept = json.loads((Path(folder) / (name + ENVELOPE_SUFFIX)).read_text())
        return Envelope(str(kept["mail_from"]), tuple(str(to) for to in kept["rcpt_tos"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class StoredMessage:
    """What the list of the demo mailbox shows of one message."""

    name: str
    subject: str
    sender: str
    recipients: str
    date: datetime | None
    size: int
    delivered_to: tuple[str, ...] = ()


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
        date = _date(headers)
        envelope = read_envelope(folder, name)
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
                delivered_to=envelope.rcpt_tos if envelope else (),
            )
        )
    return messages


def _date(headers) -> datetime | None:
    try:
        return parsedate_to_datetime(str(headers["Date"])) if headers["Date"] else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class AttachedFile:
    """An attachment as the message carries it."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class OpenedMessage:
    """One message as a reader sees it: decoded headers and bodies, who it was delivered to."""

    name: str
    subject: str
    sender: str
    to: str
    cc: str
    reply_to: str
    date: datetime | None
    envelope: Envelope | None
    text: str | None
    has_html: bool
    attachments: list[AttachedFile] = field(default_factory=list)
    raw: str = ""

    @property
    def hidden_recipients(self) -> list[str]:
        """The envelope recipients that no To or Cc header names: the Bcc."""
        if self.envelope is None:
            return []
        shown = {address.lower() for _name, address in getaddresses([self.to, self.cc])}
        return [to for to in self.envelope.rcpt_tos if to.lower() not in shown]


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _content(part) -> str | None:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")
    return content if isinstance(content, str) else None


def open_message(folder: Path, name: str) -> OpenedMessage | None:
    """Return one stored message decoded (headers, bodies, attachments), or None."""
    raw = read_message(folder, name)
    if raw is None:
        return None
    message = _parse(raw)
    text_part = message.get_body(preferencelist=("plain",))
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append(
            AttachedFile(
                filename=part.get_filename() or "",
                content_type=part.get_content_type(),
                size=len(payload),
            )
        )
    return OpenedMessage(
        name=name,
        subject=str(message["Subject"] or ""),
        sender=str(message["From"] or ""),
        to=", ".join(str(value) for value in message.get_all("To", [])),
        cc=", ".join(str(value) for value in message.get_all("Cc", [])),
        reply_to=str(message["Reply-To"] or ""),
        date=_date(message),
        envelope=read_envelope(folder, name),
        text=_content(text_part) if text_part is not None else None,
        has_html=message.get_body(preferencelist=("html",)) is not None,
        attachments=attachments,
        raw=raw.decode("utf-8", "replace"),
    )


def html_body(folder: Path, name: str) -> str | None:
    """Return the decoded HTML part of one stored message, or None when it has none."""
    raw = read_message(folder, name)
    if raw is None:
        return None
    part = _parse(raw).get_body(preferencelist=("html",))
    return _content(part) if part is not None else None


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
    from aiosmtpd.controller import Controller  # only ``flask demo-mailbox`` serves SMTP

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
