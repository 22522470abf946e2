"""MIME building with the standard library: what a mailing's e-mails share is built once.

A mailing's body (text, HTML alternative, inline images, attachments) is serialised once; each
e-mail then only adds its own headers (To, Cc, Message-ID). An e-mail with files of its own (a
recipient's document) pays for a body of its own: the shared content plus its files, its inline
images given Content-IDs unique to its message. Everything comes out of the ``email`` package's
generator, so no header or MIME boundary is ever written by hand.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from hpmail.core.text import InvalidHeader, is_content_type, refuse_unsafe
from hpmail.outbox.policy import Identity

# 7bit: text parts get quoted-printable or base64, so any relay accepts them (no 8BITMIME needed).
POLICY = email.policy.SMTP.clone(cte_type="7bit")
HEADER_POLICY = email.policy.SMTP


def new_message_id(domain: str) -> str:
    """Return a fresh, unique Message-ID on ``domain`` (fixed at creation, kept on every retry)."""
    return make_msgid(domain=domain)


@dataclass(frozen=True)
class Part:
    """An attachment as it goes into the message: inline when it has a Content-ID."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


def _split(content_type: str) -> tuple[str, str]:
    content_type = content_type or "application/octet-stream"
    if not is_content_type(content_type):
        raise InvalidHeader(f"invalid content type {content_type!r}")
    maintype, _, subtype = content_type.partition("/")
    return maintype, subtype


def _check_part(part: Part) -> None:
    """Refuse a file name or Content-ID that would break its MIME header (last line of defence)."""
    refuse_unsafe(part.filename, "filename")
    refuse_unsafe(part.content_id, "Content-ID")


def _check_address(address: HeaderAddress | None, header: str) -> None:
    if address is not None:
        refuse_unsafe(address.display_name, header)
        refuse_unsafe(address.addr_spec, header)


def build_body(text_body: str, html_body: str | None, parts: list[Part]) -> EmailMessage:
    """Return the MIME entity of a mailing's content: text, HTML, inline images, attachments."""
    for part in parts:
        _check_part(part)
    body = EmailMessage(policy=POLICY)
    body.set_content(text_body or "", charset="utf-8")
    inline = [part for part in parts if part.content_id]
    attached = [part for part in parts if not part.content_id]
    if html_body:
        body.add_alternative(html_body, subtype="html", charset="utf-8")
        html_part = body.get_payload()[-1]
        for part in inline:
            maintype, subtype = _split(part.content_type)
            html_part.add_related(
                part.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{part.content_id.strip('<>')}>",
                filename=part.filename,
                disposition="inline",
            )
    else:
        attached = parts
    for part in attached:
        maintype, subtype = _split(part.content_type)
        body.add_attachment(part.data, maintype=maintype, subtype=subtype, filename=part.filename)
    return body


def own_content_id(name: str, message_id: str) -> str:
    """Return the Content-ID of an e-mail's own inline image ``name`` in the message ``message_id``.

    The mailing's HTML, shared by all its e-mails, refers to the image as ``cid:<name>``; each
    message gets an id of its own, made from its Message-ID so that no two messages share one:
    ``<name.local-part@domain>``.
    """
    return f"<{name.strip('<>')}.{message_id.strip('<>')}>"


def _cid_reference(name: str) -> re.Pattern:
    # ``cid:name`` as a whole reference: not the beginning of a longer name (``cid:name-2``).
    return re.compile(r"(?i:cid:)" + re.escape(name) + r"(?![\w.@%-])")


def _headers_bytes(headers: EmailMessage) -> bytes:
    """Return the serialised header block without its final blank line."""
    return headers.as_bytes(policy=HEADER_POLICY)[:-2]


class MailingMessages:
    """The messages of one mailing: shared headers and body built once, per-e-mail headers added."""

    def __init__(
        self,
        *,
        identity: Identity,
        subject: str,
        text_body: str,
        html_body: str | None,
        parts: list[Part],
        date: datetime,
        hide_recipients: bool = False,
        account: HeaderAddress | None = None,
    ) -> None:
        # The last line of defence: whatever the input checks missed, no value written below may
        # hold a character that a reader would take as the end of the header line.
        _check_address(identity.from_address, "From")
        _check_address(identity.reply_to, "Reply-To")
        _check_address(account, "To")
        refuse_unsafe(subject, "Subject")
        self.identity = identity
        self.hide_recipients = hide_recipients
        shared = EmailMessage(policy=HEADER_POLICY)
        shared["From"] = identity.from_address
        if hide_recipients:
            shared["To"] = account or identity.from_address
        if identity.reply_to is not None:
            shared["Reply-To"] = identity.reply_to
        shared["Subject"] = subject
        shared["Date"] = format_datetime(date.replace(tzinfo=UTC) if date.tzinfo is None else date)
        self._shared = _headers_bytes(shared)
        self._content = (text_body, html_body, parts)
        self._body = build_body(text_body, html_body, parts).as_bytes(policy=POLICY)

    def _own_body(self, message_id: str, own_parts: list[Part]) -> bytes:
        """Return the body of an e-mail with files of its own: the shared content, then them.

        Its inline images get Content-IDs of this message, and its HTML refers to them so.
        """
        text_body, html_body, parts = self._content
        renamed = []
        for part in own_parts:
            _check_part(part)
            if part.content_id:
                name = part.content_id.strip("<>")
                content_id = own_content_id(name, message_id)
                if html_body:
                    reference = "cid:" + content_id.strip("<>")
                    html_body = _cid_reference(name).sub(lambda _m, to=reference: to, html_body)
                part = replace(part, content_id=content_id)
            renamed.append(part)
        return build_body(text_body, html_body, [*parts, *renamed]).as_bytes(policy=POLICY)

    def message_bytes(
        self,
        message_id: str,
        to: list[tuple[str, str]],
        cc: list[tuple[str, str]] = (),
        own_parts: list[Part] = (),
    ) -> bytes:
        """Return the whole message of one e-mail (Bcc recipients never appear in it).

        ``to`` and ``cc`` are (name, address) pairs; ``own_parts`` the files of this e-mail
        alone. This runs once per e-mail, so the header lines are folded directly by the policy
        (``EmailMessage`` would parse each address three times over): ``formataddr`` encodes the
        names, ``fold_binary`` folds the line.
        """
        refuse_unsafe(message_id, "Message-ID")
        for name, address in (*to, *cc):
            refuse_unsafe(name, "To/Cc")
            refuse_unsafe(address, "To/Cc")
        fold = HEADER_POLICY.fold_binary
        lines = [fold("Message-ID", message_id)]
        if not self.hide_recipients:
            if to:
                lines.append(fold("To", _address_list(to)))
            if cc:
                lines.append(fold("Cc", _address_list(cc)))
        body = self._own_body(message_id, list(own_parts)) if own_parts else self._body
        lines += (self._shared, body)
        return b"".join(lines)


def _address_list(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(formataddr((name, address), charset="utf-8") for name, address in pairs)
