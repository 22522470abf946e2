"""MIME building with the standard library: what a mailing's e-mails share is built once.

A mailing's body (text, HTML alternative, inline images, attachments) is serialised once; each
e-mail then only adds its own headers (To, Cc, Message-ID). An e-mail with files of its own (a
recipient's document) pays for a body of its own: the shared content plus its files, its inline
images given Content-IDs unique to its message. Everything comes out of the ``email`` package's
generator, so no header or MIME boundary is ever written by hand.

Besides the addresses, every message says its language (``Content-Language``) and, when no person
wrote it (a verification code, a test), that it was generated (``Auto-Submitted``, RFC 3834), so
that out-of-office replies do not answer it. SpamAssassin scores each kind of message below one
point (``tests/test_spam_score.py``).
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import Group
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from html import escape as html_escape

from hpmail.core.text import InvalidHeader, is_content_type, refuse_unsafe
from hpmail.outbox.policy import Identity

# 7bit: text parts get quoted-printable or base64, so any relay accepts them (no 8BITMIME needed).
POLICY = email.policy.SMTP.clone(cte_type="7bit")
HEADER_POLICY = email.policy.SMTP
# The To of a mailing whose recipients are hidden: the empty group of RFC 5322 (A.1.3), as mail
# programs write it. The sender's own address there instead (To = From) is a spam sign.
UNDISCLOSED = Group("undisclosed-recipients")


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


# An e-mail's own content in the mailing's shared body (a form letter written for each person):
# its own files of Content-ID ``own-body``, one text/html and one text/plain, are not files but
# text put where the shared HTML and text bodies say ``OWN_BODY_MARK`` (at their end without it).
OWN_BODY = "own-body"
OWN_BODY_MARK = "<!--own-body-->"


def _with_own_body(body: str | None, own: str | None) -> str | None:
    if body is None or own is None:
        return body
    if OWN_BODY_MARK in body:
        return body.replace(OWN_BODY_MARK, own, 1)
    return f"{body}\n{own}"


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


def html_document(fragment: str, language: str) -> str:
    """Return the HTML part of a message: ``fragment`` as a whole document in ``language``.

    A text/html part is a document (RFC 2854), and its ``lang`` makes a screen reader read it in
    the right voice, as ``Content-Language`` says it to mail programs.
    """
    return (
        f'<!DOCTYPE html>\n<html lang="{html_escape(language)}">\n'
        f'<head><meta charset="utf-8"></head>\n<body>\n{fragment}\n</body>\n</html>\n'
    )


def build_body(
    text_body: str, html_body: str | None, parts: list[Part], language: str
) -> EmailMessage:
    """Return the MIME entity of a mailing's content: text, HTML, inline images, attachments."""
    for part in parts:
        _check_part(part)
    body = EmailMessage(policy=POLICY)
    body.set_content(text_body or "", charset="utf-8")
    inline = [part for part in parts if part.content_id]
    attached = [part for part in parts if not part.content_id]
    if html_body:
        body.add_alternative(html_document(html_body, language), subtype="html", charset="utf-8")
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
        language: str = "fr",
        generated: bool = False,
    ) -> None:
        # The last line of defence: whatever the input checks missed, no value written below may
        # hold a character that a reader would take as the end of the header line.
        _check_address(identity.from_address, "From")
        _check_address(identity.reply_to, "Reply-To")
        refuse_unsafe(subject, "Subject")
        refuse_unsafe(language, "Content-Language")
        self.identity = identity
        self.hide_recipients = hide_recipients
        self.language = language
        shared = EmailMessage(policy=HEADER_POLICY)
        shared["From"] = identity.from_address
        if hide_recipients:
            shared["To"] = UNDISCLOSED
        if identity.reply_to is not None:
            shared["Reply-To"] = identity.reply_to
        shared["Subject"] = subject
        shared["Date"] = format_datetime(date.replace(tzinfo=UTC) if date.tzinfo is None else date)
        shared["Content-Language"] = language
        if generated:
            shared["Auto-Submitted"] = "auto-generated"
        self._shared = _headers_bytes(shared)
        self._content = (text_body, html_body, parts)
        self._body = build_body(text_body, html_body, parts, language).as_bytes(policy=POLICY)

    def _own_body(self, message_id: str, own_parts: list[Part]) -> bytes:
        """Return the body of an e-mail with files of its own: the shared content, then them.

        Its own content (``OWN_BODY``) goes into the shared bodies; its inline images get
        Content-IDs of this message, and its HTML refers to them so.
        """
        text_body, html_body, parts = self._content
        renamed = []
        for part in own_parts:
            _check_part(part)
            if part.content_id and part.content_id.strip("<>") == OWN_BODY:
                own = part.data.decode("utf-8")
                if part.content_type.startswith("text/html"):
                    html_body = _with_own_body(html_body, own)
                else:
                    text_body = _with_own_body(text_body, own)
                continue
            if part.content_id:
                name = part.content_id.strip("<>")
                content_id = own_content_id(name, message_id)
                if html_body:
                    reference = "cid:" + content_id.strip("<>")
                    html_body = _cid_reference(name).sub(lambda _m, to=reference: to, html_body)
                part = replace(part, content_id=content_id)
            renamed.append(part)
        return build_body(text_body, html_body, [*parts, *renamed], self.language).as_bytes(
            policy=POLICY
        )

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
